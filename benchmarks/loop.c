/* The program side of benchmarks/roundtrip.py.
 *   loop stat PATH N            stat(PATH) N times
 *   loop echo SOCKET N SIZE     send SIZE bytes and wait for the answer, N times, on SEQPACKET
 * Prints the nanoseconds per iteration. */
#define _GNU_SOURCE
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

int main(int argc, char **argv)
{
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
