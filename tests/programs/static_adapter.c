/* A program the supervisor tests link statically: a sequence of file and socket calls, each
 * printing one line of what the program saw. No shim reaches it; only libcfake-launch's filter.
 *
 *     static_adapter COMMAND ARGS... [COMMAND ARGS...]...
 *
 *     read PATH            "read: <first line>" or "read: <error>"
 *     create PATH          "create: ok" (wrote "written\n") or "create: <error>"
 *     stat PATH, lstat PATH, statx PATH, fstat PATH (open, then fstat)
 *                          "<cmd>: size=N mode=OCTAL uid=N ino=N mtime=N" or "<cmd>: <error>"
 *     readlink PATH SIZE   "readlink: N <text>" or "readlink: <error>"
 *     mkdir PATH, rmdir PATH, unlink PATH, access PATH (R_OK)
 *                          "<cmd>: ok" or "<cmd>: <error>"
 *     rename FROM TO       "rename: ok" or "rename: <error>"
 *     openat DIR NAME      opens DIR, then reads NAME relative to it: as read
 *     connect IP PORT      connects, reads a line: "connect: <line>" or "connect: <error>"
 *     bad                  openat with a path at address 1: "bad: <error>"
 *     statro PATH          stat into a read-only page: "statro: <error>" (EFAULT) or "statro: ok"
 *     kill                 kill(1, 0), a call the adapter does not serve: "kill: <result>"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void fail(const char *command) {
    printf("%s: %s\n", command, strerror(errno));
}

static void read_fd(const char *command, int fd) {
    char buffer[256];
    ssize_t got = read(fd, buffer, sizeof buffer - 1);
    if (got < 0) {
        fail(command);
        return;
    }
    buffer[got] = '\0';
    char *newline = strchr(buffer, '\n');
    if (newline != NULL)
        *newline = '\0';
    printf("%s: %s\n", command, buffer);
}

static void print_stat(const char *command, const struct stat *st) {
    printf("%s: size=%lld mode=%o uid=%u ino=%llu mtime=%lld\n", command, (long long)st->st_size,
           (unsigned)st->st_mode, (unsigned)st->st_uid, (unsigned long long)st->st_ino,
           (long long)st->st_mtime);
}

static int run(int argc, char **argv, int i) {
    const char *command = argv[i];
    const char *a = i + 1 < argc ? argv[i + 1] : "";
    const char *b = i + 2 < argc ? argv[i + 2] : "";
    struct stat st;
    if (strcmp(command, "read") == 0) {
        int fd = open(a, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fail(command);
        else {
            read_fd(command, fd);
            close(fd);
        }
        return 2;
    }
    if (strcmp(command, "create") == 0) {
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            fail(command);
        else if (write(fd, "written\n", 8) != 8)
            fail(command);
        else
            printf("create: ok\n");
        if (fd >= 0)
            close(fd);
        return 2;
    }
    if (strcmp(command, "stat") == 0 || strcmp(command, "lstat") == 0) {
        int r = command[0] == 'l' ? lstat(a, &st) : stat(a, &st);
        if (r < 0)
            fail(command);
        else
            print_stat(command, &st);
        return 2;
    }
    if (strcmp(command, "statx") == 0) {
        struct statx stx;
        if (statx(AT_FDCWD, a, 0, STATX_BASIC_STATS, &stx) < 0) {
            fail(command);
            return 2;
        }
        memset(&st, 0, sizeof st);
        st.st_size = (off_t)stx.stx_size;
        st.st_mode = stx.stx_mode;
        st.st_uid = stx.stx_uid;
        st.st_ino = stx.stx_ino;
        st.st_mtime = stx.stx_mtime.tv_sec;
        print_stat(command, &st);
        return 2;
    }
    if (strcmp(command, "fstat") == 0) {
        int fd = open(a, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
            fail(command);
        else
            print_stat(command, &st);
        if (fd >= 0)
            close(fd);
        return 2;
    }
    if (strcmp(command, "readlink") == 0) {
        char buffer[256];
        size_t size = (size_t)atoi(b);
        if (size > sizeof buffer - 1)
            size = sizeof buffer - 1;
        ssize_t n = readlink(a, buffer, size);
        if (n < 0)
            fail(command);
        else {
            buffer[n] = '\0';
            printf("readlink: %zd %s\n", n, buffer);
        }
        return 3;
    }
    if (strcmp(command, "mkdir") == 0 || strcmp(command, "rmdir") == 0 ||
        strcmp(command, "unlink") == 0 || strcmp(command, "access") == 0) {
        int r = command[0] == 'm'   ? mkdir(a, 0755)
                : command[0] == 'r' ? rmdir(a)
                : command[0] == 'u' ? unlink(a)
                                    : access(a, R_OK);
        if (r < 0)
            fail(command);
        else
            printf("%s: ok\n", command);
        return 2;
    }
    if (strcmp(command, "rename") == 0) {
        if (rename(a, b) < 0)
            fail(command);
        else
            printf("rename: ok\n");
        return 3;
    }
    if (strcmp(command, "openat") == 0) {
        int dir = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = dir < 0 ? -1 : openat(dir, b, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fail(command);
        else {
            read_fd(command, fd);
            close(fd);
        }
        if (dir >= 0)
            close(dir);
        return 3;
    }
    if (strcmp(command, "connect") == 0) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(b))};
        inet_pton(AF_INET, a, &address.sin_addr);
        if (s < 0 || connect(s, (struct sockaddr *)&address, sizeof address) < 0)
            fail(command);
        else
            read_fd(command, s);
        if (s >= 0)
            close(s);
        return 3;
    }
    if (strcmp(command, "bad") == 0) {
        long r = syscall(SYS_openat, AT_FDCWD, (const char *)1, O_RDONLY);
        if (r < 0)
            fail(command);
        else
            printf("bad: %ld\n", r);
        return 1;
    }
    if (strcmp(command, "statro") == 0) {
        void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED || stat(a, (struct stat *)page) < 0)
            fail(command);
        else
            printf("statro: ok\n");
        return 2;
    }
    if (strcmp(command, "kill") == 0) {
        if (kill(1, 0) < 0)
            fail(command);
        else
            printf("kill: ok\n");
        return 1;
    }
    printf("unknown command %s\n", command);
    exit(64);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc;)
        i += run(argc, argv, i);
    return 0;
}
