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
