/* dir.c — directories and names: readlink, chdir, getcwd, realpath, opendir, scandir and glob.
 * The master hands out a virtual directory as a real "shadow" directory, so reading one (readdir,
 * fdopendir, fchdir) is the kernel's job, but for the entries' inode numbers (listing.c); what is
 * forwarded is naming: which directory a path opens or enters, what a link says, and what the
 * working directory is called. The working directory itself stays real (a shadow directory after
 * chdir into a virtual one): relative paths are resolved against it and mapped back by the
 * master, and only getcwd asks for its name. */

#include "shim.h"
#include "real.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (*scandir_filter)(const struct dirent *);
typedef int (*scandir_compar)(const struct dirent **, const struct dirent **);
typedef int (*glob_errfunc)(const char *, int);

/* ==================================================================== real functions ===== */
/* libc's own functions: for the calls made under lcf_in_real, and for those whose system calls
 * happen inside libc (realpath, scandirat). A passthrough of a single system call goes through
 * the gate instead (lcf_real_*, real.h). */

static ssize_t real_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    LCF_REAL(readlinkat, ssize_t, int, const char *, char *, size_t);
    return libc_readlinkat(dirfd, path, buf, size);
}

static int real_chdir(const char *path)
{
    LCF_REAL(chdir, int, const char *);
    return libc_chdir(path);
}

static char *real_getcwd(char *buf, size_t size)
{
    LCF_REAL(getcwd, char *, char *, size_t);
    return libc_getcwd(buf, size);
}

static char *real_get_current_dir_name(void)
{
    LCF_REAL(get_current_dir_name, char *, void);
    return libc_get_current_dir_name();
}

/* glibc's realpath uses its internal readlink and lstat; the guard keeps anything else it may
 * call (malloc hooks, NSS) away from the master too. */
static char *real_realpath(const char *path, char *resolved)
{
    LCF_REAL(realpath, char *, const char *, char *);
    lcf_in_real++;
    char *r = libc_realpath(path, resolved);
    lcf_in_real--;
    return r;
}

static DIR *real_opendir(const char *path)
{
    LCF_REAL(opendir, DIR *, const char *);
    return libc_opendir(path);
}

static DIR *real_fdopendir(int fd)
{
    LCF_REAL(fdopendir, DIR *, int);
    return libc_fdopendir(fd);
}

static int real_scandirat(int dirfd, const char *path, struct dirent ***namelist,
                          scandir_filter filter, scandir_compar compar)
{
    LCF_REAL(scandirat, int, int, const char *, struct dirent ***, scandir_filter, scandir_compar);
    return libc_scandirat(dirfd, path, namelist, filter, compar);
}

/* A fortified call whose buffer is smaller than it says: glibc's "buffer overflow detected". */
__attribute__((noreturn)) static void chk_fail(void)
{
    LCF_REAL(__chk_fail, void, void);
    libc___chk_fail();
    abort();
}

/* =========================================================================== helpers ===== */

static void *fail_null(int err)
{
    errno = err;
    return NULL;
}

/* Forwards a call whose answer is a text (readlink, getcwd, realpath) into text (LCF_MAX_PATH + 1
 * bytes), NUL-terminated. Returns its length, -1 with errno, or -2 when the caller must do the
 * real call (passthrough). */
static int text_call(const struct lcf_request *req, char *text)
{
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(req, &reply, &fd, text, LCF_MAX_PATH);
    if (action == LCF_PASSTHROUGH)
        return -2;
    if (action < 0)
        return -1;
    if (reply.result < 0)
        return fs_fail(reply.error);
    text[reply.text_length] = '\0';
    return reply.text_length;
}

/* Returns text (n bytes and its NUL) the way getcwd and realpath do: copied into buf when there
 * is one (ERANGE when size bytes are too few), else into a malloc'd buffer of size bytes, or of
 * just enough when size is 0. Returns the buffer, or NULL with errno. */
static char *text_out(const char *text, size_t n, char *buf, size_t size)
{
    if (size != 0 && n + 1 > size)
        return fail_null(ERANGE);
    if (buf == NULL)
        buf = malloc(size != 0 ? size : n + 1);
    if (buf == NULL)
        return NULL;
    memcpy(buf, text, n + 1);
    return buf;
}

/* ========================================================================== readlink ===== */

/* Like the kernel: copies as much of the target as fits, without a NUL, and returns that count. */
static ssize_t fs_readlinkat(const char *symbol, int dirfd, const char *path, char *buf,
                             size_t size)
{
    bool own_link = path != NULL && path[0] == '\0' && dirfd != AT_FDCWD; /* an O_PATH symlink */
    if (lcf_in_real || own_link)
        return real_readlinkat(dirfd, path, buf, size);
    if (size == 0)
        return fs_fail(EINVAL);
    FS_PATH(p);
    if (fs_path_init(&p, dirfd, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_READLINK, symbol, &p, NULL);
    req.readonly = true;
    char text[LCF_MAX_PATH + 1];
    int n = text_call(&req, text);
    if (n == -2)
        return lcf_real_readlinkat(fs_real_dirfd(&p), p.str, buf, size);
    if (n < 0)
        return -1;
    size_t copied = (size_t)n < size ? (size_t)n : size;
    memcpy(buf, text, copied);
    return (ssize_t)copied;
}

LCF_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
    return fs_readlinkat("readlink", AT_FDCWD, path, buf, size);
}

LCF_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return fs_readlinkat("readlinkat", dirfd, path, buf, size);
}

LCF_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t size, size_t buflen)
{
    if (size > buflen)
        chk_fail();
    return fs_readlinkat("__readlink_chk", AT_FDCWD, path, buf, size);
}

LCF_EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t size,
                                    size_t buflen)
{
    if (size > buflen)
        chk_fail();
    return fs_readlinkat("__readlinkat_chk", dirfd, path, buf, size);
}

/* ============================================================================= chdir ===== */

/* The master answers with a descriptor of the directory to enter (a shadow of a virtual one). */
LCF_EXPORT int chdir(const char *path)
{
    if (lcf_in_real)
        return real_chdir(path);
    FS_PATH(p);
    if (fs_path_init(&p, AT_FDCWD, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_CHDIR, "chdir", &p, NULL);
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(&req, &reply, &fd, NULL, 0);
    if (action == LCF_PASSTHROUGH)
        return lcf_real_chdir(p.str);
    if (action < 0)
        return -1;
    if (reply.result < 0)
        return fs_fail(reply.error);
    int saved = errno;
    int ret = fchdir(fd);
    int err = errno;
    close(fd);
    errno = ret == 0 ? saved : err;
    return ret;
}

/* ============================================================================ getcwd ===== */

/* Forwards getcwd with the real working directory; the master's answer is the name the program
 * sees, into text. Returns its length, -1 with errno, or -2 when the caller must do the real call
 * (passthrough, or no real directory to send: the real call then says why). */
static int cwd_forward(const char *symbol, char text[LCF_MAX_PATH + 1])
{
    char real[LCF_MAX_PATH + 1];
    int saved = errno;
    if (real_getcwd(real, sizeof real) == NULL) {
        errno = saved;
        return -2;
    }
    struct lcf_request req;
    lcf_request_init(&req, LCF_GETCWD, symbol);
    req.str1 = real;
    req.call.length1 = (int32_t)strlen(real);
    return text_call(&req, text);
}

static char *fs_getcwd(const char *symbol, char *buf, size_t size)
{
    if (lcf_in_real)
        return real_getcwd(buf, size);
    if (buf != NULL && size == 0)
        return fail_null(EINVAL);
    char text[LCF_MAX_PATH + 1];
    int n = cwd_forward(symbol, text);
    if (n == -2)
        return real_getcwd(buf, size);
    if (n < 0)
        return NULL;
    return text_out(text, (size_t)n, buf, size);
}

LCF_EXPORT char *getcwd(char *buf, size_t size)
{
    return fs_getcwd("getcwd", buf, size);
}

LCF_EXPORT char *__getcwd_chk(char *buf, size_t size, size_t buflen)
{
    if (size > buflen)
        chk_fail();
    return fs_getcwd("__getcwd_chk", buf, size);
}

/* getwd's buffer is PATH_MAX bytes; like glibc, a NULL one is EINVAL. */
static char *fs_getwd(const char *symbol, char *buf, size_t size)
{
    if (buf == NULL)
        return fail_null(EINVAL);
    return fs_getcwd(symbol, buf, size);
}

LCF_EXPORT char *getwd(char *buf)
{
    return fs_getwd("getwd", buf, PATH_MAX);
}

/* Like glibc: getcwd into the buffer, and a buffer too small for the answer is an overflow. */
LCF_EXPORT char *__getwd_chk(char *buf, size_t buflen)
{
    char *r = fs_getwd("__getwd_chk", buf, buflen);
    if (r == NULL && errno == ERANGE)
        chk_fail();
    return r;
}

/* Always the master's name of the directory (glibc's prefers $PWD when it names the same one). */
LCF_EXPORT char *get_current_dir_name(void)
{
    if (lcf_in_real)
        return real_get_current_dir_name();
    char text[LCF_MAX_PATH + 1];
    int n = cwd_forward("get_current_dir_name", text);
    if (n == -2)
        return real_get_current_dir_name();
    if (n < 0)
        return NULL;
    return text_out(text, (size_t)n, NULL, 0);
}

/* ========================================================================== realpath ===== */

/* The path is made absolute (against the real working directory) and resolved by the master;
 * resolved is the caller's PATH_MAX buffer, or NULL for a malloc'd one. */
static char *fs_realpath(const char *symbol, const char *path, char *resolved)
{
    if (lcf_in_real)
        return real_realpath(path, resolved);
    if (path == NULL)
        return fail_null(EINVAL);
    FS_PATH(p);
    if (fs_path_init(&p, AT_FDCWD, path) < 0)
        return NULL;
    struct lcf_request req;
    fs_request(&req, LCF_REALPATH, symbol, &p, NULL);
    req.readonly = true;
    char text[LCF_MAX_PATH + 1];
    int n = text_call(&req, text);
    if (n == -2)
        return real_realpath(p.str, resolved);
    if (n < 0)
        return NULL;
    return text_out(text, (size_t)n, resolved, resolved != NULL ? PATH_MAX : 0);
}

LCF_EXPORT char *realpath(const char *path, char *resolved)
{
    return fs_realpath("realpath", path, resolved);
}

LCF_EXPORT char *canonicalize_file_name(const char *path)
{
    return fs_realpath("canonicalize_file_name", path, NULL);
}

LCF_EXPORT char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
    if (resolvedlen < PATH_MAX)
        chk_fail();
    return fs_realpath("__realpath_chk", path, resolved);
}

/* ======================================================================= DIR streams ===== */
/* glibc's opendir and fdopendir stat the descriptor inside libc (for st_blksize, and to check it
 * is a directory), where the gate cannot reach: under the hybrid backend that is a trap per
 * directory listed, 400 for `ls -lR` or `find` over 5,000 files. So the shim makes the DIR
 * itself, its own stat through the gate, laid out as glibc's __alloc_dir lays it out
 * (sysdeps/unix/sysv/linux/dirstream.h), and leaves all else to glibc: readdir, closedir, seekdir
 * and the rest are glibc's own on either kind, and a DIR passed to libc through dlsym or ctypes
 * works too. Before making any itself, a process checks that the first DIR glibc made for it has
 * that layout, each field holding what __alloc_dir puts there; if one does not, every DIR stays
 * glibc's. */

/* glibc's struct __dirstream on Linux, where struct dirent is struct dirent64 (x86_64). */
struct glibc_dirstream {
    int fd;
    int lock;                      /* __libc_lock_define: an int, 0 when free */
    size_t allocation;             /* bytes of data */
    size_t size;                   /* bytes of data holding entries */
    size_t offset;                 /* the next entry's, in data */
    off_t filepos;                 /* the position of the next entry to read */
    int errcode;                   /* an error kept for the next readdir */
    _Alignas(long double) char data[];
};

_Static_assert(offsetof(struct glibc_dirstream, data) == 48, "glibc's DIR header is 48 bytes");

/* Zeroed bytes after the header, in case a glibc newer than the check's DIR had a field there
 * that is 0 when the stream is new: the check below cannot see past errcode. */
#define DIRSTREAM_SLACK 64

/* 0: not checked yet; 1: glibc's DIR is a struct glibc_dirstream; -1: it is not. */
static int dirstream_layout;

/* __alloc_dir's buffer: st_blksize, but between 32 KiB and 1 MiB. */
static size_t dirstream_allocation(blksize_t blksize)
{
    size_t size = (size_t)blksize;
    return size < 32768 ? 32768 : size > 1048576 ? 1048576 : size;
}

/* Whether glibc's fdopendir, which just made dir for fd, laid it out as struct glibc_dirstream. */
static bool dirstream_is_glibcs(DIR *dir, int fd)
{
    struct stat st;
    const struct glibc_dirstream *d = (const struct glibc_dirstream *)dir;
    if (lcf_real_fstat(fd, &st) != 0)
        return false;
    size_t allocation = dirstream_allocation(st.st_blksize);
    return d->fd == fd && d->lock == 0 && d->allocation == allocation && d->size == 0 &&
           d->offset == 0 && d->filepos == 0 && d->errcode == 0 &&
           malloc_usable_size(dir) >= sizeof *d + allocation;
}

/* glibc's fdopendir, whose DIR decides, the first time, whether the shim may make DIRs. */
static DIR *dirstream_glibcs(int fd)
{
    DIR *dir = real_fdopendir(fd);
    if (dir != NULL && __atomic_load_n(&dirstream_layout, __ATOMIC_RELAXED) == 0) {
        int saved = errno;
        int layout = dirstream_is_glibcs(dir, fd) ? 1 : -1;
        __atomic_store_n(&dirstream_layout, layout, __ATOMIC_RELAXED);
        errno = saved;
    }
    return dir;
}

/* A DIR for the directory descriptor fd, made as glibc's fdopendir makes it (fd a directory, not
 * open for writing only; made close-on-exec), or as its opendir does when `owned`: the shim
 * opened fd itself, close-on-exec for reading. */
static DIR *dirstream_make(int fd, bool owned)
{
    struct stat st;
    if (lcf_real_fstat(fd, &st) != 0)
        return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    if (!owned) {
        LCF_REAL(fcntl, int, int, int, ...);
        int flags = libc_fcntl(fd, F_GETFL);
        if (flags == -1)
            return NULL;
        if ((flags & O_ACCMODE) == O_WRONLY) {
            errno = EINVAL;
            return NULL;
        }
        if (libc_fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
            return NULL;
    }
    size_t allocation = dirstream_allocation(st.st_blksize);
    struct glibc_dirstream *d = malloc(sizeof *d + allocation + DIRSTREAM_SLACK);
    if (d == NULL)
        return NULL;
    memset(d, 0, sizeof *d + DIRSTREAM_SLACK);
    d->fd = fd;
    d->allocation = allocation;
    return (DIR *)d;
}

/* fdopendir's DIR for fd, the shim's own once glibc's layout is known; `owned` (opendir's): fd is
 * closed when no DIR comes of it. */
static DIR *dirstream_open(int fd, bool owned)
{
    bool ours = __atomic_load_n(&dirstream_layout, __ATOMIC_RELAXED) > 0;
    DIR *dir = ours ? dirstream_make(fd, owned) : dirstream_glibcs(fd);
    if (dir == NULL && owned) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return dir;
}

LCF_EXPORT DIR *fdopendir(int fd)
{
    return lcf_in_real ? real_fdopendir(fd) : dirstream_open(fd, false);
}

/* =========================================================================== opendir ===== */

#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK) /* glibc's opendir's */

/* Forwards the open behind opendir and scandir. Returns a directory descriptor, -1 with errno,
 * or -2 when the caller must do the real call (passthrough) on the copy in *p. */
static int dir_open(const char *symbol, int dirfd, const char *path, struct fs_path *p)
{
    uint32_t function = dirfd == AT_FDCWD ? LCF_OPEN : LCF_OPENAT;
    return fs_open_forward(symbol, function, dirfd, path, DIR_OPEN_FLAGS, 0, p);
}

/* opendir: the master's descriptor (a shadow directory), or for a passthrough the directory
 * opened as glibc's opendir opens it (through the gate), made a DIR as above. */
static DIR *dir_opendir(const char *symbol, const char *path)
{
    if (lcf_in_real)
        return real_opendir(path);
    FS_PATH(p);
    int fd = dir_open(symbol, AT_FDCWD, path, &p);
    if (fd == -2)
        fd = lcf_real_openat(AT_FDCWD, p.str, DIR_OPEN_FLAGS);
    if (fd < 0)
        return NULL;
    int saved = errno;
    DIR *dir = dirstream_open(fd, true);
    if (dir != NULL)
        errno = saved;
    return dir;
}

LCF_EXPORT DIR *opendir(const char *path)
{
    return dir_opendir("opendir", path);
}

/* =========================================================================== scandir ===== */

/* Reads a stream as glibc's scandirat does: each entry the filter keeps is copied (its d_reclen
 * bytes), the list sorted with compar. The entries come from the shim's readdir64 (listing.c), so
 * the filter already sees the model's inode numbers. Returns how many, or -1 with errno (nothing
 * kept). */
static int scan_stream(DIR *dir, struct dirent64 ***namelist, scandir_filter filter,
                       scandir_compar compar)
{
    struct dirent64 **list = NULL;
    size_t count = 0, room = 0;
    int saved = errno, err = 0;
    for (;;) {
        errno = 0;
        struct dirent64 *entry = readdir64(dir);
        if (entry == NULL) {
            err = errno;
            break;
        }
        if (filter != NULL && !filter((const struct dirent *)entry))
            continue;
        if (count == room) {
            room = room == 0 ? 16 : 2 * room;
            struct dirent64 **grown = room <= INT_MAX ? realloc(list, room * sizeof *list) : NULL;
            if (grown == NULL) {
                err = room <= INT_MAX ? ENOMEM : EOVERFLOW;
                break;
            }
            list = grown;
        }
        struct dirent64 *copy = malloc(entry->d_reclen);
        if (copy == NULL) {
            err = ENOMEM;
            break;
        }
        list[count++] = memcpy(copy, entry, entry->d_reclen);
    }
    if (err != 0) {
        while (count > 0)
            free(list[--count]);
        free(list);
        errno = err;
        return -1;
    }
    if (compar != NULL && count > 1)
        qsort(list, count, sizeof *list, (int (*)(const void *, const void *))compar);
    *namelist = list;
    errno = saved;
    return (int)count;
}

/* scandirat: the directory (the master's descriptor, or for a passthrough the directory opened as
 * glibc's scandirat opens it) read through a stream of the shim's: no trap under the hybrid
 * backend. */
static int dir_scandirat(const char *symbol, int dirfd, const char *path,
                         struct dirent ***namelist, scandir_filter filter, scandir_compar compar)
{
    if (lcf_in_real)
        return real_scandirat(dirfd, path, namelist, filter, compar);
    FS_PATH(p);
    int fd = dir_open(symbol, dirfd, path, &p);
    if (fd == -2)
        fd = lcf_real_openat(fs_real_dirfd(&p), p.str, DIR_OPEN_FLAGS);
    if (fd < 0)
        return -1;
    DIR *dir = dirstream_open(fd, true);
    if (dir == NULL)
        return -1;
    int n = scan_stream(dir, (struct dirent64 ***)namelist, filter, compar);
    int err = errno;
    closedir(dir);
    errno = err;
    return n;
}

/* struct dirent64 is struct dirent on x86_64; the 64 variants rely on it. */
_Static_assert(sizeof(struct dirent64) == sizeof(struct dirent), "dirent64 layout");

#define SCANDIR_WRAPPER(name, dirent_type)                                                       \
    LCF_EXPORT int name(const char *path, struct dirent_type ***namelist,                       \
                        int (*filter)(const struct dirent_type *),                               \
                        int (*compar)(const struct dirent_type **, const struct dirent_type **)) \
    {                                                                                            \
        return dir_scandirat(#name, AT_FDCWD, path, (struct dirent ***)namelist,                 \
                             (scandir_filter)filter, (scandir_compar)compar);                    \
    }

#define SCANDIRAT_WRAPPER(name, dirent_type)                                                     \
    LCF_EXPORT int name(int dirfd, const char *path, struct dirent_type ***namelist,            \
                        int (*filter)(const struct dirent_type *),                               \
                        int (*compar)(const struct dirent_type **, const struct dirent_type **)) \
    {                                                                                            \
        return dir_scandirat(#name, dirfd, path, (struct dirent ***)namelist,                    \
                             (scandir_filter)filter, (scandir_compar)compar);                    \
    }

SCANDIR_WRAPPER(scandir, dirent)
SCANDIR_WRAPPER(scandir64, dirent64)
SCANDIRAT_WRAPPER(scandirat, dirent)
SCANDIRAT_WRAPPER(scandirat64, dirent64)

/* ============================================================================== glob ===== */
/* glob reads directories with glibc's internal opendir and stat, which the shim cannot see; with
 * GLOB_ALTDIRFUNC it calls the functions in glob_t instead: ours. */

static void *glob_opendir(const char *path)
{
    return dir_opendir("glob", path);
}

static void glob_closedir(void *dir)
{
    closedir(dir);
}

static struct dirent *glob_readdir(void *dir)
{
    return readdir(dir);
}

static struct dirent64 *glob_readdir64(void *dir)
{
    return readdir64(dir);
}

static int glob_stat(const char *path, struct stat *st)
{
    return stat(path, st);
}

static int glob_lstat(const char *path, struct stat *st)
{
    return lstat(path, st);
}

static int glob_stat64(const char *path, struct stat64 *st)
{
    return stat64(path, st);
}

static int glob_lstat64(const char *path, struct stat64 *st)
{
    return lstat64(path, st);
}

/* A program that set GLOB_ALTDIRFUNC itself keeps its own functions. The flag is cleared from
 * gl_flags again afterwards, so the program sees the flags it passed. */
#define GLOB_WRAPPER(name, glob_type, suffix)                                                    \
    LCF_EXPORT int name(const char *pattern, int flags, glob_errfunc errfunc, glob_type *pglob)  \
    {                                                                                            \
        LCF_REAL(name, int, const char *, int, glob_errfunc, glob_type *);                       \
        if (lcf_in_real || (flags & GLOB_ALTDIRFUNC))                                            \
            return libc_##name(pattern, flags, errfunc, pglob);                                  \
        pglob->gl_opendir = glob_opendir;                                                        \
        pglob->gl_readdir = glob_readdir##suffix;                                                \
        pglob->gl_closedir = glob_closedir;                                                      \
        pglob->gl_stat = glob_stat##suffix;                                                      \
        pglob->gl_lstat = glob_lstat##suffix;                                                    \
        int ret = libc_##name(pattern, flags | GLOB_ALTDIRFUNC, errfunc, pglob);                 \
        pglob->gl_flags &= ~GLOB_ALTDIRFUNC;                                                     \
        return ret;                                                                              \
    }

GLOB_WRAPPER(glob, glob_t, )
GLOB_WRAPPER(glob64, glob64_t, 64)
