/* real.c — the shim's own real calls (see real.h): system calls through the gate (gate.c), and
 * lcf_dlsym, the lookup of libc's functions. Each call is the kernel's own, with libc's errno
 * convention; where libc's function does more than one system call (faccessat with flags on a
 * kernel without faccessat2, fchmodat with flags, statx on a kernel without it) the gate makes
 * the call libc would make first, and libc's function is left the rest. Also the per-thread
 * lcf_in_real. */

#include "real.h"
#include "gate.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

/* A system call through the gate, with up to six arguments of any integer or pointer type. */
#define GATE(nr, ...) gate_call(nr, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define gate_call(nr, a, b, c, d, e, f, ...)                                                     \
    lcf_gate_syscall((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* =========================================================================== channel ===== */

int lcf_real_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)GATE(SYS_connect, fd, addr, len);
}

ssize_t lcf_real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return GATE(SYS_sendmsg, fd, msg, flags);
}

/* (The shim wraps no recvmsg today; the channel does not depend on that staying so.) */
ssize_t lcf_real_recvmsg(int fd, struct msghdr *msg, int flags)
{
    LCF_REAL(recvmsg, ssize_t, int, struct msghdr *, int);
    return libc_recvmsg(fd, msg, flags);
}

char *lcf_real_getcwd(char *buf, size_t size)
{
    LCF_REAL(getcwd, char *, char *, size_t);
    return libc_getcwd(buf, size);
}

/* ============================================================================= paths ===== */

/* glibc's fstat is newfstatat(fd, "", AT_EMPTY_PATH), which the filter traps; fstat is allowed. */
int lcf_real_fstat(int fd, struct stat *st)
{
    return (int)GATE(SYS_fstat, fd, st);
}

int lcf_real_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    return (int)GATE(SYS_newfstatat, dirfd, path, st, flags);
}

int lcf_real_openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (__OPEN_NEEDS_MODE(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return (int)GATE(SYS_openat, dirfd, path, flags, mode);
}

ssize_t lcf_real_readlink(const char *path, char *buf, size_t size)
{
    return GATE(SYS_readlinkat, AT_FDCWD, path, buf, size);
}

ssize_t lcf_real_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return GATE(SYS_readlinkat, dirfd, path, buf, size);
}

int lcf_real_statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
    int ret = (int)GATE(SYS_statx, dirfd, path, flags, mask, stx);
    if (ret < 0 && errno == ENOSYS) { /* before Linux 4.11: glibc's emulation */
        LCF_REAL(statx, int, int, const char *, int, unsigned int, struct statx *);
        return libc_statx(dirfd, path, flags, mask, stx);
    }
    return ret;
}

/* Like glibc: faccessat without flags is the old call; with flags, faccessat2 (Linux 5.8), and
 * glibc's emulation where the kernel lacks it. */
int lcf_real_faccessat(int dirfd, const char *path, int amode, int flags)
{
    if (flags == 0)
        return (int)GATE(SYS_faccessat, dirfd, path, amode);
    int ret = (int)GATE(SYS_faccessat2, dirfd, path, amode, flags);
    if (ret < 0 && errno == ENOSYS) {
        LCF_REAL(faccessat, int, int, const char *, int, int);
        return libc_faccessat(dirfd, path, amode, flags);
    }
    return ret;
}

int lcf_real_mkdirat(int dirfd, const char *path, mode_t mode)
{
    return (int)GATE(SYS_mkdirat, dirfd, path, mode);
}

int lcf_real_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
    return (int)GATE(SYS_mknodat, dirfd, path, mode, dev);
}

int lcf_real_unlinkat(int dirfd, const char *path, int flags)
{
    return (int)GATE(SYS_unlinkat, dirfd, path, flags);
}

int lcf_real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       unsigned int flags)
{
    if (flags == 0) /* like glibc: the old call, which every filesystem has */
        return (int)GATE(SYS_renameat, olddirfd, oldpath, newdirfd, newpath);
    return (int)GATE(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int lcf_real_chdir(const char *path)
{
    return (int)GATE(SYS_chdir, path);
}

int lcf_real_symlinkat(const char *target, int dirfd, const char *path)
{
    return (int)GATE(SYS_symlinkat, target, dirfd, path);
}

int lcf_real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                    int flags)
{
    return (int)GATE(SYS_linkat, olddirfd, oldpath, newdirfd, newpath, flags);
}

/* The kernel's fchmodat takes no flags: glibc emulates AT_SYMLINK_NOFOLLOW (or uses fchmodat2). */
int lcf_real_fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    if (flags != 0) {
        LCF_REAL(fchmodat, int, int, const char *, mode_t, int);
        return libc_fchmodat(dirfd, path, mode, flags);
    }
    return (int)GATE(SYS_fchmodat, dirfd, path, mode);
}

int lcf_real_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    return (int)GATE(SYS_fchownat, dirfd, path, uid, gid, flags);
}

/* glibc refuses a NULL path (EINVAL), which the kernel would take as dirfd's own file. */
int lcf_real_utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
    if (path == NULL) {
        errno = EINVAL;
        return -1;
    }
    return (int)GATE(SYS_utimensat, dirfd, path, times, flags);
}

int lcf_real_truncate(const char *path, off_t length)
{
    return (int)GATE(SYS_truncate, path, length);
}

int lcf_real_fchmod(int fd, mode_t mode)
{
    return (int)GATE(SYS_fchmod, fd, mode);
}

int lcf_real_fchown(int fd, uid_t uid, gid_t gid)
{
    return (int)GATE(SYS_fchown, fd, uid, gid);
}

int lcf_real_futimens(int fd, const struct timespec times[2])
{
    return (int)GATE(SYS_utimensat, fd, NULL, times, 0);
}

ssize_t lcf_real_getxattr(bool follow, const char *path, const char *name, void *value, size_t size)
{
    return GATE(follow ? SYS_getxattr : SYS_lgetxattr, path, name, value, size);
}

ssize_t lcf_real_listxattr(bool follow, const char *path, char *list, size_t size)
{
    return GATE(follow ? SYS_listxattr : SYS_llistxattr, path, list, size);
}

/* =========================================================================== sockets ===== */

int lcf_real_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)GATE(SYS_bind, fd, addr, len);
}

int lcf_real_listen(int fd, int backlog)
{
    return (int)GATE(SYS_listen, fd, backlog);
}

ssize_t lcf_real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                        socklen_t len)
{
    return GATE(SYS_sendto, fd, buf, n, flags, addr, len);
}

int lcf_real_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    return (int)GATE(SYS_sendmmsg, fd, vec, vlen, flags);
}
