/* real.c — the real libc functions behind the shim's own names: lcf_dlsym, and the lookups the
 * channel and the wrappers use for their own calls (see real.h), each found with dlsym(RTLD_NEXT)
 * on first use. A forwarded call's packets go through lcf_real_sendmsg and lcf_real_recvmsg, never
 * through the shim's sendmsg wrapper (net.c). Also the per-thread lcf_in_real. */

#include "real.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread int lcf_in_real;

void *lcf_dlsym(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (fn == NULL) {
        static const char head[] = "libcfake: cannot find the real ";
        static const char tail[] = " in libc; aborting\n";
        (void)!write(STDERR_FILENO, head, sizeof head - 1);
        (void)!write(STDERR_FILENO, name, strlen(name));
        (void)!write(STDERR_FILENO, tail, sizeof tail - 1);
        abort();
    }
    return fn;
}

int lcf_real_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    LCF_REAL(connect, int, int, const struct sockaddr *, socklen_t);
    return libc_connect(fd, addr, len);
}

/* The shim wraps these too (fs.c, dir.c); the channel itself must reach libc's. */
int lcf_real_fstat(int fd, struct stat *st)
{
    LCF_REAL(fstat, int, int, struct stat *);
    return libc_fstat(fd, st);
}

ssize_t lcf_real_readlink(const char *path, char *buf, size_t size)
{
    LCF_REAL(readlink, ssize_t, const char *, char *, size_t);
    return libc_readlink(path, buf, size);
}

char *lcf_real_getcwd(char *buf, size_t size)
{
    LCF_REAL(getcwd, char *, char *, size_t);
    return libc_getcwd(buf, size);
}

int lcf_real_openat(int dirfd, const char *path, int flags)
{
    LCF_REAL(openat, int, int, const char *, int, ...);
    return libc_openat(dirfd, path, flags);
}

int lcf_real_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    LCF_REAL(fstatat, int, int, const char *, struct stat *, int);
    return libc_fstatat(dirfd, path, st, flags);
}

/* The packets of the channel (transport.c): the shim's sendmsg wrapper (net.c) looks for a
 * destination address in every message, work a forwarded call must not pay twice. */
ssize_t lcf_real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    LCF_REAL(sendmsg, ssize_t, int, const struct msghdr *, int);
    return libc_sendmsg(fd, msg, flags);
}

/* (The shim wraps no recvmsg today; the channel does not depend on that staying so.) */
ssize_t lcf_real_recvmsg(int fd, struct msghdr *msg, int flags)
{
    LCF_REAL(recvmsg, ssize_t, int, struct msghdr *, int);
    return libc_recvmsg(fd, msg, flags);
}
