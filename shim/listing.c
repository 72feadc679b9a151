/* listing.c — the inode numbers of a shadow directory's entries, as the model has them.
 *
 * A program lists a virtual directory through a shadow directory (libcfake/_shadow.py, dir.c):
 * the kernel reads the names, and each entry's d_ino is the shadow placeholder's inode number,
 * not the model's that stat reports. ls -i, find -inum, os.scandir's inode(), du's and rsync's
 * hard-link detection compare the two. So the readdir family (readdir, readdir64, readdir_r,
 * readdir64_r), glibc's getdents64 and getdirentries read the kernel's entries and then, for a
 * directory of the master's, put the model's inode number of each name in d_ino: from the
 * snapshot when it holds the entry (a listed directory's entries, and its parent, are published
 * as its shadow is opened: no round trip), else from the master (a readdir call). A name
 * neither knows keeps the kernel's number.
 *
 * Each entry is looked up by its name when it is read, so the number is the model's at that
 * moment: hard links share one, a name replaced since the directory was opened has its new one,
 * and rewinddir, seekdir and fork need nothing (the kernel keeps the position). What is kept is
 * per thread, the directory the thread last read: whether it is a shadow one and, if the
 * snapshot can say, its virtual path; closedir makes it stale everywhere (a new DIR may reuse
 * the pointer). */

#include "shim.h"
#include "real.h"
#include "snapshot_answers.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A directory being listed: whether it is a shadow directory and its virtual path, if known. */
struct listing {
    bool shadow;                   /* one of the master's directories */
    size_t length;                 /* bytes of path; 0: the snapshot cannot name it */
    char path[LCF_MAX_PATH + 1];   /* its virtual path, in the snapshot's form */
};

/* Finds out what fd is: a descriptor of the master's devices that is a directory is a shadow
 * one (memfds and FIFOs are not directories). errno is left as it was. */
static void listing_init(struct listing *l, int fd)
{
    int saved = errno;
    struct stat st;
    l->shadow = lcf_real_fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && lcf_is_master_dev(st.st_dev);
    ssize_t n = l->shadow ? snapshot_directory(fd, l->path) : -1;
    l->length = n > 0 ? (size_t)n : 0;
    errno = saved;
}

/* Writes into out (LCF_MAX_PATH + 1 bytes) the virtual path of the entry name of l's directory,
 * "." and ".." being the directory and its parent; returns its length, or 0 when it is not known
 * or too long. */
static size_t entry_path(const struct listing *l, const char *name, char *out)
{
    size_t n = l->length, k = strlen(name);
    if (n == 0)
        return 0;
    memcpy(out, l->path, n);
    if (strcmp(name, ".") == 0)
        return n;
    if (strcmp(name, "..") == 0) {
        while (n > 1 && out[n - 1] != '/')
            n--;
        return n > 1 ? n - 1 : 1; /* "/a" -> "/", "/" -> "/" */
    }
    if (n > 1)
        out[n++] = '/';
    if (n + k > LCF_MAX_PATH)
        return 0;
    memcpy(out + n, name, k);
    return n + k;
}

/* The master's answer: what lstat says of name in the directory fd. 0 when it does not say. */
static uint64_t asked_inode(int fd, const char *name, const char *symbol)
{
    struct lcf_request req;
    lcf_request_init(&req, LCF_READDIR, symbol);
    lcf_request_fd(&req, LCF_FD_DIR1, fd);
    req.str1 = name;
    req.call.length1 = (int32_t)strlen(name);
    struct lcf_reply reply;
    struct lcf_stat st;
    int got;
    int action = lcf_forward(&req, &reply, &got, &st, sizeof st);
    if (got >= 0)
        close(got);
    bool answered = action == LCF_ANSWER && reply.result == 0 && reply.count == 1;
    return answered ? st.ino : 0;
}

/* Puts the model's inode number of name, an entry of l's directory fd, in *ino. errno is left
 * as it was (a failed round trip has said so on stderr; the kernel's number stays). */
static void entry_inode(const struct listing *l, int fd, const char *name, uint64_t *ino,
                        const char *symbol)
{
    if (!l->shadow)
        return;
    int saved = errno;
    char path[LCF_MAX_PATH + 1];
    size_t n = entry_path(l, name, path);
    uint64_t found = n > 0 ? snapshot_inode(path, n) : 0;
    if (found == 0)
        found = asked_inode(fd, name, symbol);
    if (found != 0)
        *ino = found;
    errno = saved;
}

/* ======================================================== the directory last read ===== */

static uint64_t closed_directories; /* closedir calls: a DIR pointer kept before may be reused */

static __thread struct {
    DIR *dir;
    uint64_t closed;               /* closed_directories when it was filled */
    struct listing listing;
} last;

/* The listing of dir, the one this thread last read unless a closedir came in between. */
static const struct listing *listing_of(DIR *dir)
{
    uint64_t closed = __atomic_load_n(&closed_directories, __ATOMIC_ACQUIRE);
    if (last.dir != dir || last.closed != closed) {
        listing_init(&last.listing, dirfd(dir));
        last.dir = dir;
        last.closed = closed;
    }
    return &last.listing;
}

static void dirent_fix(DIR *dir, struct dirent64 *entry, const char *symbol)
{
    if (entry != NULL && !lcf_in_real)
        entry_inode(listing_of(dir), dirfd(dir), entry->d_name, &entry->d_ino, symbol);
}

/* =========================================================================== wrappers ===== */

LCF_EXPORT int closedir(DIR *dir)
{
    LCF_REAL(closedir, int, DIR *);
    __atomic_fetch_add(&closed_directories, 1, __ATOMIC_RELEASE);
    return libc_closedir(dir);
}

LCF_EXPORT struct dirent *readdir(DIR *dir)
{
    LCF_REAL(readdir, struct dirent *, DIR *);
    struct dirent *entry = libc_readdir(dir);
    dirent_fix(dir, (struct dirent64 *)entry, "readdir");
    return entry;
}

LCF_EXPORT struct dirent64 *readdir64(DIR *dir)
{
    LCF_REAL(readdir64, struct dirent64 *, DIR *);
    struct dirent64 *entry = libc_readdir64(dir);
    dirent_fix(dir, entry, "readdir64");
    return entry;
}

LCF_EXPORT int readdir_r(DIR *dir, struct dirent *entry, struct dirent **result)
{
    LCF_REAL(readdir_r, int, DIR *, struct dirent *, struct dirent **);
    int ret = libc_readdir_r(dir, entry, result);
    if (ret == 0)
        dirent_fix(dir, (struct dirent64 *)*result, "readdir_r");
    return ret;
}

LCF_EXPORT int readdir64_r(DIR *dir, struct dirent64 *entry, struct dirent64 **result)
{
    LCF_REAL(readdir64_r, int, DIR *, struct dirent64 *, struct dirent64 **);
    int ret = libc_readdir64_r(dir, entry, result);
    if (ret == 0)
        dirent_fix(dir, *result, "readdir64_r");
    return ret;
}

/* The got bytes of records a getdents64-like call read from fd into buffer: each record's
 * d_ino, by the directory's path read once per call. */
static void records_fix(int fd, void *buffer, ssize_t got, const char *symbol)
{
    if (got <= 0 || lcf_in_real)
        return;
    struct listing l;
    listing_init(&l, fd);
    for (size_t at = 0; l.shadow && at < (size_t)got;) {
        struct dirent64 *entry = (struct dirent64 *)((char *)buffer + at);
        if (entry->d_reclen == 0)
            break;
        entry_inode(&l, fd, entry->d_name, &entry->d_ino, symbol);
        at += entry->d_reclen;
    }
}

/* glibc's wrapper of the system call (a program that makes the system call itself is the
 * hybrid backend's). */
LCF_EXPORT ssize_t getdents64(int fd, void *buffer, size_t length)
{
    LCF_REAL(getdents64, ssize_t, int, void *, size_t);
    ssize_t got = libc_getdents64(fd, buffer, length);
    records_fix(fd, buffer, got, "getdents64");
    return got;
}

/* BSD's getdents with a position; on x86_64 both names read struct dirent64 records. */
LCF_EXPORT ssize_t getdirentries64(int fd, char *buffer, size_t length, off64_t *base)
{
    LCF_REAL(getdirentries64, ssize_t, int, char *, size_t, off64_t *);
    ssize_t got = libc_getdirentries64(fd, buffer, length, base);
    records_fix(fd, buffer, got, "getdirentries64");
    return got;
}

LCF_EXPORT ssize_t getdirentries(int fd, char *buffer, size_t length, off_t *base)
{
    LCF_REAL(getdirentries, ssize_t, int, char *, size_t, off_t *);
    ssize_t got = libc_getdirentries(fd, buffer, length, base);
    records_fix(fd, buffer, got, "getdirentries");
    return got;
}
