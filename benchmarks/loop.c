/* The program side of benchmarks/roundtrip.py.
 *   loop stat PATH N            stat(PATH) N times
 *   loop echo SOCKET N SIZE     send SIZE bytes and wait for the answer, N times, on SEQPACKET
 *   loop threads T PATH N       T threads, each stat(PATH) N times
 * Prints the nanoseconds per iteration (for threads: per call of all threads together). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static const char *thread_path;
static long thread_calls;

static void *stat_loop(void *unused)
{
    (void)unused;
    struct stat st;
    for (long i = 0; i < thread_calls; i++)
        if (stat(thread_path, &st) != 0)
            return (void *)1;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "threads") == 0) {
        int threads = atoi(argv[2]);
        pthread_t ids[64];
        thread_path = argv[3];
        thread_calls = atol(argv[4]);
        if (threads < 1 || threads > 64)
            return 2;
        double start = now_ns();
        for (int i = 0; i < threads; i++)
            pthread_create(&ids[i], NULL, stat_loop, NULL);
        long failed = 0;
        for (int i = 0; i < threads; i++) {
            void *result;
            pthread_join(ids[i], &result);
            failed += result != NULL;
        }
        if (failed)
            return 1;
        printf("%.1f\n", (now_ns() - start) / ((double)threads * thread_calls));
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "stat") == 0) {
        long n = atol(argv[3]);
        struct stat st;
        double start = now_ns();
        for (long i = 0; i < n; i++)
            if (stat(argv[2], &st) != 0) {
                perror("stat");
                return 1;
            }
        printf("%.1f\n", (now_ns() - start) / n);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "echo") == 0) {
        long n = atol(argv[3]);
        size_t size = (size_t)atol(argv[4]);
        char message[16384] = {0}, answer[16384];
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("connect");
            return 1;
        }
        double start = now_ns();
        for (long i = 0; i < n; i++)
            if (send(fd, message, size, 0) < 0 || recv(fd, answer, sizeof answer, 0) <= 0) {
                perror("echo");
                return 1;
            }
        printf("%.1f\n", (now_ns() - start) / n);
        return 0;
    }
    fprintf(stderr, "usage: loop stat PATH N | loop echo SOCKET N SIZE\n");
    return 2;
}
