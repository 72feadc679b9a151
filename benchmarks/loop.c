/* The program side of benchmarks/roundtrip.py.
 *   loop CALL ARG N             make one call N times, CALL being
 *       stat PATH               stat(PATH)
 *       open PATH               open(PATH, O_RDONLY) and close the descriptor
 *       access PATH             access(PATH, R_OK)
 *       getaddrinfo NODE        getaddrinfo(NODE, NULL, {SOCK_STREAM}) and freeaddrinfo
 *       connect PORT            a TCP socket, connect to 127.0.0.1:PORT, close: the connection
 *                               must be refused (nothing listens there)
 *   loop echo SOCKET N SIZE     send SIZE bytes and wait for the answer, N times, on SEQPACKET
 *   loop threads T PATH N       T threads, each stat(PATH) N times
 * Prints the nanoseconds per iteration (for threads: per call of all threads together). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

/* ============================================== one call each; 0 when it went as expected ===== */

static int call_stat(const char *path)
{
    struct stat st;
    return stat(path, &st);
}

static int call_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -1 : close(fd);
}

static int call_access(const char *path)
{
    return access(path, R_OK);
}

static int call_getaddrinfo(const char *node)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *result;
    int status = getaddrinfo(node, NULL, &hints, &result);
    if (status != 0) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(status));
        return -1;
    }
    freeaddrinfo(result);
    return 0;
}

static int call_connect(const char *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int ret = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    int err = errno;
    close(fd);
    if (ret == 0 || err != ECONNREFUSED) {
        errno = ret == 0 ? EISCONN : err;
        return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    int (*call)(const char *arg);
} calls[] = {
    {"stat", call_stat},
    {"open", call_open},
    {"access", call_access},
    {"getaddrinfo", call_getaddrinfo},
    {"connect", call_connect},
};

/* ============================================================================ threads ===== */

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

static int threads(int count, const char *path, long n)
{
    pthread_t ids[64];
    thread_path = path;
    thread_calls = n;
    if (count < 1 || count > 64)
        return 2;
    double start = now_ns();
    for (int i = 0; i < count; i++)
        pthread_create(&ids[i], NULL, stat_loop, NULL);
    long failed = 0;
    for (int i = 0; i < count; i++) {
        void *result;
        pthread_join(ids[i], &result);
        failed += result != NULL;
    }
    if (failed)
        return 1;
    printf("%.1f\n", (now_ns() - start) / ((double)count * n));
    return 0;
}

/* =============================================================================== echo ===== */

static int echo(const char *path, long n, size_t size)
{
    char message[16384] = {0}, answer[16384];
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
    }
    if (size > sizeof message)
        size = sizeof message;
    double start = now_ns();
    for (long i = 0; i < n; i++)
        if (send(fd, message, size, 0) < 0 || recv(fd, answer, sizeof answer, 0) <= 0) {
            perror("echo");
            return 1;
        }
    printf("%.1f\n", (now_ns() - start) / n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "threads") == 0)
        return threads(atoi(argv[2]), argv[3], atol(argv[4]));
    if (argc >= 5 && strcmp(argv[1], "echo") == 0)
        return echo(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
    for (size_t c = 0; argc >= 4 && c < sizeof calls / sizeof calls[0]; c++) {
        if (strcmp(argv[1], calls[c].name) != 0)
            continue;
        long n = atol(argv[3]);
        double start = now_ns();
        for (long i = 0; i < n; i++)
            if (calls[c].call(argv[2]) != 0) {
                perror(argv[1]);
                return 1;
            }
        printf("%.1f\n", (now_ns() - start) / n);
        return 0;
    }
    fprintf(stderr, "usage: loop stat|open|access|getaddrinfo|connect ARG N | "
                    "loop echo SOCKET N SIZE | loop threads T PATH N\n");
    return 2;
}
