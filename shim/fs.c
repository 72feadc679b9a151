/* fs.c — the filesystem wrappers: open, fopen and freopen, openat, unlink and remove, rename,
 * stat/lstat/statx (and glibc's pre-2.33 __xstat family), fstat on the master's descriptors,
 * access, mkdir, rmdir, the mknod family (mkfifo too); and the path helpers that fsmeta.c and dir.c share (shim.h). Each family's
 * logic is written once (fs_openat, fs_fstatat, ...); one-line wrappers and small macros stamp out
 * the libc entry points that share it: plain, 64, fortified and legacy. */

#include "shim.h"
#include "data.h"
#include "real.h"
#include "stat_fill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ==================================================================== real functions ===== */
/* libc's own functions, for the calls made under lcf_in_real (libc calling wrapped functions back:
 * the shim decides nothing there, and under libcfake-launch they trap). A passthrough does the
 * real *at form of its family through the gate (lcf_real_*, real.h), on the shim's copy of the
 * path. */

static int real_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    LCF_REAL(openat, int, int, const char *, int, ...);
    return libc_openat(dirfd, path, flags, mode);
}

static int real_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    LCF_REAL(fstatat, int, int, const char *, struct stat *, int);
    return libc_fstatat(dirfd, path, st, flags);
}

static FILE *real_fopen(const char *path, const char *mode)
{
    LCF_REAL(fopen, FILE *, const char *, const char *);
    return libc_fopen(path, mode);
}

FILE *lcf_fdopen(int fd, const char *mode)
{
    LCF_REAL(fdopen, FILE *, int, const char *);
    FILE *f = libc_fdopen(fd, mode);
    if (f == NULL) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return f;
}

/* freopen may open files through wrapped functions, so it runs under the in_real guard. */
static FILE *real_freopen(const char *path, const char *mode, FILE *stream)
{
    LCF_REAL(freopen, FILE *, const char *, const char *, FILE *);
    lcf_in_real++;
    FILE *f = libc_freopen(path, mode, stream);
    lcf_in_real--;
    return f;
}

static int real_unlinkat(int dirfd, const char *path, int flags)
{
    LCF_REAL(unlinkat, int, int, const char *, int);
    return libc_unlinkat(dirfd, path, flags);
}

static int real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                          unsigned int flags)
{
    LCF_REAL(renameat2, int, int, const char *, int, const char *, unsigned int);
    return libc_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

static int real_statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
    LCF_REAL(statx, int, int, const char *, int, unsigned int, struct statx *);
    return libc_statx(dirfd, path, flags, mask, stx);
}

static int real_faccessat(int dirfd, const char *path, int amode, int flags)
{
    LCF_REAL(faccessat, int, int, const char *, int, int);
    return libc_faccessat(dirfd, path, amode, flags);
}

static int real_mkdirat(int dirfd, const char *path, mode_t mode)
{
    LCF_REAL(mkdirat, int, int, const char *, mode_t);
    return libc_mkdirat(dirfd, path, mode);
}

/* ============================================================================= paths ===== */

int fs_fail(int err)
{
    errno = err;
    return -1;
}

/* Joins the current directory and the relative path p->buf holds (n bytes) in p->buf: the path
 * is moved to the end of the buffer, the directory written before it. Returns the length, or -1
 * with errno (ENAMETOOLONG when both do not fit). */
static int join_cwd(struct fs_path *p, size_t n)
{
    char *buf = p->buf;
    size_t tail = LCF_MAX_PATH - n; /* where the path waits; the directory gets what is before */
    if (tail < 2)
        return fs_fail(ENAMETOOLONG);
    memmove(buf + tail, buf, n);
    if (lcf_real_getcwd(buf, tail) == NULL)
        return fs_fail(errno == ERANGE ? ENAMETOOLONG : errno);
    size_t k = strlen(buf);
    if (k > 0 && buf[k - 1] != '/')
        buf[k++] = '/';
    if (k > tail) /* "/" needed one byte more: the joined path is LCF_MAX_PATH + 1 long */
        return fs_fail(ENAMETOOLONG);
    memmove(buf + k, buf + tail, n);
    buf[k + n] = '\0';
    return (int)(k + n);
}

/* Prepares the program's (dirfd, path) as the kernel would see it. The path is copied into p->buf
 * first, and only the copy is used from then on, for the checks and for the real call (p->str,
 * from fs_real_dirfd): a second thread rewriting the program's buffer meanwhile changes nothing.
 * Returns 0, or -1 with errno (EFAULT, ENOENT, ENAMETOOLONG, EBADF) for calls the kernel would
 * refuse outright. */
int fs_path_init(struct fs_path *p, int dirfd, const char *path)
{
    p->str = p->buf;
    p->len = 0;
    p->dirfd = -1;
    p->own = -1;
    p->buf[0] = '\0';
    if (path == NULL)
        return fs_fail(EFAULT);
    size_t n = strnlen(path, LCF_MAX_PATH + 1);
    if (n > LCF_MAX_PATH)
        return fs_fail(ENAMETOOLONG);
    memcpy(p->buf, path, n);
    p->buf[n] = '\0';
    n = strlen(p->buf); /* the program may have shortened it meanwhile: the copy counts */
    if (n == 0)
        return fs_fail(ENOENT);
    p->len = (int32_t)n;
    if (p->buf[0] == '/')
        return 0;
    if (dirfd == AT_FDCWD) {
        int len = join_cwd(p, n);
        if (len < 0)
            return -1;
        p->len = len;
        return 0;
    }
    if (dirfd < 0 || fcntl(dirfd, F_GETFD) < 0)
        return fs_fail(EBADF);
    p->dirfd = dirfd; /* (duplicated when sent: see fs_path) */
    return 0;
}

int fs_real_dirfd(const struct fs_path *p)
{
    return p->own >= 0 ? p->own : p->dirfd >= 0 ? p->dirfd : AT_FDCWD;
}

void fs_path_release(struct fs_path *p)
{
    if (p->own >= 0) {
        int saved = errno;
        close(p->own);
        errno = saved;
        p->own = -1;
    }
}

int fs_pin(int fd)
{
    int saved = errno;
    int own = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    errno = saved;
    return own >= 0 ? own : fd;
}

void fs_unpin(struct fs_pinned *pinned)
{
    if (pinned->fd != pinned->given && pinned->fd >= 0) {
        int saved = errno;
        close(pinned->fd);
        errno = saved;
    }
}

/* Whether (path, flags) asks for the file dirfd refers to itself: then no path is involved. */
bool fs_is_fd_operation(const char *path, int flags)
{
    return (flags & AT_EMPTY_PATH) && path != NULL && path[0] == '\0';
}

/* Starts a request naming one or two prepared paths, with their directory fds if any. */
void fs_request(struct lcf_request *req, uint32_t function, const char *symbol,
                struct fs_path *p1, struct fs_path *p2)
{
    lcf_request_init(req, function, symbol);
    req->str1 = p1->str;
    req->call.length1 = p1->len;
    if (p1->dirfd >= 0) {
        lcf_request_fd(req, LCF_FD_DIR1, p1->dirfd);
        req->pins[0] = &p1->own;
    }
    if (p2 != NULL) {
        req->str2 = p2->str;
        req->call.length2 = p2->len;
        if (p2->dirfd >= 0) {
            lcf_request_fd(req, LCF_FD_DIR2, p2->dirfd);
            req->pins[1] = &p2->own;
        }
    }
}

/* Forwards a call whose answer is a plain int. Returns LCF_PASSTHROUGH, or LCF_ANSWER with *ret
 * the program's return value (and errno on failure), or -1 when the call failed closed. */
int fs_int_call(const struct lcf_request *req, int *ret)
{
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(req, &reply, &fd, NULL, 0);
    if (action == LCF_ANSWER)
        *ret = reply.result < 0 ? fs_fail(reply.error) : reply.result;
    return action;
}

/* ============================================================================== open ===== */

static bool open_is_readonly(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) == 0 &&
           (flags & O_TMPFILE) != O_TMPFILE;
}

/* Forwards an open. Returns the new fd, or -1 with errno, or -2 when the caller must do the
 * real call itself (passthrough), on the copy in *p. */
int fs_open_forward(const char *symbol, uint32_t function, int dirfd, const char *path, int flags,
                    mode_t mode, struct fs_path *p)
{
    if (fs_path_init(p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, function, symbol, p, NULL);
    req.call.flags = flags;
    req.call.mode = __OPEN_NEEDS_MODE(flags) ? mode : 0;
    req.readonly = open_is_readonly(flags);
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(&req, &reply, &fd, NULL, 0);
    if (action == LCF_PASSTHROUGH)
        return -2;
    if (action < 0)
        return -1;
    if (reply.result < 0)
        return fs_fail(reply.error);
    if (!(flags & O_CLOEXEC)) /* it arrived with MSG_CMSG_CLOEXEC */
        fcntl(fd, F_SETFD, 0);
    lcf_watch(fd, reply.flags); /* (0 clears a stale mark) */
    return fd;
}

static int fs_openat(const char *symbol, uint32_t function, int dirfd, const char *path,
                     int flags, mode_t mode)
{
    if (lcf_in_real)
        return real_openat(dirfd, path, flags, mode);
    FS_PATH(p);
    int fd = fs_open_forward(symbol, function, dirfd, path, flags, mode, &p);
    return fd == -2 ? lcf_real_openat(fs_real_dirfd(&p), p.str, flags, mode) : fd;
}

/* The fortified variants are the plain ones without a mode: like glibc, refuse a call that needs one. */
static int fs_openat_2(const char *symbol, uint32_t function, int dirfd, const char *path,
                       int flags)
{
    if (__OPEN_NEEDS_MODE(flags)) {
        static const char msg[] = "*** invalid open call: O_CREAT or O_TMPFILE without mode ***\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        abort();
    }
    return fs_openat(symbol, function, dirfd, path, flags, 0);
}

/* Reads open's optional mode argument, present only when the flags need one. */
#define OPEN_MODE(flags, last)                                                                   \
    mode_t mode = 0;                                                                             \
    if (__OPEN_NEEDS_MODE(flags)) {                                                              \
        va_list ap;                                                                              \
        va_start(ap, last);                                                                      \
        mode = (mode_t)va_arg(ap, int);                                                          \
        va_end(ap);                                                                              \
    }

#define OPEN_WRAPPER(name)                                                                       \
    LCF_EXPORT int name(const char *path, int flags, ...)                                        \
    {                                                                                            \
        OPEN_MODE(flags, flags);                                                                 \
        return fs_openat(#name, LCF_OPEN, AT_FDCWD, path, flags, mode);                          \
    }

#define OPENAT_WRAPPER(name)                                                                     \
    LCF_EXPORT int name(int dirfd, const char *path, int flags, ...)                             \
    {                                                                                            \
        OPEN_MODE(flags, flags);                                                                 \
        return fs_openat(#name, LCF_OPENAT, dirfd, path, flags, mode);                           \
    }

#define OPEN_2_WRAPPER(name)                                                                     \
    LCF_EXPORT int name(const char *path, int flags)                                             \
    {                                                                                            \
        return fs_openat_2(#name, LCF_OPEN, AT_FDCWD, path, flags);                              \
    }

#define OPENAT_2_WRAPPER(name)                                                                   \
    LCF_EXPORT int name(int dirfd, const char *path, int flags)                                  \
    {                                                                                            \
        return fs_openat_2(#name, LCF_OPENAT, dirfd, path, flags);                               \
    }

#define CREAT_WRAPPER(name)                                                                      \
    LCF_EXPORT int name(const char *path, mode_t mode)                                           \
    {                                                                                            \
        return fs_openat(#name, LCF_OPEN, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);   \
    }

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)
OPEN_2_WRAPPER(__open_2)
OPEN_2_WRAPPER(__open64_2)
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)
OPENAT_2_WRAPPER(__openat_2)
OPENAT_2_WRAPPER(__openat64_2)
CREAT_WRAPPER(creat)
CREAT_WRAPPER(creat64)

/* ============================================================================= fopen ===== */

#define STDIO_MODE_SIZE 16 /* bytes of a mode string kept for fdopen */

/* Turns an fopen mode ("r", "w+", "ax", "re", "rb,ccs=UTF-8") into O_* flags, and the same mode
 * without 'x', 'e' and ",ccs=" into fdmode, for fdopen. Returns 0, or -1 with EINVAL. */
static int parse_stdio_mode(const char *mode, int *flags, char fdmode[STDIO_MODE_SIZE])
{
    if (mode == NULL)
        return fs_fail(EINVAL);
    switch (mode[0]) {
    case 'r': *flags = O_RDONLY; break;
    case 'w': *flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': *flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: return fs_fail(EINVAL);
    }
    size_t n = 0;
    fdmode[n++] = mode[0];
    for (const char *c = mode + 1; *c != '\0' && *c != ','; c++) {
        if (*c == '+')
            *flags = (*flags & ~O_ACCMODE) | O_RDWR;
        else if (*c == 'x')
            *flags |= O_EXCL;
        else if (*c == 'e')
            *flags |= O_CLOEXEC;
        if (*c != 'x' && *c != 'e' && n < STDIO_MODE_SIZE - 1)
            fdmode[n++] = *c;
    }
    fdmode[n] = '\0';
    return 0;
}

static FILE *fs_fopen(const char *symbol, const char *path, const char *mode)
{
    int saved = errno;
    int flags;
    char fdmode[STDIO_MODE_SIZE];
    if (lcf_in_real)
        return real_fopen(path, mode);
    if (parse_stdio_mode(mode, &flags, fdmode) < 0)
        return NULL;
    FS_PATH(p);
    int fd = fs_open_forward(symbol, LCF_OPEN, AT_FDCWD, path, flags, 0666, &p);
    if (fd == -2 && strchr(mode, ',') != NULL) /* ",ccs=": only fopen sets up the conversion */
        return real_fopen(p.str, mode);
    if (fd == -2) /* as glibc's fopen opens, through the gate, and the same stream around it */
        fd = lcf_real_openat(AT_FDCWD, p.str, flags, 0666);
    if (fd < 0)
        return NULL;
    FILE *f = lcf_data_fdopen(fd, fdmode); /* (a watched file's stream checks its flushes) */
    if (f != NULL)
        errno = saved;
    return f;
}

/* freopen with a forwarded open: the stream is reopened on the fd the master sent, through
 * /proc/self/fd (with the mode minus 'x': the file exists by then), and that fd is closed. */
static FILE *fs_freopen(const char *symbol, const char *path, const char *mode, FILE *stream)
{
    int saved = errno;
    int flags;
    char fdmode[STDIO_MODE_SIZE];
    if (lcf_in_real || path == NULL)
        return real_freopen(path, mode, stream);
    if (parse_stdio_mode(mode, &flags, fdmode) < 0)
        return NULL;
    FS_PATH(p);
    int fd = fs_open_forward(symbol, LCF_OPEN, AT_FDCWD, path, flags, 0666, &p);
    if (fd == -2)
        return real_freopen(p.str, mode, stream);
    if (fd < 0) { /* glibc's freopen closes the stream when the open fails */
        int err = errno;
        fclose(stream);
        errno = err;
        return NULL;
    }
    char proc[32], reopen_mode[STDIO_MODE_SIZE + 1];
    lcf_proc_fd_path(proc, fd);
    size_t n = 0;
    for (const char *c = mode; *c != '\0' && *c != ',' && n < STDIO_MODE_SIZE; c++)
        if (*c != 'x')
            reopen_mode[n++] = *c;
    reopen_mode[n] = '\0';
    FILE *f = real_freopen(proc, reopen_mode, stream);
    int err = errno;
    if (f != NULL) /* the stream's descriptor is the file's now: its watch too */
        lcf_watch(fileno(f), lcf_watched(fd));
    lcf_watch(fd, 0);
    close(fd);
    errno = f != NULL ? saved : err;
    return f;
}

LCF_EXPORT FILE *fopen(const char *path, const char *mode)
{
    return fs_fopen("fopen", path, mode);
}

LCF_EXPORT FILE *fopen64(const char *path, const char *mode)
{
    return fs_fopen("fopen64", path, mode);
}

LCF_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    return fs_freopen("freopen", path, mode, stream);
}

LCF_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    return fs_freopen("freopen64", path, mode, stream);
}

/* ====================================================================== unlink, rmdir ===== */

static int fs_unlinkat(const char *symbol, int dirfd, const char *path, int flags)
{
    if (lcf_in_real)
        return real_unlinkat(dirfd, path, flags);
    if (flags & ~AT_REMOVEDIR)
        return fs_fail(EINVAL);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, (flags & AT_REMOVEDIR) ? LCF_RMDIR : LCF_UNLINK, symbol, &p, NULL);
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_unlinkat(fs_real_dirfd(&p), p.str, flags);
    return ret;
}

LCF_EXPORT int unlink(const char *path)
{
    return fs_unlinkat("unlink", AT_FDCWD, path, 0);
}

LCF_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    return fs_unlinkat("unlinkat", dirfd, path, flags);
}

LCF_EXPORT int rmdir(const char *path)
{
    return fs_unlinkat("rmdir", AT_FDCWD, path, AT_REMOVEDIR);
}

/* Like glibc: unlink, and if that says the path is a directory, rmdir. */
LCF_EXPORT int remove(const char *path)
{
    int saved = errno;
    if (fs_unlinkat("remove", AT_FDCWD, path, 0) == 0)
        return 0;
    if (errno != EISDIR)
        return -1;
    errno = saved;
    return fs_unlinkat("remove", AT_FDCWD, path, AT_REMOVEDIR);
}

/* ============================================================================ rename ===== */

static int fs_renameat2(const char *symbol, int olddirfd, const char *oldpath, int newdirfd,
                        const char *newpath, unsigned int flags)
{
    if (lcf_in_real)
        return real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
    FS_PATH(from);
    FS_PATH(to);
    if (fs_path_init(&from, olddirfd, oldpath) < 0 || fs_path_init(&to, newdirfd, newpath) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_RENAME, symbol, &from, &to);
    req.call.flags = (int32_t)flags;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_renameat2(fs_real_dirfd(&from), from.str, fs_real_dirfd(&to), to.str,
                                  flags);
    return ret;
}

LCF_EXPORT int rename(const char *oldpath, const char *newpath)
{
    return fs_renameat2("rename", AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

LCF_EXPORT int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    return fs_renameat2("renameat", olddirfd, oldpath, newdirfd, newpath, 0);
}

LCF_EXPORT int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                         unsigned int flags)
{
    return fs_renameat2("renameat2", olddirfd, oldpath, newdirfd, newpath, flags);
}

/* ============================================================================== stat ===== */

/* Forwards a stat request. Returns 1 with *out filled, 0 when the caller must do the real call
 * (passthrough), or -1 with errno. */
static int fs_stat_call(const struct lcf_request *req, struct lcf_stat *out)
{
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(req, &reply, &fd, out, sizeof *out);
    if (action == LCF_PASSTHROUGH)
        return 0;
    if (action < 0)
        return -1;
    return reply.result < 0 ? fs_fail(reply.error) : 1;
}

/* Forwards a stat or lstat of a path; returns as fs_stat_call (a passthrough on the copy in *p). */
static int fs_stat_forward(const char *symbol, int dirfd, const char *path, int flags,
                           struct lcf_stat *out, struct fs_path *p)
{
    if (fs_path_init(p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, (flags & AT_SYMLINK_NOFOLLOW) ? LCF_LSTAT : LCF_STAT, symbol, p, NULL);
    req.readonly = true;
    return fs_stat_call(&req, out);
}

/* Forwards an fstat of one of the master's descriptors, whose real st_mode is `mode`; returns as
 * fs_stat_call. */
static int fs_fstat_forward(const char *symbol, int fd, mode_t mode, struct lcf_stat *out)
{
    struct lcf_request req;
    lcf_request_init(&req, LCF_FSTAT, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    req.directory = S_ISDIR(mode);
    return fs_stat_call(&req, out);
}

/* fstat & co.: the real call first; when its st_dev says fd is one of the master's descriptors,
 * the master's answer replaces it (a passthrough keeps the real one). */
static int fs_fstat(const char *symbol, int fd, struct stat *st)
{
    int ret = lcf_real_fstat(fd, st);
    if (ret < 0 || lcf_in_real || !lcf_is_master_dev(st->st_dev))
        return ret;
    struct lcf_stat s;
    int got = fs_fstat_forward(symbol, fd, st->st_mode, &s);
    if (got > 0)
        lcf_fill_stat(st, &s);
    return got < 0 ? -1 : 0;
}

/* statx on the descriptor itself (AT_EMPTY_PATH and ""), like fs_fstat. */
static int fs_fstatx(int fd, int flags, unsigned int mask, struct statx *stx)
{
    int ret = lcf_real_statx(fd, "", flags, mask, stx);
    if (ret < 0 || lcf_in_real ||
        !lcf_is_master_dev(makedev(stx->stx_dev_major, stx->stx_dev_minor)))
        return ret;
    struct lcf_stat s;
    int got = fs_fstat_forward("statx", fd, stx->stx_mode, &s);
    if (got > 0)
        lcf_fill_statx(stx, &s);
    return got < 0 ? -1 : 0;
}

static int fs_fstatat(const char *symbol, int dirfd, const char *path, struct stat *st, int flags)
{
    if (lcf_in_real)
        return real_fstatat(dirfd, path, st, flags);
    if (fs_is_fd_operation(path, flags) && dirfd != AT_FDCWD)
        return fs_fstat(symbol, dirfd, st);
    if (fs_is_fd_operation(path, flags))
        path = "."; /* the current directory itself */
    struct lcf_stat s;
    FS_PATH(p);
    int got = fs_stat_forward(symbol, dirfd, path, flags, &s, &p);
    if (got == 0)
        return lcf_real_fstatat(fs_real_dirfd(&p), p.str, st, flags & ~AT_EMPTY_PATH);
    if (got < 0)
        return -1;
    lcf_fill_stat(st, &s);
    return 0;
}

LCF_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
    if (lcf_in_real)
        return real_statx(dirfd, path, flags, mask, stx);
    if (fs_is_fd_operation(path, flags) && dirfd != AT_FDCWD)
        return fs_fstatx(dirfd, flags, mask, stx);
    if (fs_is_fd_operation(path, flags))
        path = "."; /* the current directory itself */
    struct lcf_stat s;
    FS_PATH(p);
    int got = fs_stat_forward("statx", dirfd, path, flags, &s, &p);
    if (got == 0)
        return lcf_real_statx(fs_real_dirfd(&p), p.str, flags & ~AT_EMPTY_PATH, mask, stx);
    if (got < 0)
        return -1;
    lcf_fill_statx(stx, &s);
    return 0;
}

/* struct stat64 is struct stat on x86_64; the casts below rely on it. */
_Static_assert(sizeof(struct stat64) == sizeof(struct stat), "stat64 layout");

#define STAT_WRAPPER(name, stat_type, flags)                                                     \
    LCF_EXPORT int name(const char *path, stat_type *st)                                         \
    {                                                                                            \
        return fs_fstatat(#name, AT_FDCWD, path, (struct stat *)st, flags);                      \
    }

#define FSTATAT_WRAPPER(name, stat_type)                                                         \
    LCF_EXPORT int name(int dirfd, const char *path, stat_type *st, int flags)                   \
    {                                                                                            \
        return fs_fstatat(#name, dirfd, path, (struct stat *)st, flags);                         \
    }

/* glibc before 2.33 compiled stat() into __xstat(_STAT_VER, ...); the version is always 1 here. */
#define XSTAT_WRAPPER(name, stat_type, flags)                                                    \
    LCF_EXPORT int name(int ver, const char *path, stat_type *st)                                \
    {                                                                                            \
        (void)ver;                                                                               \
        return fs_fstatat(#name, AT_FDCWD, path, (struct stat *)st, flags);                      \
    }

#define FSTAT_WRAPPER(name, stat_type)                                                           \
    LCF_EXPORT int name(int fd, stat_type *st)                                                   \
    {                                                                                            \
        return fs_fstat(#name, fd, (struct stat *)st);                                           \
    }

#define FXSTAT_WRAPPER(name, stat_type)                                                          \
    LCF_EXPORT int name(int ver, int fd, stat_type *st)                                          \
    {                                                                                            \
        (void)ver;                                                                               \
        return fs_fstat(#name, fd, (struct stat *)st);                                           \
    }

#define FXSTATAT_WRAPPER(name, stat_type)                                                        \
    LCF_EXPORT int name(int ver, int dirfd, const char *path, stat_type *st, int flags)          \
    {                                                                                            \
        (void)ver;                                                                               \
        return fs_fstatat(#name, dirfd, path, (struct stat *)st, flags);                         \
    }

STAT_WRAPPER(stat, struct stat, 0)
STAT_WRAPPER(stat64, struct stat64, 0)
STAT_WRAPPER(lstat, struct stat, AT_SYMLINK_NOFOLLOW)
STAT_WRAPPER(lstat64, struct stat64, AT_SYMLINK_NOFOLLOW)
FSTAT_WRAPPER(fstat, struct stat)
FSTAT_WRAPPER(fstat64, struct stat64)
FSTATAT_WRAPPER(fstatat, struct stat)
FSTATAT_WRAPPER(fstatat64, struct stat64)
XSTAT_WRAPPER(__xstat, struct stat, 0)
XSTAT_WRAPPER(__xstat64, struct stat64, 0)
XSTAT_WRAPPER(__lxstat, struct stat, AT_SYMLINK_NOFOLLOW)
XSTAT_WRAPPER(__lxstat64, struct stat64, AT_SYMLINK_NOFOLLOW)
FXSTAT_WRAPPER(__fxstat, struct stat)
FXSTAT_WRAPPER(__fxstat64, struct stat64)
FXSTATAT_WRAPPER(__fxstatat, struct stat)
FXSTATAT_WRAPPER(__fxstatat64, struct stat64)

/* ============================================================================ access ===== */

/* access and friends; flags as faccessat's (AT_EACCESS picks the effective ids). */
static int fs_faccessat(const char *symbol, int dirfd, const char *path, int amode, int flags)
{
    if (lcf_in_real || fs_is_fd_operation(path, flags))
        return real_faccessat(dirfd, path, amode, flags);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, (flags & AT_EACCESS) ? LCF_EACCESS : LCF_ACCESS, symbol, &p, NULL);
    req.call.flags = amode;
    req.readonly = !(amode & W_OK);
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_faccessat(fs_real_dirfd(&p), p.str, amode, flags);
    return ret;
}

LCF_EXPORT int access(const char *path, int amode)
{
    return fs_faccessat("access", AT_FDCWD, path, amode, 0);
}

LCF_EXPORT int faccessat(int dirfd, const char *path, int amode, int flags)
{
    return fs_faccessat("faccessat", dirfd, path, amode, flags);
}

LCF_EXPORT int eaccess(const char *path, int amode)
{
    return fs_faccessat("eaccess", AT_FDCWD, path, amode, AT_EACCESS);
}

LCF_EXPORT int euidaccess(const char *path, int amode)
{
    return fs_faccessat("euidaccess", AT_FDCWD, path, amode, AT_EACCESS);
}

/* ============================================================================= mkdir ===== */

static int fs_mkdirat(const char *symbol, int dirfd, const char *path, mode_t mode)
{
    if (lcf_in_real)
        return real_mkdirat(dirfd, path, mode);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_MKDIR, symbol, &p, NULL);
    req.call.mode = mode;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_mkdirat(fs_real_dirfd(&p), p.str, mode);
    return ret;
}

LCF_EXPORT int mkdir(const char *path, mode_t mode)
{
    return fs_mkdirat("mkdir", AT_FDCWD, path, mode);
}

LCF_EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
    return fs_mkdirat("mkdirat", dirfd, path, mode);
}

/* ============================================================================= mknod ===== */
/* glibc's mkfifo and mkfifoat call its internal mknodat: each entry point is wrapped. The master
 * makes regular files (S_IFREG or no type) in the model and decides the rest. */

static int real_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
    LCF_REAL(mknodat, int, int, const char *, mode_t, dev_t);
    return libc_mknodat(dirfd, path, mode, dev);
}

static int fs_mknodat(const char *symbol, int dirfd, const char *path, mode_t mode, dev_t dev)
{
    if (lcf_in_real)
        return real_mknodat(dirfd, path, mode, dev);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_MKNOD, symbol, &p, NULL);
    req.call.mode = mode;
    req.call.values[0] = (int64_t)dev;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return lcf_real_mknodat(fs_real_dirfd(&p), p.str, mode, dev);
    return ret;
}

LCF_EXPORT int mknod(const char *path, mode_t mode, dev_t dev)
{
    return fs_mknodat("mknod", AT_FDCWD, path, mode, dev);
}

LCF_EXPORT int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
    return fs_mknodat("mknodat", dirfd, path, mode, dev);
}

LCF_EXPORT int mkfifo(const char *path, mode_t mode)
{
    return fs_mknodat("mkfifo", AT_FDCWD, path, S_IFIFO | (mode & 07777), 0);
}

LCF_EXPORT int mkfifoat(int dirfd, const char *path, mode_t mode)
{
    return fs_mknodat("mkfifoat", dirfd, path, S_IFIFO | (mode & 07777), 0);
}

/* glibc before 2.33 compiled mknod() into __xmknod(_MKNOD_VER, path, mode, &dev). */
LCF_EXPORT int __xmknod(int ver, const char *path, mode_t mode, dev_t *dev)
{
    (void)ver;
    if (dev == NULL)
        return fs_fail(EFAULT);
    return fs_mknodat("__xmknod", AT_FDCWD, path, mode, *dev);
}

LCF_EXPORT int __xmknodat(int ver, int dirfd, const char *path, mode_t mode, dev_t *dev)
{
    (void)ver;
    if (dev == NULL)
        return fs_fail(EFAULT);
    return fs_mknodat("__xmknodat", dirfd, path, mode, *dev);
}

/* ================================================================= open_by_handle_at ===== */
/* A file handle (from name_to_handle_at) names any file of a filesystem, whatever path leads to
 * it: there is nothing the model could decide on. Asked of the master (the mount_fd sent), which
 * refuses it or lets it through. */

LCF_EXPORT int open_by_handle_at(int mount_fd, struct file_handle *handle, int flags)
{
    LCF_REAL(open_by_handle_at, int, int, struct file_handle *, int);
    if (lcf_in_real)
        return libc_open_by_handle_at(mount_fd, handle, flags);
    if (mount_fd < 0 || fcntl(mount_fd, F_GETFD) < 0)
        return fs_fail(EBADF);
    struct lcf_request req;
    lcf_request_init(&req, LCF_OPEN_BY_HANDLE, "open_by_handle_at");
    lcf_request_fd(&req, LCF_FD_FILE, mount_fd);
    req.call.flags = flags;
    int ret = -1;
    if (fs_int_call(&req, &ret) == LCF_PASSTHROUGH)
        return libc_open_by_handle_at(mount_fd, handle, flags);
    return ret < 0 ? -1 : fs_fail(EPERM); /* (an answer is a refusal: no descriptor comes) */
}
