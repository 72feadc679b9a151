/* host_doors COMMAND ARGS...: one attempt to change or reach the host through a call the shim
 * used to let through (tests/test_host_doors.py). Prints "RESULT OK <what>" or
 * "RESULT <errno name>" (or "RESULT NONE" when a race never won). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int result(int ok, const char *what)
{
    if (ok)
        printf("RESULT OK %s\n", what ? what : "");
    else
        printf("RESULT %s\n", strerrorname_np(errno));
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------- calls on a descriptor ----- */

static int on_descriptor(const char *cmd, const char *path, const char *extra)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return result(0, "open");
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    struct timeval tv[2] = {{1, 0}, {1, 0}};
    if (!strcmp(cmd, "fchmod"))
        return result(fchmod(fd, 0600) == 0, cmd);
    if (!strcmp(cmd, "fchown"))
        return result(fchown(fd, 1, 1) == 0, cmd);
    if (!strcmp(cmd, "futimens"))
        return result(futimens(fd, ts) == 0, cmd);
    if (!strcmp(cmd, "futimes"))
        return result(futimes(fd, tv) == 0, cmd);
    if (!strcmp(cmd, "futimesat-null"))
        return result(futimesat(fd, NULL, tv) == 0, cmd);
    if (!strcmp(cmd, "fchownat-empty"))
        return result(fchownat(fd, "", 1, 1, AT_EMPTY_PATH) == 0, cmd);
    if (!strcmp(cmd, "utimensat-empty"))
        return result(utimensat(fd, "", ts, AT_EMPTY_PATH) == 0, cmd);
    if (!strcmp(cmd, "linkat-empty"))
        return result(linkat(fd, "", AT_FDCWD, extra, AT_EMPTY_PATH) == 0, cmd);
    if (!strcmp(cmd, "fsetxattr"))
        return result(fsetxattr(fd, "user.libcfake", "x", 1, 0) == 0, cmd);
    if (!strcmp(cmd, "fremovexattr"))
        return result(fremovexattr(fd, "user.keep") == 0, cmd);
    if (!strcmp(cmd, "chattr")) {
        int flags = FS_NODUMP_FL;
        return result(ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0, cmd);
    }
    if (!strcmp(cmd, "fsxattr")) {
        struct fsxattr fsx;
        if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) < 0)
            return result(0, NULL);
        fsx.fsx_xflags |= FS_XFLAG_NODUMP;
        return result(ioctl(fd, FS_IOC_FSSETXATTR, &fsx) == 0, cmd);
    }
    return 2;
}

/* ------------------------------------------------------------------------------ mknod ----- */

static int make_node(const char *cmd, const char *path)
{
    if (!strcmp(cmd, "mknod-reg"))
        return result(mknod(path, S_IFREG | 0640, 0) == 0, cmd);
    if (!strcmp(cmd, "mknod-zero"))
        return result(mknod(path, 0640, 0) == 0, cmd);
    if (!strcmp(cmd, "mknod-fifo"))
        return result(mknod(path, S_IFIFO | 0644, 0) == 0, cmd);
    if (!strcmp(cmd, "mknod-chr"))
        return result(mknod(path, S_IFCHR | 0644, makedev(1, 3)) == 0, cmd);
    if (!strcmp(cmd, "mkfifo"))
        return result(mkfifo(path, 0644) == 0, cmd);
    if (!strcmp(cmd, "mkfifoat"))
        return result(mkfifoat(AT_FDCWD, path, 0644) == 0, cmd);
    if (!strcmp(cmd, "mknodat"))
        return result(mknodat(AT_FDCWD, path, S_IFIFO | 0644, 0) == 0, cmd);
    if (!strcmp(cmd, "xmknod") || !strcmp(cmd, "xmknod-reg")) { /* glibc < 2.33's entry point */
        int (*xmknod)(int, const char *, mode_t, dev_t *) = dlsym(RTLD_DEFAULT, "__xmknod");
        dev_t dev = 0;
        if (xmknod == NULL)
            return printf("RESULT NOSYMBOL\n"), 0;
        mode_t mode = !strcmp(cmd, "xmknod") ? S_IFIFO | 0644 : S_IFREG | 0644;
        return result(xmknod(0, path, mode, &dev) == 0, cmd);
    }
    return 2;
}

/* ---------------------------------------------------------------------------- sockets ----- */

/* Makes a listener the way cmd says, prints its real port, and waits for a line on stdin. */
static int listener(const char *cmd)
{
    int v6 = !strcmp(cmd, "listen6");
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (!strcmp(cmd, "bind-unspec") || !strcmp(cmd, "bind-unspec-loopback")) {
        struct sockaddr_in in = {.sin_family = AF_UNSPEC};
        if (!strcmp(cmd, "bind-unspec-loopback"))
            in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&in, sizeof in) < 0)
            return result(0, NULL);
    }
    if (listen(fd, 8) < 0)
        return result(0, NULL);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (syscall(SYS_getsockname, fd, &ss, &len) < 0) /* the real one */
        return result(0, NULL);
    char port[16];
    snprintf(port, sizeof port, "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
    result(1, port);
    char line[8];
    return fgets(line, sizeof line, stdin) ? 0 : 0;
}

/* An unbound UDP socket sends to ip:port (a route), prints its real port, waits for a line. */
static int udp_sender(const char *ip, const char *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    inet_pton(AF_INET, ip, &to.sin_addr);
    if (sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof to) < 0)
        return result(0, NULL);
    struct sockaddr_in ss;
    socklen_t len = sizeof ss;
    if (syscall(SYS_getsockname, fd, &ss, &len) < 0)
        return result(0, NULL);
    char what[64];
    snprintf(what, sizeof what, "%s:%u", inet_ntoa(ss.sin_addr), ntohs(ss.sin_port));
    result(1, what);
    char line[8];
    return fgets(line, sizeof line, stdin) ? 0 : 0;
}

/* ------------------------------------------------------------ check-then-use races ----- */

/* A second thread rewrites a buffer between two contents while the main thread hands it to a
 * call; the shim must decide on and use one copy, whichever it read. */
struct flipper {
    char *buf;
    const void *a, *b;
    size_t size_a, size_b;
    volatile int stop;
};

static void *flip(void *arg)
{
    struct flipper *f = arg;
    while (!f->stop) {
        memcpy(f->buf, f->a, f->size_a);
        memcpy(f->buf, f->b, f->size_b);
    }
    return NULL;
}

static pthread_t start_flipping(struct flipper *f)
{
    pthread_t t;
    pthread_create(&t, NULL, flip, f);
    return t;
}

/* open(buf) where buf flips between a readable mount file and the host's canary. */
static int race_open(const char *canary, const char *mounted, long tries)
{
    static char buf[PATH_MAX];
    struct flipper f = {buf, mounted, canary, strlen(mounted) + 1, strlen(canary) + 1, 0};
    memcpy(buf, mounted, f.size_a);
    pthread_t t = start_flipping(&f);
    char got[256];
    for (long i = 0; i < tries; i++) {
        int fd = open(buf, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, got, sizeof got - 1);
        close(fd);
        if (n > 0 && (got[n] = '\0', strstr(got, "SECRET") != NULL)) {
            f.stop = 1;
            pthread_join(t, NULL);
            printf("leaked after %ld tries: %s", i + 1, got);
            return result(1, "leaked");
        }
    }
    f.stop = 1;
    pthread_join(t, NULL);
    return printf("RESULT NONE\n"), 0;
}

/* open(buf, O_CREAT) where buf flips between /dev/null (let through) and a new host file. */
static int race_create(const char *device, const char *created, long tries)
{
    static char buf[PATH_MAX];
    struct flipper f = {buf, device, created, strlen(device) + 1, strlen(created) + 1, 0};
    memcpy(buf, device, f.size_a);
    pthread_t t = start_flipping(&f);
    for (long i = 0; i < tries; i++) {
        int fd = open(buf, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0)
            close(fd);
        if (syscall(SYS_faccessat, AT_FDCWD, created, F_OK) == 0) { /* the real disk's answer */
            f.stop = 1;
            pthread_join(t, NULL);
            printf("created after %ld tries\n", i + 1);
            return result(1, "created");
        }
    }
    f.stop = 1;
    pthread_join(t, NULL);
    return printf("RESULT NONE\n"), 0;
}

/* connect(buf) where buf's family flips between one libc is left to (AF_IPX) and AF_INET to a
 * real loopback listener. */
static int race_connect(const char *port, long tries)
{
    static struct sockaddr_in buf;
    struct sockaddr_in inet = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in other = inet;
    other.sin_family = 4; /* AF_IPX */
    struct flipper f = {(char *)&buf, &other, &inet, sizeof other, sizeof inet, 0};
    buf = other;
    pthread_t t = start_flipping(&f);
    for (long i = 0; i < tries; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(fd, (struct sockaddr *)&buf, sizeof buf) == 0;
        close(fd);
        if (ok) {
            f.stop = 1;
            pthread_join(t, NULL);
            printf("connected after %ld tries\n", i + 1);
            return result(1, "connected");
        }
    }
    f.stop = 1;
    pthread_join(t, NULL);
    return printf("RESULT NONE\n"), 0;
}

/* fchmod(N) while a second thread dup2s a pipe and a mount file over N in turn: the shim must
 * change (or refuse) the file it checked, never let the pipe's real call reach the mount file. */
static volatile int swap_stop;
static int swap_target, swap_a, swap_b;

static void *swap(void *unused)
{
    (void)unused;
    while (!swap_stop) {
        dup2(swap_a, swap_target);
        dup2(swap_b, swap_target);
    }
    return NULL;
}

static int race_fchmod(const char *mounted, long tries)
{
    int pipes[2];
    if (pipe(pipes) < 0 || (swap_a = open(mounted, O_RDONLY)) < 0)
        return result(0, NULL);
    swap_b = pipes[0];
    swap_target = dup(pipes[0]);
    pthread_t t;
    pthread_create(&t, NULL, swap, NULL);
    long changed = 0;
    for (long i = 0; i < tries; i++)
        changed += fchmod(swap_target, 0600) == 0;
    swap_stop = 1;
    pthread_join(t, NULL);
    printf("%ld of %ld fchmods succeeded\n", changed, tries);
    return printf("RESULT NONE\n"), 0;
}

/* name_to_handle_at of a host file, then open_by_handle_at through a mount's directory. */
static int by_handle(const char *path, const char *dir)
{
    struct {
        struct file_handle h;
        unsigned char bytes[MAX_HANDLE_SZ];
    } fh;
    fh.h.handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, path, &fh.h, &mount_id, 0) < 0) {
        if (errno != EOPNOTSUPP)
            return result(0, NULL);
        /* (the hybrid backend's answer) a handle is bytes: forge the one of ext4's and tmpfs's
         * kind (FILEID_INO32_GEN: inode, generation) for the file's inode, as hostile code
         * would, from a stat */
        struct stat st;
        if (stat(path, &st) < 0)
            st.st_ino = 2;
        unsigned int ino_gen[2] = {(unsigned int)st.st_ino, 0};
        fh.h.handle_type = 1;
        fh.h.handle_bytes = sizeof ino_gen;
        memcpy(fh.h.f_handle, ino_gen, sizeof ino_gen);
    }
    int mount_fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (mount_fd < 0)
        return result(0, NULL);
    int fd = open_by_handle_at(mount_fd, &fh.h, O_RDONLY);
    if (fd < 0)
        return result(0, NULL);
    char got[256] = {0};
    ssize_t n = read(fd, got, sizeof got - 1);
    return result(n >= 0, got);
}

/* ------------------------------------------------- a signal handler during a real call ----- */

static const char *handler_path;
static volatile sig_atomic_t leaked, handled;

static void reader(int sig)
{
    (void)sig;
    int saved = errno;
    handled++;
    int fd = open(handler_path, O_RDONLY);
    if (fd >= 0) {
        char got[256];
        ssize_t n = read(fd, got, sizeof got);
        if (n > 0) {
            (void)!write(STDOUT_FILENO, got, (size_t)n);
            leaked = 1;
        }
        close(fd);
    }
    errno = saved;
}

static void reader_info(int sig, siginfo_t *info, void *context)
{
    (void)info;
    (void)context;
    reader(sig);
}

/* Resolves a mount path again and again (libc's realpath runs inside the shim's real-call
 * window) while SIGALRM comes every 500 us; its handler opens the host's canary. */
static int signal_window(const char *how, const char *canary, const char *mounted, int ms)
{
    handler_path = canary;
    if (!strcmp(how, "signal-window")) {
        struct sigaction sa = {.sa_sigaction = reader_info, .sa_flags = SA_SIGINFO | SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
    } else {
        signal(SIGALRM, reader);
    }
    struct itimerval every = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &every, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long rounds = 0;
    char out[PATH_MAX];
    do {
        if (realpath(mounted, out) != NULL)
            rounds++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!leaked && (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("%ld realpaths, %d signals handled\n", rounds, (int)handled);
    if (leaked)
        return result(1, "leaked");
    return printf("RESULT NONE\n"), 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *cmd = argv[1];
    if (!strncmp(cmd, "mk", 2) || !strncmp(cmd, "xmknod", 6))
        return make_node(cmd, argv[2]);
    if (!strcmp(cmd, "listen") || !strcmp(cmd, "listen6") || !strncmp(cmd, "bind-unspec", 11))
        return listener(cmd);
    if (!strcmp(cmd, "udp-sendto") && argc > 3)
        return udp_sender(argv[2], argv[3]);
    if (!strcmp(cmd, "race-open") && argc > 4)
        return race_open(argv[2], argv[3], atol(argv[4]));
    if (!strcmp(cmd, "race-create") && argc > 4)
        return race_create(argv[2], argv[3], atol(argv[4]));
    if (!strcmp(cmd, "execveat") || !strcmp(cmd, "execveat-fd")) {
        char *args[] = {argv[2], "--help", NULL};
        extern char **environ;
        if (!strcmp(cmd, "execveat"))
            execveat(AT_FDCWD, argv[2], args, environ, 0);
        else
            execveat(open(argv[2], O_PATH), "", args, environ, AT_EMPTY_PATH);
        return result(0, NULL);
    }
    if (!strcmp(cmd, "mount-tmpfs"))
        return result(mount("none", argv[2], "tmpfs", 0, NULL) == 0, cmd);
    if (!strcmp(cmd, "umount2"))
        return result(umount2(argv[2], MNT_DETACH) == 0, cmd);
    if (!strcmp(cmd, "chroot"))
        return result(chroot(argv[2]) == 0, cmd);
    if (!strcmp(cmd, "by-handle") && argc > 3)
        return by_handle(argv[2], argv[3]);
    if (!strcmp(cmd, "race-fchmod") && argc > 3)
        return race_fchmod(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "race-connect") && argc > 3)
        return race_connect(argv[2], atol(argv[3]));
    if (!strncmp(cmd, "signal-window", 13) && argc > 4)
        return signal_window(cmd, argv[2], argv[3], atoi(argv[4]));
    if (!strcmp(cmd, "setxattr"))
        return result(setxattr(argv[2], "user.libcfake", "x", 1, 0) == 0, cmd);
    if (!strcmp(cmd, "lsetxattr"))
        return result(lsetxattr(argv[2], "user.libcfake", "x", 1, 0) == 0, cmd);
    if (!strcmp(cmd, "removexattr"))
        return result(removexattr(argv[2], "user.keep") == 0, cmd);
    if (!strcmp(cmd, "lremovexattr"))
        return result(lremovexattr(argv[2], "user.keep") == 0, cmd);
    return on_descriptor(cmd, argv[2], argc > 3 ? argv[3] : NULL);
}
