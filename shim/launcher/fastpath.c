/* fastpath.c — the supervisor's fast path (see fastpath.h): trapped read-only calls under the
 * mounts answered on the master's side without Python. */
#define _GNU_SOURCE
#include "fastpath.h"
#include "../path_text.h"
#include "../stat_fill.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct lcf_fast_note) == sizeof(struct seccomp_notif),
               "struct lcf_fast_note is struct seccomp_notif");

#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef SECCOMP_ADDFD_FLAG_SEND
#define SECCOMP_ADDFD_FLAG_SEND (1UL << 1)
#endif

/* ========================================================================= the table ===== */

/* Whether path (n bytes) is prefix i of the table or lies under it. */
static bool under_one(const struct lcf_fast *f, uint32_t i, const char *path, size_t n)
{
    size_t k = f->len[i];
    return k <= n && memcmp(path, f->bytes + f->start[i], k) == 0 && (k == n || path[k] == '/');
}

/* Whether path lies under a prefix as named (real == false) or where one really is. */
static bool under(const struct lcf_fast *f, const char *path, size_t n, bool real)
{
    uint32_t from = real ? f->count : 0, to = real ? f->count + f->real_count : f->count;
    for (uint32_t i = from; i < to; i++)
        if (under_one(f, i, path, n))
            return true;
    return false;
}

/* Appends path (n bytes, trailing slashes dropped: "/" as "") to the table. */
static int keep(struct lcf_fast *f, size_t *used, const char *path, size_t n)
{
    while (n > 0 && path[n - 1] == '/')
        n--;
    uint32_t i = f->count + f->real_count;
    if (i >= 2 * LCF_FAST_PREFIXES || *used + n > sizeof f->bytes)
        return -1;
    memcpy(f->bytes + *used, path, n);
    f->start[i] = (uint16_t)*used;
    f->len[i] = (uint16_t)n;
    *used += n;
    return 0;
}

/* Where the descriptor's file really is (its /proc/self/fd link); its length, or -1. */
static ssize_t fd_path(int fd, char *buf, size_t size)
{
    char link[40];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1 || buf[0] != '/')
        return -1;
    buf[n] = '\0';
    return n;
}

static bool has_masters_ids(const struct lcf_fast *f, uint32_t tid);

int lcf_fast_init(struct lcf_fast *f, const char *prefixes, uint32_t count,
                  const uint64_t *devices, uint32_t device_count, uint32_t root,
                  const void *snapshot, uint64_t snapshot_bytes)
{
    memset(f, 0, sizeof *f);
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (count > LCF_FAST_PREFIXES || device_count > LCF_FAST_DEVICES ||
        getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0 ||
        ruid != euid || euid != suid || rgid != egid || egid != sgid)
        return -1;
    int groups = getgroups(LCF_FAST_GROUPS, (gid_t *)f->groups);
    if (groups < 0)
        return -1;
    f->group_count = (uint32_t)groups;
    f->uid = euid;
    f->gid = egid;
    size_t used = 0;
    const char *at = prefixes;
    for (uint32_t i = 0; i < count; i++, at += strlen(at) + 1) {
        if (at[0] != '/' || keep(f, &used, at, strlen(at)) != 0)
            return -1;
        f->count++;
    }
    at = prefixes;
    for (uint32_t i = 0; i < count; i++, at += strlen(at) + 1) {
        char real[4096];
        int fd = open(at, O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue; /* a mount that is not there: nothing lies under it */
        ssize_t n = fd_path(fd, real, sizeof real);
        close(fd);
        if (n > 0 && keep(f, &used, real, (size_t)n) == 0)
            f->real_count++;
    }
    memcpy(f->devices, devices, sizeof devices[0] * device_count);
    f->device_count = device_count;
    f->mixed_ids = root == 0 || !has_masters_ids(f, root); /* its children inherit them */
    f->has_snapshot =
        snapshot != NULL && lcf_snapshot_view_init(&f->snapshot, snapshot, snapshot_bytes) == 0;
    f->journal.pid = 0;
    f->journal.fd = -1;
    f->enabled = 1;
    return 0;
}

/* ======================================================================= the caller ===== */

/* Whether the line of /proc status text after `key` lists only `value`s. */
static bool ids_are(const char *text, const char *key, uint32_t value)
{
    const char *line = strstr(text, key);
    if (line == NULL)
        return false;
    line += strlen(key);
    int seen = 0;
    while (*line != '\n' && *line != '\0') {
        char *end;
        unsigned long id = strtoul(line, &end, 10);
        if (end == line)
            break;
        if (id != value)
            return false;
        seen++;
        line = end;
    }
    return seen == 4;
}

/* Whether the Groups line lists the master's groups (in any order). */
static bool groups_are(const struct lcf_fast *f, const char *text)
{
    const char *line = strstr(text, "\nGroups:");
    if (line == NULL)
        return false;
    line += 8;
    uint32_t seen = 0;
    for (;;) {
        char *end;
        unsigned long id = strtoul(line, &end, 10);
        if (end == line)
            break;
        bool found = false;
        for (uint32_t i = 0; i < f->group_count && !found; i++)
            found = f->groups[i] == id;
        if (!found)
            return false;
        seen++;
        line = end;
    }
    return seen == f->group_count;
}

/* Whether thread tid has the master's ids, its real ones included (access checks with those),
 * as its /proc status says (14 µs). */
static bool has_masters_ids(const struct lcf_fast *f, uint32_t tid)
{
    char path[40], text[4096];
    snprintf(path, sizeof path, "/proc/%u/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    return ids_are(text, "\nUid:", f->uid) && ids_are(text, "\nGid:", f->gid) &&
           groups_are(f, text);
}

/* Whether the calling thread tid has the master's ids: read only once a thread of the tree may
 * have changed its own. */
static bool same_ids(const struct lcf_fast *f, uint32_t tid)
{
    return !f->mixed_ids || has_masters_ids(f, tid);
}

/* The NUL-terminated string at address in tid's memory, into buf (size bytes); its length, or -1
 * (a bad pointer, too long: Python answers those with the kernel's errno). */
static ssize_t read_string(uint32_t tid, uint64_t address, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        size_t page = 4096 - ((address + got) % 4096); /* never across a page it may not have */
        size_t want = page < size - got ? page : size - got;
        struct iovec local = {buf + got, want}, remote = {(void *)(uintptr_t)(address + got), want};
        ssize_t n = process_vm_readv((pid_t)tid, &local, 1, &remote, 1, 0);
        if (n <= 0)
            return -1;
        char *end = memchr(buf + got, '\0', (size_t)n);
        if (end != NULL)
            return end - buf;
        got += (size_t)n;
    }
    return -1;
}

static int write_memory(uint32_t tid, uint64_t address, const void *data, size_t size)
{
    struct iovec local = {(void *)data, size}, remote = {(void *)(uintptr_t)address, size};
    return process_vm_writev((pid_t)tid, &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -1;
}

/* ======================================================================== the calls ===== */

enum kind { OPEN, STAT, STATX, ACCESS, READLINK };

/* A trapped call the fast path may answer, as its registers say. */
struct call {
    enum kind kind;
    int dirfd;       /* the *at calls' directory descriptor (only an empty path uses it) */
    uint64_t path;   /* the path's address */
    int flags;       /* open's flags; AT_* flags of the others */
    int mode;        /* access's mode */
    uint64_t buffer; /* where a stat or a link's text goes */
    uint64_t size;   /* readlink's buffer size; statx's mask */
    bool follow;     /* a symlink at the end is followed */
};

/* The call in the registers, if it is one the fast path covers with flags it knows. */
static bool decode(const struct seccomp_notif *n, struct call *c)
{
    const __u64 *a = n->data.args;
    const int stat_flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH;
    memset(c, 0, sizeof *c);
    switch (n->data.nr) {
    case SYS_open:
        *c = (struct call){OPEN, AT_FDCWD, a[0], (int)a[1], 0, 0, 0, true};
        break;
    case SYS_openat:
        *c = (struct call){OPEN, (int)a[0], a[1], (int)a[2], 0, 0, 0, true};
        break;
    case SYS_stat:
        *c = (struct call){STAT, AT_FDCWD, a[0], 0, 0, a[1], 0, true};
        return true;
    case SYS_lstat:
        *c = (struct call){STAT, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, 0, a[1], 0, false};
        return true;
    case SYS_newfstatat:
        *c = (struct call){STAT, (int)a[0], a[1], (int)a[3], 0, a[2], 0, !((int)a[3] & AT_SYMLINK_NOFOLLOW)};
        return ((int)a[3] & ~stat_flags) == 0;
    case SYS_statx:
        *c = (struct call){STATX, (int)a[0], a[1], (int)a[2], 0, a[4], (uint32_t)a[3],
                           !((int)a[2] & AT_SYMLINK_NOFOLLOW)};
        return ((int)a[2] & ~(stat_flags | AT_STATX_SYNC_TYPE)) == 0 &&
               ((int)a[2] & AT_STATX_SYNC_TYPE) != AT_STATX_SYNC_TYPE;
    case SYS_access:
        *c = (struct call){ACCESS, AT_FDCWD, a[0], 0, (int)a[1], 0, 0, true};
        return ((int)a[1] & ~(R_OK | W_OK | X_OK)) == 0;
    case SYS_faccessat:
        *c = (struct call){ACCESS, (int)a[0], a[1], 0, (int)a[2], 0, 0, true};
        return ((int)a[2] & ~(R_OK | W_OK | X_OK)) == 0;
    case SYS_faccessat2:
        *c = (struct call){ACCESS, (int)a[0], a[1], (int)a[3], (int)a[2], 0, 0,
                           !((int)a[3] & AT_SYMLINK_NOFOLLOW)};
        return ((int)a[2] & ~(R_OK | W_OK | X_OK)) == 0 &&
               ((int)a[3] & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW)) == 0;
    case SYS_readlink:
        *c = (struct call){READLINK, AT_FDCWD, a[0], 0, 0, a[1], a[2], false};
        return (int)a[2] > 0;
    case SYS_readlinkat:
        *c = (struct call){READLINK, (int)a[0], a[1], 0, 0, a[2], a[3], false};
        return (int)a[3] > 0;
    default:
        return false;
    }
    /* an open: only reads, and the descriptor is one ADDFD can place (no O_PATH) */
    int writes = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_PATH;
    if ((c->flags & writes) != 0 || (c->flags & O_TMPFILE) == O_TMPFILE)
        return false;
    c->follow = !(c->flags & O_NOFOLLOW);
    return true;
}

/* Whether the file is one of the master's own (a memfd, a shadow directory: the model's). */
static bool masters(const struct lcf_fast *f, const struct stat *st)
{
    for (uint32_t i = 0; i < f->device_count; i++)
        if ((uint64_t)st->st_dev == f->devices[i])
            return true;
    return false;
}

/* Whether the file fd names is no file of the master's own and really lies under the table. */
static bool fd_under_table(const struct lcf_fast *f, int fd, const struct stat *st)
{
    if (masters(f, st))
        return false;
    char real[4096];
    ssize_t n = fd_path(fd, real, sizeof real);
    return n > 0 && (under(f, real, (size_t)n, false) || under(f, real, (size_t)n, true));
}

/* Whether path (n bytes, under the table as named, no dot component), which does not exist, is
 * the mount's absence: its longest existing ancestor lies under the table and holds no entry of
 * the next component's name (not even a dangling symlink, which the kernel might follow out). */
static bool absent_under_table(const struct lcf_fast *f, const char *path, size_t n)
{
    char parent[4096];
    size_t end = n;
    while (end > 0) {
        size_t slash = end;
        while (slash > 0 && path[slash - 1] != '/')
            slash--;
        if (slash == 0)
            return false;
        size_t k = slash - 1;
        if (k == 0 || !under(f, path, k, false))
            return false; /* the ancestor is above every prefix */
        memcpy(parent, path, k);
        parent[k] = '\0';
        int dir = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) {
            if (errno != ENOENT)
                return false;
            end = k;
            continue;
        }
        char name[256];
        size_t length = end - slash;
        struct stat st;
        bool absent = false;
        if (length < sizeof name && fstat(dir, &st) == 0 && fd_under_table(f, dir, &st)) {
            memcpy(name, path + slash, length);
            name[length] = '\0';
            absent = fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
        }
        close(dir);
        return absent;
    }
    return false;
}

/* Answers the call: it returns value, or fails with error. Always true: the call is answered
 * (or gone: ENOENT). */
static bool reply(int listener, uint64_t id, int64_t value, int error)
{
    struct seccomp_notif_resp r = {.id = id, .val = error ? 0 : value, .error = -error};
    (void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
    return true;
}

static bool valid(int listener, uint64_t id)
{
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* The call made by the master on the checked descriptor, and its answer. */
static bool perform(int listener, const struct seccomp_notif *n, const struct call *c, int fd,
                    const struct stat *st)
{
    switch (c->kind) {
    case OPEN: {
        /* the kernel's order (do_open, then may_open): O_DIRECTORY first, then a link's ELOOP */
        if ((c->flags & O_DIRECTORY) && !S_ISDIR(st->st_mode))
            return reply(listener, n->id, 0, ENOTDIR);
        if (S_ISLNK(st->st_mode))
            return reply(listener, n->id, 0, ELOOP); /* (only O_NOFOLLOW opens the link) */
        if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
            return false; /* a FIFO would block the master; a device, a socket: Python's */
        char link[40];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        int flags = (c->flags & ~(O_NOFOLLOW | O_CLOEXEC)) | O_NOCTTY | O_CLOEXEC;
        int opened = open(link, flags);
        if (opened < 0)
            return reply(listener, n->id, 0, errno);
        struct seccomp_notif_addfd add = {
            .id = n->id,
            .flags = SECCOMP_ADDFD_FLAG_SEND,
            .srcfd = (uint32_t)opened,
            .newfd_flags = (uint32_t)(c->flags & O_CLOEXEC),
        };
        ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add); /* ENOENT: the caller is gone */
        close(opened);
        return true;
    }
    case STAT:
        if (!valid(listener, n->id))
            return true;
        if (write_memory(n->pid, c->buffer, st, sizeof *st) != 0)
            return reply(listener, n->id, 0, EFAULT);
        return reply(listener, n->id, 0, 0);
    case STATX: {
        struct statx stx;
        int sync = c->flags & AT_STATX_SYNC_TYPE;
        if (statx(fd, "", AT_EMPTY_PATH | sync, (unsigned)c->size, &stx) != 0)
            return reply(listener, n->id, 0, errno);
        if (!valid(listener, n->id))
            return true;
        if (write_memory(n->pid, c->buffer, &stx, sizeof stx) != 0)
            return reply(listener, n->id, 0, EFAULT);
        return reply(listener, n->id, 0, 0);
    }
    case ACCESS:
        if (syscall(SYS_faccessat2, fd, "", c->mode, AT_EMPTY_PATH | (c->flags & AT_EACCESS)) != 0)
            return reply(listener, n->id, 0, errno);
        return reply(listener, n->id, 0, 0);
    case READLINK: {
        if (!S_ISLNK(st->st_mode))
            return reply(listener, n->id, 0, EINVAL);
        char text[4096];
        ssize_t length = readlinkat(fd, "", text, sizeof text);
        if (length < 0)
            return reply(listener, n->id, 0, errno);
        size_t size = (size_t)length < c->size ? (size_t)length : c->size;
        if (!valid(listener, n->id))
            return true;
        if (write_memory(n->pid, c->buffer, text, size) != 0)
            return reply(listener, n->id, 0, EFAULT);
        return reply(listener, n->id, (int64_t)size, 0);
    }
    }
    return false;
}

/* Writes *s into the program's stat or statx buffer: 0, or EFAULT. */
static int write_stat(const struct seccomp_notif *n, const struct call *c, const struct lcf_stat *s)
{
    int failed;
    if (c->kind == STATX) {
        struct statx stx;
        lcf_fill_statx(&stx, s);
        failed = write_memory(n->pid, c->buffer, &stx, sizeof stx);
    } else {
        struct stat st;
        lcf_fill_stat(&st, s);
        failed = write_memory(n->pid, c->buffer, &st, sizeof st);
    }
    return failed != 0 ? EFAULT : 0;
}

/* A stat of a shadow directory's descriptor, from the snapshot's entry of the virtual directory
 * it stands for (the snapshot is exact: an entry is there only while nothing can change it);
 * false when there is none (the pipeline answers, and may publish it). */
static bool answer_published(const struct lcf_fast *f, int listener,
                             const struct seccomp_notif *n, const struct call *c, int fd)
{
    char real[4096], target[LCF_MAX_PATH + 1];
    ssize_t length = fd_path(fd, real, sizeof real);
    size_t k = f->snapshot.root_length;
    if (!f->has_snapshot || length < 0 || !lcf_snapshot_in_tree(&f->snapshot, real, (size_t)length))
        return false;
    const char *virtual = (size_t)length == k ? "/" : real + k;
    struct lcf_stat s;
    int32_t target_length;
    if (lcf_snapshot_get(&f->snapshot, virtual, strlen(virtual), &s, target, &target_length) != 1 ||
        !S_ISDIR(s.mode))
        return false;
    if (!valid(listener, n->id))
        return true; /* it vanished: nothing to answer, nothing to write */
    return reply(listener, n->id, 0, write_stat(n, c, &s));
}

/* Keeps an answer of the model's for the journal, to be given to the program by lcf_fast_finish
 * once the master has journaled it (as the pipeline records a call before the program can see
 * the answer): *s is what it got, `error` its errno (0: none), `fd` a descriptor to place in it
 * (-1: none), with `fd_flags`. Its path is in *journal already. Returns true (answered). */
static bool journaled(struct lcf_fast_answer *journal, const struct seccomp_notif *n,
                      int function, int flags, int error, const struct lcf_stat *s, int fd,
                      uint32_t fd_flags)
{
    journal->pid = n->pid;
    journal->nr = n->data.nr;
    journal->function = function;
    journal->flags = flags;
    journal->result = error != 0 ? -1 : 0;
    journal->error = error;
    journal->mode = s->mode;
    journal->size = s->size;
    journal->id = n->id;
    journal->fd = fd;
    journal->fd_flags = fd_flags;
    return true;
}

/* A stat of a model file's memfd (glibc's fstat inside libc: stdio's, say), from the memfd's
 * record in the snapshot (LCF_SNAPSHOT_DESCRIPTOR); false when there is none (the pipeline
 * answers). Journaled. */
static bool answer_record(const struct lcf_fast *f, int listener, const struct seccomp_notif *n,
                          const struct call *c, const struct stat *real,
                          struct lcf_fast_answer *journal)
{
    struct lcf_stat s;
    if (!f->has_snapshot ||
        !lcf_snapshot_descriptor(&f->snapshot, real, &s, journal->path, &journal->path_length))
        return false;
    if (!valid(listener, n->id))
        return true; /* it vanished: nothing to answer, nothing to write */
    int error = write_stat(n, c, &s);
    if (error != 0)
        return reply(listener, n->id, 0, error);
    return journaled(journal, n, LCF_FSTAT, 0, 0, &s, -1, 0);
}

/* Opens a directory the snapshot says is listed (its shadow directory lists exactly its
 * entries) and readable by everyone, as the master would: its shadow directory, to be placed in
 * the program. False: the pipeline answers. Journaled. */
static bool open_listed(const struct lcf_fast *f, int listener, const struct seccomp_notif *n,
                        const struct call *c, struct lcf_fast_answer *journal,
                        const struct lcf_stat *s, uint32_t flags)
{
    if (!lcf_snapshot_opens_shadow(s, flags, c->flags))
        return false;
    char real[sizeof f->snapshot.root + LCF_MAX_PATH];
    lcf_snapshot_shadow(&f->snapshot, journal->path, (size_t)journal->path_length, real);
    int dir = open(real, (c->flags & ~O_CLOEXEC) | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return false;
    if (!valid(listener, n->id)) { /* it vanished: nothing to answer */
        close(dir);
        return true;
    }
    int function = n->data.nr == SYS_open ? LCF_OPEN : LCF_OPENAT;
    return journaled(journal, n, function, c->flags, 0, s, dir, (uint32_t)(c->flags & O_CLOEXEC));
}

/* stat, lstat, statx or access(F_OK) of a model path (absolute: a static program's; the shim
 * answers a dynamic program's itself), from the snapshot as the shim answers it
 * (snapshot_answers.c): what lstat says of a published entry that is not a symlink the call
 * follows, or ENOENT for a name a complete directory lacks; and the open of a listed directory.
 * A path in the shadow tree stands for the virtual path after its root. False: the pipeline
 * answers. Journaled. */
static bool answer_snapshot(const struct lcf_fast *f, int listener, const struct seccomp_notif *n,
                            const struct call *c, const char *path, size_t length,
                            struct lcf_fast_answer *journal)
{
    bool stat_like = c->kind == STAT || c->kind == STATX;
    if (!f->has_snapshot ||
        !(stat_like || c->kind == OPEN || (c->kind == ACCESS && c->mode == F_OK)))
        return false;
    size_t k = f->snapshot.root_length;
    if (lcf_snapshot_in_tree(&f->snapshot, path, length)) { /* the shadow tree: its virtual path */
        path += k;
        length -= k;
        if (length == 0) {
            path = "/";
            length = 1;
        }
    }
    if (length > LCF_MAX_PATH || !snapshot_form(path, length))
        return false;
    memcpy(journal->path, path, length);
    journal->path[length] = '\0';
    journal->path_length = (int32_t)length;
    struct lcf_stat s;
    uint32_t flags;
    char target[LCF_MAX_PATH + 1];
    int32_t target_length;
    int says = lcf_snapshot_says(&f->snapshot, journal->path, length, &s, &flags, target,
                                 &target_length, 1);
    bool follows = c->kind == ACCESS || c->follow;
    if (says == LCF_SNAPSHOT_UNKNOWN || (says == LCF_SNAPSHOT_FOUND && S_ISLNK(s.mode) && follows))
        return false; /* (the last symlink is followed: the master resolves it) */
    if (c->kind == OPEN && says == LCF_SNAPSHOT_FOUND)
        return open_listed(f, listener, n, c, journal, &s, flags);
    int function = c->kind == OPEN     ? (n->data.nr == SYS_open ? LCF_OPEN : LCF_OPENAT)
                   : c->kind == ACCESS ? ((c->flags & AT_EACCESS) ? LCF_EACCESS : LCF_ACCESS)
                   : c->follow         ? LCF_STAT
                                       : LCF_LSTAT;
    int flag_word = c->kind == OPEN ? c->flags : c->mode;
    if (!valid(listener, n->id))
        return true; /* it vanished: nothing to answer, nothing to write */
    if (says == LCF_SNAPSHOT_MISSING) {
        static const struct lcf_stat none;
        return journaled(journal, n, function, flag_word, ENOENT, &none, -1, 0);
    }
    if (stat_like) {
        int error = write_stat(n, c, &s);
        if (error != 0)
            return reply(listener, n->id, 0, error);
    }
    return journaled(journal, n, function, flag_word, 0, &s, -1, 0);
}

/* A stat of one of the program's own descriptors (newfstatat or statx with an empty path and
 * AT_EMPTY_PATH: glibc's fstat; the loader's, of each library it opened): answered from the
 * master's look at that descriptor unless it is a file of the master's (the model's: then from
 * the snapshot, a directory's entry or a file's record). */
static bool answer_descriptor(const struct lcf_fast *f, int listener,
                              const struct seccomp_notif *n, const struct call *c,
                              struct lcf_fast_answer *journal)
{
    if (!(c->flags & AT_EMPTY_PATH) || (c->kind != STAT && c->kind != STATX) || c->dirfd < 0)
        return false;
    char link[64];
    snprintf(link, sizeof link, "/proc/%u/fd/%d", n->pid, c->dirfd);
    int fd = open(link, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool answered = false;
    if (fstat(fd, &st) == 0) { /* (the answers check the call still waits before they write) */
        if (!masters(f, &st))
            answered = perform(listener, n, c, fd, &st);
        else if (S_ISDIR(st.st_mode))
            answered = answer_published(f, listener, n, c, fd);
        else if (S_ISREG(st.st_mode))
            answered = answer_record(f, listener, n, c, &st, journal);
    }
    close(fd);
    return answered;
}

/* Answers the call if the fast path covers it; false leaves it, unanswered, to Python. An answer
 * the journal must see is in *journal (its pid set). */
static bool answer(const struct lcf_fast *f, int listener, const struct seccomp_notif *n,
                   struct lcf_fast_answer *journal)
{
    struct call c;
    char path[4096];
    if (n->data.arch != AUDIT_ARCH_X86_64 || !decode(n, &c))
        return false;
    ssize_t length = read_string(n->pid, c.path, path, sizeof path);
    if (length == 0)
        return answer_descriptor(f, listener, n, &c, journal);
    if (length < 0 || path[0] != '/' || has_dot_component(path, (size_t)length))
        return false;
    if (!under(f, path, (size_t)length, false) || !same_ids(f, n->pid)) /* not the host's */
        return answer_snapshot(f, listener, n, &c, path, (size_t)length, journal);
    if (!valid(listener, n->id))
        return true; /* it vanished (its thread was killed): nothing to answer */
    /* what was read is the call's: check where it leads, then answer on that descriptor */
    int fd = open(path, O_PATH | O_CLOEXEC | (c.follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        if (errno == ENOENT && absent_under_table(f, path, (size_t)length))
            return reply(listener, n->id, 0, ENOENT);
        return false;
    }
    struct stat st;
    bool answered = false;
    if (fstat(fd, &st) == 0 && fd_under_table(f, fd, &st))
        answered = perform(listener, n, &c, fd, &st);
    close(fd);
    return answered;
}

/* ======================================================================= the loop ===== */

/* The system calls after which a thread of the tree may have other ids than the master's. */
static bool changes_ids(int nr)
{
    switch (nr) {
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
    case SYS_setresgid: case SYS_setfsuid: case SYS_setfsgid: case SYS_setgroups:
        return true;
    default:
        return false;
    }
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int lcf_fast_finish(struct lcf_fast *f, int listener)
{
    struct lcf_fast_answer *j = &f->journal;
    if (j->pid == 0)
        return 0;
    j->pid = 0;
    if (j->fd < 0)
        return reply(listener, j->id, 0, j->error) ? 0 : -1;
    struct seccomp_notif_addfd add = {
        .id = j->id,
        .flags = SECCOMP_ADDFD_FLAG_SEND,
        .srcfd = (uint32_t)j->fd,
        .newfd_flags = j->fd_flags,
    };
    int placed = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add); /* ENOENT: the caller is gone */
    close(j->fd);
    j->fd = -1;
    return placed < 0 ? -1 : 0;
}

int lcf_fast_serve(struct lcf_fast *f, int listener, int wakeup, int pidfd, int timeout_ms,
                   struct lcf_fast_note *note)
{
    lcf_fast_finish(f, listener); /* (a journaled answer never left waiting) */
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        struct pollfd fds[3] = {{listener, POLLIN, 0}, {wakeup, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        int ready = poll(fds, pidfd >= 0 ? 3 : 2, wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (ready == 0)
            return LCF_FAST_TIMEOUT;
        if (fds[1].revents)
            return LCF_FAST_WAKEUP;
        if (fds[0].revents & POLLIN) {
            struct seccomp_notif n;
            memset(&n, 0, sizeof n); /* the kernel wants it zeroed */
            if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
                if (errno == ENOENT || errno == EINTR)
                    continue; /* it vanished before it was read */
                return -errno;
            }
            if (changes_ids(n.data.nr))
                f->mixed_ids = 1;
            f->journal.pid = 0;
            if (f->enabled && answer(f, listener, &n, &f->journal)) {
                f->answered++;
                if (f->journal.pid != 0)
                    return LCF_FAST_ANSWERED;
                continue;
            }
            f->passed_on++;
            memcpy(note, &n, sizeof *note);
            return LCF_FAST_NOTE;
        }
        if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            return LCF_FAST_HANGUP;
        if (pidfd >= 0 && fds[2].revents)
            return LCF_FAST_EXITED;
    }
}
