/* The program side of benchmarks/roundtrip.py.
 *   loop CALL ARG N             make one call N times, CALL being
 *       stat PATH               stat(PATH)
 *       open PATH               open(PATH, O_RDONLY) and close the descriptor
 *       access PATH             access(PATH, R_OK)
 *       getaddrinfo NODE        getaddrinfo(NODE, NULL, {SOCK_STREAM}) and freeaddrinfo
 *       connect PORT            a TCP socket, connect to 127.0.0.1:PORT, close: the connection
 *                               must be refused (nothing listens there)
 *       create DIR              open(DIR/N, O_WRONLY | O_CREAT | O_EXCL), a new file each time
 *                               (named by the iteration), and close the descriptor
 *       write PATH              write(fd, "x", 1), PATH opened for writing on the first call
 *   loop echo SOCKET N SIZE [SHAPE]
 *                               send SIZE bytes and wait for the answer, N times, on SEQPACKET;
 *                               SHAPE is the work around it of a forwarded call:
 *       plain                   none (the default): send, recv
 *       fd-back                 the answer carries a descriptor (as open's does), received with
 *                               recvmsg and MSG_CMSG_CLOEXEC and closed
 *       socket-there            a TCP socket is made, sent with the message (as connect's is)
 *                               and closed after the answer
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

static int call_create(const char *dir)
{
    static long made;
    char path[4096];
    snprintf(path, sizeof path, "%s/%ld", dir, made++);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd < 0 ? -1 : close(fd);
}

/* One byte written to PATH, opened (for writing, appending) on the first call: a descriptor
 * of the host's, which the shim never watches. */
static int call_write(const char *path)
{
    static int fd = -1;
    if (fd < 0 && (fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
        return -1;
    return write(fd, "x", 1) == 1 ? 0 : -1;
}

static const struct {
    const char *name;
    int (*call)(const char *arg);
} calls[] = {
    {"write", call_write},
    {"stat", call_stat},
    {"open", call_open},
    {"access", call_access},
    {"getaddrinfo", call_getaddrinfo},
    {"connect", call_connect},
    {"create", call_create},
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

enum shape { PLAIN, FD_BACK, SOCKET_THERE };
static const char *const shapes[] = {"plain", "fd-back", "socket-there"};

/* Closes the descriptors that came with msg; how many there were. */
static int close_received(struct msghdr *msg)
{
    int count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            close(fd);
            count++;
        }
    }
    return count;
}

/* One round trip of the given shape on fd. Returns 0, or -1 with errno set (EBADMSG: the answer
 * of fd-back did not bring exactly one descriptor; 0 on a connection the loop closed). */
static int echo_once(int fd, enum shape shape, char *message, size_t size)
{
    char answer[16384];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct iovec iov = {.iov_base = message, .iov_len = size};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    errno = 0;
    if (shape == SOCKET_THERE) {
        int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
            return -1;
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof sock);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof sock);
        memcpy(CMSG_DATA(c), &sock, sizeof sock);
        int ok = sendmsg(fd, &msg, 0) >= 0 && recv(fd, answer, sizeof answer, 0) > 0;
        int err = errno;
        close(sock);
        errno = err;
        return ok ? 0 : -1;
    }
    if (send(fd, message, size, 0) < 0)
        return -1;
    if (shape == PLAIN)
        return recv(fd, answer, sizeof answer, 0) > 0 ? 0 : -1;
    iov = (struct iovec){.iov_base = answer, .iov_len = sizeof answer};
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    if (recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) <= 0)
        return -1;
    if (close_received(&msg) != 1 || (msg.msg_flags & MSG_CTRUNC)) {
        errno = EBADMSG;
        return -1;
    }
    return 0;
}

static int echo(const char *path, long n, size_t size, enum shape shape)
{
    char message[16384] = {0};
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
        if (echo_once(fd, shape, message, size) != 0) {
            if (errno == EBADMSG)
                fprintf(stderr, "echo %s: the answer did not bring exactly one descriptor\n",
                        shapes[shape]);
            else
                fprintf(stderr, "echo %s: %s\n", shapes[shape],
                        errno ? strerror(errno) : "the loop closed the connection");
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
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            if (argc == 5 || strcmp(argv[5], shapes[s]) == 0)
                return echo(argv[2], atol(argv[3]), (size_t)atol(argv[4]), (enum shape)s);
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
    fprintf(stderr, "usage: loop stat|open|access|getaddrinfo|connect|create ARG N | "
                    "loop echo SOCKET N SIZE [plain|fd-back|socket-there] | "
                    "loop threads T PATH N\n");
    return 2;
}
