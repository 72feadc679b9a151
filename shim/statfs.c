/* statfs.c — statfs, fstatfs, statvfs, fstatvfs and their 64-bit names. A path of the model is on
 * the model's filesystem (LCF_STATFS answers it); a path under a host mount, and the program's own
 * descriptors, are the host's (the real call, through the gate); one of the master's descriptors
 * (a model file or directory) asks the master (LCF_FSTATFS). */

#include "shim.h"
#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#define LCF_ST_VALID 0x0020 /* linux/statfs.h: the kernel filled f_flags */

/* struct statfs64 and statvfs64 are struct statfs and statvfs on x86_64; the casts rely on it. */
_Static_assert(sizeof(struct statfs64) == sizeof(struct statfs), "statfs64 layout");
_Static_assert(sizeof(struct statvfs64) == sizeof(struct statvfs), "statvfs64 layout");

static void fill_statfs(struct statfs *out, const struct lcf_statfs *s)
{
    memset(out, 0, sizeof *out);
    out->f_type = (__fsword_t)s->type;
    out->f_bsize = (__fsword_t)s->bsize;
    out->f_blocks = s->blocks;
    out->f_bfree = s->bfree;
    out->f_bavail = s->bavail;
    out->f_files = s->files;
    out->f_ffree = s->ffree;
    memcpy(&out->f_fsid, &s->fsid, sizeof out->f_fsid);
    out->f_namelen = (__fsword_t)s->namelen;
    out->f_frsize = (__fsword_t)s->frsize;
    out->f_flags = (__fsword_t)s->flags;
}

/* statvfs from statfs, as glibc makes it: the mount flags without ST_VALID. */
static void fill_statvfs(struct statvfs *out, const struct statfs *s)
{
    memset(out, 0, sizeof *out);
    out->f_bsize = (unsigned long)s->f_bsize;
    out->f_frsize = (unsigned long)(s->f_frsize ? s->f_frsize : s->f_bsize);
    out->f_blocks = s->f_blocks;
    out->f_bfree = s->f_bfree;
    out->f_bavail = s->f_bavail;
    out->f_files = s->f_files;
    out->f_ffree = s->f_ffree;
    out->f_favail = s->f_ffree;
    unsigned int fsid[2];
    memcpy(fsid, &s->f_fsid, sizeof fsid);
    out->f_fsid = fsid[0] | ((unsigned long)fsid[1] << 32);
    out->f_flag = (unsigned long)(s->f_flags & ~LCF_ST_VALID);
    out->f_namemax = (unsigned long)s->f_namelen;
}

/* Answers statfs of a path: 0 with *out filled, or -1 with errno. */
static int fs_statfs(const char *symbol, const char *path, struct statfs *out)
{
    if (lcf_in_real)
        return (int)lcf_gate_syscall(SYS_statfs, (long)path, (long)out, 0, 0, 0, 0);
    FS_PATH(p);
    if (fs_path_init(&p, AT_FDCWD, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_STATFS, symbol, &p, NULL);
    req.readonly = true;
    struct lcf_reply reply;
    struct lcf_statfs s;
    int fd;
    int action = lcf_forward(&req, &reply, &fd, &s, sizeof s);
    if (action == LCF_PASSTHROUGH)
        return (int)lcf_gate_syscall(SYS_statfs, (long)p.str, (long)out, 0, 0, 0, 0);
    if (action < 0)
        return -1;
    if (reply.result < 0)
        return fs_fail(reply.error);
    fill_statfs(out, &s);
    return 0;
}

/* Answers fstatfs: the real call, unless fd is one of the master's descriptors. */
static int fs_fstatfs(const char *symbol, int fd, struct statfs *out)
{
    int ret = (int)lcf_gate_syscall(SYS_fstatfs, fd, (long)out, 0, 0, 0, 0);
    struct stat st;
    if (ret < 0 || lcf_in_real || lcf_real_fstat(fd, &st) < 0 || !lcf_is_master_dev(st.st_dev))
        return ret;
    struct lcf_request req;
    lcf_request_init(&req, LCF_FSTATFS, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    struct lcf_reply reply;
    struct lcf_statfs s;
    int got;
    int action = lcf_forward(&req, &reply, &got, &s, sizeof s);
    if (action == LCF_PASSTHROUGH)
        return ret; /* (the real answer is already in *out) */
    if (action < 0)
        return -1;
    if (reply.result < 0)
        return fs_fail(reply.error);
    fill_statfs(out, &s);
    return 0;
}

LCF_EXPORT int statfs(const char *path, struct statfs *buf)
{
    return fs_statfs("statfs", path, buf);
}

LCF_EXPORT int statfs64(const char *path, struct statfs64 *buf)
{
    return fs_statfs("statfs64", path, (struct statfs *)buf);
}

LCF_EXPORT int fstatfs(int fd, struct statfs *buf)
{
    return fs_fstatfs("fstatfs", fd, buf);
}

LCF_EXPORT int fstatfs64(int fd, struct statfs64 *buf)
{
    return fs_fstatfs("fstatfs64", fd, (struct statfs *)buf);
}

static int fs_statvfs(const char *symbol, const char *path, struct statvfs *buf)
{
    struct statfs s;
    int ret = fs_statfs(symbol, path, &s);
    if (ret == 0)
        fill_statvfs(buf, &s);
    return ret;
}

static int fs_fstatvfs(const char *symbol, int fd, struct statvfs *buf)
{
    struct statfs s;
    int ret = fs_fstatfs(symbol, fd, &s);
    if (ret == 0)
        fill_statvfs(buf, &s);
    return ret;
}

LCF_EXPORT int statvfs(const char *path, struct statvfs *buf)
{
    return fs_statvfs("statvfs", path, buf);
}

LCF_EXPORT int statvfs64(const char *path, struct statvfs64 *buf)
{
    return fs_statvfs("statvfs64", path, (struct statvfs *)buf);
}

LCF_EXPORT int fstatvfs(int fd, struct statvfs *buf)
{
    return fs_fstatvfs("fstatvfs", fd, buf);
}

LCF_EXPORT int fstatvfs64(int fd, struct statvfs64 *buf)
{
    return fs_fstatvfs("fstatvfs64", fd, (struct statvfs *)buf);
}
