/* fsmeta.c — links and metadata: symlink, link, chmod, chown, the utimensat family and truncate,
 * forwarded by path like fs.c's calls; and fchmod, fchown, futimens and futimes, forwarded only
 * for the master's own descriptors (any other descriptor gets the real call, no round trip). */

#include "shim.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

/* ==================================================================== real functions ===== */
/* libc's own functions, for the calls made under lcf_in_real. Every passthrough does the real *at
 * form of its family (the f-form for a descriptor) through the gate (lcf_real_*, real.h), as do
 * the real calls on anonymous descriptors. */

static int real_symlinkat(const char *target, int dirfd, const char *path)
{
    LCF_REAL(symlinkat, int, const char *, int, const char *);
    return libc_symlinkat(target, dirfd, path);
}

static int real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       int flags)
{
    LCF_REAL(linkat, int, int, const char *, int, const char *, int);
    return libc_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

static int real_fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    LCF_REAL(fchmodat, int, int, const char *, mode_t, int);
    return libc_fchmodat(dirfd, path, mode, flags);
}

static int real_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    LCF_REAL(fchownat, int, int, const char *, uid_t, gid_t, int);
    return libc_fchownat(dirfd, path, uid, gid, flags);
}

static int real_utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
    LCF_REAL(utimensat, int, int, const char *, const struct timespec *, int);
    return libc_utimensat(dirfd, path, times, flags);
}

static int real_truncate(const char *path, off_t length)
{
    LCF_REAL(truncate, int, const char *, off_t);
    return libc_truncate(path, length);
}

static int real_fchmod(int fd, mode_t mode)
{
    LCF_REAL(fchmod, int, int, mode_t);
    return libc_fchmod(fd, mode);
}

static int real_fchown(int fd, uid_t uid, gid_t gid)
{
    LCF_REAL(fchown, int, int, uid_t, gid_t);
    return libc_fchown(fd, uid, gid);
}

static int real_futimens(int fd, const struct timespec times[2])
{
    LCF_REAL(futimens, int, int, const struct timespec *);
    return libc_futimens(fd, times);
}

/* =========================================================================== helpers ===== */

bool lcf_fd_to_master(int fd)
{
    if (lcf_is_master_fd(fd))
        return true;
    int saved = errno;
    char proc[32], first[1];
    bool bad = fd < 0 || fcntl(fd, F_GETFD) < 0;
    if (!bad)
        lcf_proc_fd_path(proc, fd);
    /* "pipe:[12]", "socket:[34]", "anon_inode:[eventfd]"; a file has its path ("/...") */
    bool anonymous = !bad && lcf_real_readlink(proc, first, sizeof first) == 1 && first[0] != '/';
    errno = saved;
    return !bad && !anonymous; /* (no /proc: asked, the master decides) */
}

/* Starts a request about one of the master's descriptors. */
static void file_request(struct lcf_request *req, uint32_t function, const char *symbol, int fd)
{
    lcf_request_init(req, function, symbol);
    lcf_request_fd(req, LCF_FD_FILE, fd);
}

/* An owner or group for values[]: (uid_t)-1 ("keep it") stays -1. */
static int64_t id_value(unsigned int id)
{
    return id == (unsigned int)-1 ? -1 : (int64_t)id;
}

static bool nsec_valid(long nsec)
{
    return (nsec >= 0 && nsec <= 999999999) || nsec == UTIME_NOW || nsec == UTIME_OMIT;
}

/* Whether the kernel accepts utimensat's times (NULL: now for both). */
static bool times_valid(const struct timespec *times)
{
    return times == NULL || (nsec_valid(times[0].tv_nsec) && nsec_valid(times[1].tv_nsec));
}

/* Puts utimensat's times into values (atime s, ns, mtime s, ns); NULL means now for both. */
static void times_values(struct lcf_request *req, const struct timespec *times)
{
    static const struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    const struct timespec *t = times != NULL ? times : now;
    req->call.values[0] = t[0].tv_sec;
    req->call.values[1] = t[0].tv_nsec;
    req->call.values[2] = t[1].tv_sec;
    req->call.values[3] = t[1].tv_nsec;
}

/* Whether both times are UTIME_OMIT: then the kernel does nothing, not even look at the path. */
static bool omits_both(const struct timespec *times)
{
    return times != NULL && times[0].tv_nsec == UTIME_OMIT && times[1].tv_nsec == UTIME_OMIT;
}

/* Turns utimes' timevals into utimensat's timespecs in ts; returns ts, or NULL for NULL. A
 * microsecond count out of range becomes a nanosecond count utimensat refuses (EINVAL). */
static const struct timespec *timeval_times(const struct timeval *tv, struct timespec ts[2])
{
    if (tv == NULL)
        return NULL;
    for (int i = 0; i < 2; i++) {
        bool valid = tv[i].tv_usec >= 0 && tv[i].tv_usec < 1000000;
        ts[i] = (struct timespec){tv[i].tv_sec, valid ? tv[i].tv_usec * 1000 : -1};
    }
    return ts;
}

/* =========================================================================== symlink ===== */

/* Prepares a symlink's target: copied exactly as given, never resolved. */
static int target_init(struct fs_path *p, const char *target)
{
    p->str = p->buf;
    p->dirfd = -1;
    if (target == NULL)
        return fs_fail(EFAULT);
    size_t n = strnlen(target, LCF_MAX_PATH + 1);
    if (n > LCF_MAX_PATH)
        return fs_fail(ENAMETOOLONG);
    memcpy(p->buf, target, n);
    p->buf[n] = '\0';
    n = strlen(p->buf);
    if (n == 0)
        return fs_fail(ENOENT);
    p->len = (int32_t)n;
    return 0;
}

static int fs_symlinkat(const char *symbol, const char *target, int dirfd, const char *path)
{
    if (lcf_in_real)
        return real_symlinkat(target, dirfd, path);
    FS_PATH(to);
    FS_PATH(link);
    if (target_init(&to, target) < 0 || fs_path_init(&link, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_SYMLINK, symbol, &to, &link);
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_symlinkat(to.str, fs_real_dirfd(&link), link.str);
    return ret;
}

LCF_EXPORT int symlink(const char *target, const char *path)
{
    return fs_symlinkat("symlink", target, AT_FDCWD, path);
}

LCF_EXPORT int symlinkat(const char *target, int dirfd, const char *path)
{
    return fs_symlinkat("symlinkat", target, dirfd, path);
}

/* ============================================================================== link ===== */

/* Prepares linkat's (olddirfd, "") with AT_EMPTY_PATH: the file the descriptor refers to, sent
 * as the descriptor and an empty path (the master names it by its descriptor); the current
 * directory itself for AT_FDCWD. */
static int empty_path_init(struct fs_path *p, int dirfd)
{
    if (dirfd == AT_FDCWD)
        return fs_path_init(p, AT_FDCWD, ".");
    if (dirfd < 0 || fcntl(dirfd, F_GETFD) < 0)
        return fs_fail(EBADF);
    p->str = "";
    p->len = 0;
    p->dirfd = dirfd; /* (pinned by the caller, duplicated again when sent) */
    p->own = -1;
    return 0;
}

/* linkat; with AT_EMPTY_PATH and "" it links the file a descriptor refers to: the master decides
 * for its own files and for host files (never linked), as for a path. */
static int fs_linkat(const char *symbol, int olddirfd, const char *oldpath, int newdirfd,
                     const char *newpath, int flags)
{
    bool empty = fs_is_fd_operation(oldpath, flags);
    if (lcf_in_real)
        return real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
    FD_PIN(file, empty && olddirfd != AT_FDCWD ? olddirfd : -1); /* checked, then linked */
    if (empty && olddirfd != AT_FDCWD && !lcf_fd_to_master(file))
        return lcf_real_linkat(file, oldpath, newdirfd, newpath, flags); /* an anonymous file */
    if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))
        return fs_fail(EINVAL);
    FS_PATH(from);
    FS_PATH(to);
    if ((empty ? empty_path_init(&from, olddirfd != AT_FDCWD ? file : olddirfd)
               : fs_path_init(&from, olddirfd, oldpath)) < 0 ||
        fs_path_init(&to, newdirfd, newpath) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_LINK, symbol, &from, &to);
    req.call.flags = flags & AT_SYMLINK_FOLLOW;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH) /* "" with AT_EMPTY_PATH: the descriptor's */
        return lcf_real_linkat(fs_real_dirfd(&from), from.str, fs_real_dirfd(&to), to.str,
                               flags);
    return ret;
}

LCF_EXPORT int link(const char *oldpath, const char *newpath)
{
    return fs_linkat("link", AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

LCF_EXPORT int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                      int flags)
{
    return fs_linkat("linkat", olddirfd, oldpath, newdirfd, newpath, flags);
}

/* ============================================================================= chmod ===== */

static int fs_fchmodat(const char *symbol, int dirfd, const char *path, mode_t mode, int flags)
{
    if (lcf_in_real)
        return real_fchmodat(dirfd, path, mode, flags);
    if (flags & ~AT_SYMLINK_NOFOLLOW) /* like glibc */
        return fs_fail(EINVAL);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_CHMOD, symbol, &p, NULL);
    req.call.mode = mode;
    req.call.flags = flags;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_fchmodat(fs_real_dirfd(&p), p.str, mode, flags);
    return ret;
}

LCF_EXPORT int chmod(const char *path, mode_t mode)
{
    return fs_fchmodat("chmod", AT_FDCWD, path, mode, 0);
}

LCF_EXPORT int lchmod(const char *path, mode_t mode)
{
    return fs_fchmodat("lchmod", AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW);
}

LCF_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    return fs_fchmodat("fchmodat", dirfd, path, mode, flags);
}

LCF_EXPORT int fchmod(int given, mode_t mode)
{
    if (lcf_in_real)
        return real_fchmod(given, mode);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return lcf_real_fchmod(fd, mode);
    struct lcf_request req;
    file_request(&req, LCF_FCHMOD, "fchmod", fd);
    req.call.mode = mode;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_fchmod(fd, mode);
    return ret;
}

/* ============================================================================= chown ===== */

/* fchown, and fchownat on the descriptor itself. */
static int fs_fchown(const char *symbol, int given, uid_t uid, gid_t gid)
{
    if (lcf_in_real)
        return real_fchown(given, uid, gid);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return lcf_real_fchown(fd, uid, gid);
    struct lcf_request req;
    file_request(&req, LCF_FCHOWN, symbol, fd);
    req.call.values[0] = id_value(uid);
    req.call.values[1] = id_value(gid);
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_fchown(fd, uid, gid);
    return ret;
}

static int fs_fchownat(const char *symbol, int dirfd, const char *path, uid_t uid, gid_t gid,
                       int flags)
{
    if (lcf_in_real)
        return real_fchownat(dirfd, path, uid, gid, flags);
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
        return fs_fail(EINVAL);
    if (fs_is_fd_operation(path, flags) && dirfd != AT_FDCWD)
        return fs_fchown(symbol, dirfd, uid, gid);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, fs_is_fd_operation(path, flags) ? "." : path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_CHOWN, symbol, &p, NULL);
    req.call.values[0] = id_value(uid);
    req.call.values[1] = id_value(gid);
    req.call.flags = flags & AT_SYMLINK_NOFOLLOW;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_fchownat(fs_real_dirfd(&p), p.str, uid, gid, flags & ~AT_EMPTY_PATH);
    return ret;
}

LCF_EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
    return fs_fchownat("chown", AT_FDCWD, path, uid, gid, 0);
}

LCF_EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
    return fs_fchownat("lchown", AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

LCF_EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    return fs_fchownat("fchownat", dirfd, path, uid, gid, flags);
}

LCF_EXPORT int fchown(int fd, uid_t uid, gid_t gid)
{
    return fs_fchown("fchown", fd, uid, gid);
}

/* ============================================================================ utimes ===== */

/* futimens, and the other entry points' forms that name a descriptor. */
static int fs_futimens(const char *symbol, int given, const struct timespec times[2])
{
    if (lcf_in_real)
        return real_futimens(given, times);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return lcf_real_futimens(fd, times);
    if (!times_valid(times))
        return fs_fail(EINVAL);
    if (omits_both(times))
        return 0;
    struct lcf_request req;
    file_request(&req, LCF_FUTIMENS, symbol, fd);
    times_values(&req, times);
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_futimens(fd, times);
    return ret;
}

/* utimensat and every path form of utimes; glibc's own utimensat refuses a NULL path. */
static int fs_utimensat(const char *symbol, int dirfd, const char *path,
                        const struct timespec times[2], int flags)
{
    if (lcf_in_real || path == NULL)
        return real_utimensat(dirfd, path, times, flags);
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
        return fs_fail(EINVAL);
    if (fs_is_fd_operation(path, flags) && dirfd != AT_FDCWD)
        return fs_futimens(symbol, dirfd, times);
    if (!times_valid(times))
        return fs_fail(EINVAL);
    if (omits_both(times))
        return 0;
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, fs_is_fd_operation(path, flags) ? "." : path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_UTIMENS, symbol, &p, NULL);
    times_values(&req, times);
    req.call.flags = flags & AT_SYMLINK_NOFOLLOW;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_utimensat(fs_real_dirfd(&p), p.str, times, flags & ~AT_EMPTY_PATH);
    return ret;
}

LCF_EXPORT int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
    return fs_utimensat("utimensat", dirfd, path, times, flags);
}

LCF_EXPORT int futimens(int fd, const struct timespec times[2])
{
    return fs_futimens("futimens", fd, times);
}

LCF_EXPORT int utimes(const char *path, const struct timeval tv[2])
{
    struct timespec ts[2];
    return fs_utimensat("utimes", AT_FDCWD, path, timeval_times(tv, ts), 0);
}

LCF_EXPORT int lutimes(const char *path, const struct timeval tv[2])
{
    struct timespec ts[2];
    return fs_utimensat("lutimes", AT_FDCWD, path, timeval_times(tv, ts), AT_SYMLINK_NOFOLLOW);
}

LCF_EXPORT int futimes(int fd, const struct timeval tv[2])
{
    struct timespec ts[2];
    return fs_futimens("futimes", fd, timeval_times(tv, ts));
}

/* Like glibc: a NULL path means the descriptor itself. */
LCF_EXPORT int futimesat(int dirfd, const char *path, const struct timeval tv[2])
{
    struct timespec ts[2];
    if (path == NULL)
        return fs_futimens("futimesat", dirfd, timeval_times(tv, ts));
    return fs_utimensat("futimesat", dirfd, path, timeval_times(tv, ts), 0);
}

LCF_EXPORT int utime(const char *path, const struct utimbuf *times)
{
    struct timespec ts[2];
    if (times != NULL) {
        ts[0] = (struct timespec){times->actime, 0};
        ts[1] = (struct timespec){times->modtime, 0};
    }
    return fs_utimensat("utime", AT_FDCWD, path, times != NULL ? ts : NULL, 0);
}

/* ========================================================================== truncate ===== */

static int fs_truncate(const char *symbol, const char *path, off_t length)
{
    if (lcf_in_real)
        return real_truncate(path, length);
    if (length < 0)
        return fs_fail(EINVAL);
    FS_PATH(p);
    if (fs_path_init(&p, AT_FDCWD, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_TRUNCATE, symbol, &p, NULL);
    req.call.values[0] = length;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_truncate(p.str, length);
    return ret;
}

/* off_t is off64_t on x86_64; truncate64 relies on it. */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "off_t layout");

LCF_EXPORT int truncate(const char *path, off_t length)
{
    return fs_truncate("truncate", path, length);
}

LCF_EXPORT int truncate64(const char *path, off64_t length)
{
    return fs_truncate("truncate64", path, length);
}

/* ============================================================================= ioctl ===== */
/* The ioctls that change a file's attributes (chattr's FS_IOC_SETFLAGS: immutable, append-only
 * ...; FS_IOC_FSSETXATTR; the inode generation) go to the master like fchmod: refused on host
 * files, answered ENOTTY by the model (whose files have no such attributes). The argument is
 * copied first, and a passthrough gets the copy. Every other ioctl is libc's, untouched. */

/* Bytes of the argument an attribute ioctl reads, or 0 for any other request. */
static size_t attribute_ioctl(unsigned long request)
{
    switch (request) {
    case FS_IOC_SETFLAGS: case FS_IOC32_SETFLAGS:
    case FS_IOC_SETVERSION: case FS_IOC32_SETVERSION:
        return sizeof(int);
    case FS_IOC_FSSETXATTR:
        return sizeof(struct fsxattr);
    default:
        return 0;
    }
}

LCF_EXPORT int ioctl(int given, unsigned long request, ...)
{
    LCF_REAL(ioctl, int, int, unsigned long, ...);
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    size_t size = attribute_ioctl(request);
    if (size == 0 || lcf_in_real)
        return libc_ioctl(given, request, arg);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return libc_ioctl(fd, request, arg);
    if (arg == NULL)
        return fs_fail(EFAULT);
    union {
        int flags;
        struct fsxattr fsx;
    } copy;
    memcpy(&copy, arg, size);
    struct lcf_request req;
    file_request(&req, LCF_FSIOCTL, "ioctl", fd);
    req.call.values[0] = (int64_t)request;
    req.call.values[1] = size == sizeof(int) ? copy.flags : (int64_t)copy.fsx.fsx_xflags;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return libc_ioctl(fd, request, &copy);
    return ret;
}
