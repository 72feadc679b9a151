/* passthrough.c — the passthrough table and the master's devices (see passthrough.h): storing
 * them from the first welcome, the one decision whether a call passes through (the path's text,
 * then where the kernel really goes, with the verdicts kept), and whether a device is the
 * master's. Process-global; no lock a signal handler could wait on; never connects. */

#include "passthrough.h"
#include "real.h"
#include "snapshot_answers.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define LCF_REAL_BYTES 8192         /* the prefixes' realpaths: at most this many bytes */
#define LCF_VERDICTS 256            /* paths known to resolve under the table: at most this many */
#define LCF_VERDICT_PATH 240        /* bytes of such a path; longer ones are checked every time */

/* Process-global and written once, from the first welcome: the first thread to move `table_state`
 * from EMPTY to FILLING stores the table and the master's devices and publishes READY; before that
 * every call is forwarded. */
enum { TABLE_EMPTY, TABLE_FILLING, TABLE_READY };
static int table_state;
static char table_bytes[LCF_TABLE_BYTES];
static uint16_t table_start[LCF_TABLE_PREFIXES]; /* offset of each prefix in table_bytes */
static uint16_t table_len[LCF_TABLE_PREFIXES];   /* its length without trailing slashes */
static uint32_t table_count;
static uint64_t master_devices[2];               /* struct lcf_welcome.devices */
/* Where each prefix really is (/bin -> /usr/bin): what a descriptor's /proc/self/fd link says. A
 * prefix whose realpath cannot be found or does not fit is left out: its files are forwarded. */
static char real_bytes[LCF_REAL_BYTES];
static uint16_t real_start[LCF_TABLE_PREFIXES];
static uint16_t real_len[LCF_TABLE_PREFIXES];
static uint32_t real_count;

/* Writes "/proc/self/fd/N" into buf. */
void lcf_proc_fd_path(char buf[32], int fd)
{
    char digits[24];
    size_t i = lcf_decimal(digits, (unsigned)fd); /* descriptors are never negative */
    memcpy(buf, "/proc/self/fd/", 14);
    memcpy(buf + 14, digits + i, sizeof digits - i);
    buf[14 + sizeof digits - i] = '\0';
}

ssize_t lcf_fd_path(int fd, char *buf)
{
    char proc[32];
    lcf_proc_fd_path(proc, fd);
    ssize_t n = lcf_real_readlink(proc, buf, LCF_MAX_PATH + 1);
    if (n <= 0 || n > LCF_MAX_PATH || buf[0] != '/')
        return -1;
    buf[n] = '\0';
    return n;
}

/* Stores the realpath of each of the n prefixes of bytes (start, len) in real_*. */
static void real_load(const char *bytes, const uint16_t *start, const uint16_t *len, uint32_t n)
{
    size_t used = 0;
    real_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        char path[LCF_MAX_PATH + 1], real[LCF_MAX_PATH + 1];
        memcpy(path, bytes + start[i], len[i]);
        path[len[i]] = '\0';
        int fd = lcf_real_openat(AT_FDCWD, len[i] == 0 ? "/" : path, O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = lcf_fd_path(fd, real);
        close(fd);
        if (k < 0)
            continue;
        while (k > 0 && real[k - 1] == '/')
            k--; /* "/" as "" */
        if (used + (size_t)k > sizeof real_bytes)
            continue;
        memcpy(real_bytes + used, real, (size_t)k);
        real_start[real_count] = (uint16_t)used;
        real_len[real_count] = (uint16_t)k;
        real_count++;
        used += (size_t)k;
    }
}

int table_load(const char *bytes, size_t size, uint32_t count, const uint64_t devices[2],
               int snapshot_fd, uint64_t snapshot_bytes, struct line *l)
{
    uint16_t start[LCF_TABLE_PREFIXES], len[LCF_TABLE_PREFIXES];
    uint32_t n = 0;
    if (count > LCF_TABLE_PREFIXES || size > LCF_TABLE_BYTES)
        goto bad;
    for (size_t at = 0; at < size; n++) {
        const char *end = memchr(bytes + at, '\0', size - at);
        if (end == NULL || n == count || bytes[at] != '/')
            goto bad;
        size_t k = (size_t)(end - bytes) - at;
        while (k > 0 && bytes[at + k - 1] == '/')
            k--; /* "/usr/" matches as "/usr"; "/" as "", which matches every absolute path */
        start[n] = (uint16_t)at;
        len[n] = (uint16_t)k;
        at = (size_t)(end - bytes) + 1;
    }
    if (n != count)
        goto bad;
    int expected = TABLE_EMPTY;
    if (__atomic_compare_exchange_n(&table_state, &expected, TABLE_FILLING, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
        memcpy(table_bytes, bytes, size);
        memcpy(table_start, start, sizeof start[0] * n);
        memcpy(table_len, len, sizeof len[0] * n);
        table_count = n;
        memcpy(master_devices, devices, sizeof master_devices);
        real_load(table_bytes, table_start, table_len, n);
        int mapped = snapshot_fd >= 0 ? snapshot_map(snapshot_fd, snapshot_bytes, l) : 0;
        __atomic_store_n(&table_state, mapped == 0 ? TABLE_READY : TABLE_EMPTY, __ATOMIC_RELEASE);
        return mapped;
    }
    return 0;
bad:
    line_str(l, "the master sent an invalid passthrough table (");
    line_uint(l, count);
    line_str(l, " prefixes in ");
    line_uint(l, size);
    line_str(l, " bytes)");
    return -1;
}

bool table_ready(void)
{
    return __atomic_load_n(&table_state, __ATOMIC_ACQUIRE) == TABLE_READY;
}

/* Whether path (n bytes) is one of the count prefixes of bytes (start, len) or lies under one. */
static bool under(const char *path, size_t n, const char *bytes, const uint16_t *start,
                  const uint16_t *len, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        size_t k = len[i];
        if (k <= n && memcmp(path, bytes + start[i], k) == 0 && (k == n || path[k] == '/'))
            return true;
    }
    return false;
}

/* (resolves_under_table then checks where the kernel really goes.) */
bool passes_through(const struct lcf_request *req)
{
    const char *path = req->str1;
    size_t n = (size_t)req->call.length1;
    if (!req->readonly || req->call.length1 <= 0 || path[0] != '/' || has_dot_component(path, n))
        return false;
    return under(path, n, table_bytes, table_start, table_len, table_count);
}

/* Whether an open descriptor's file really lies under a prefix (as named or as its realpath). */
static bool fd_under_table(int fd)
{
    char real[LCF_MAX_PATH + 1];
    ssize_t n = lcf_fd_path(fd, real);
    return n > 0 && (under(real, (size_t)n, table_bytes, table_start, table_len, table_count) ||
                     under(real, (size_t)n, real_bytes, real_start, real_len, real_count));
}

/* Whether the calls on the path follow a symlink in its last component. */
static bool follows_last(const struct lcf_request *req)
{
    uint32_t f = req->call.function;
    if (f == LCF_LSTAT || f == LCF_READLINK)
        return false;
    return !((f == LCF_OPEN || f == LCF_OPENAT) && (req->call.flags & O_NOFOLLOW));
}

/* The paths known to resolve under the table. resolves_under_table costs two or three system calls
 * (an O_PATH open, a readlink of /proc/self/fd/N, a close), more than the passthrough call itself,
 * and programs check the same paths again and again (Python stats each directory of sys.path on
 * every import). So its positive verdicts are kept, keyed by the exact path text and whether the
 * last symlink is followed; a repeated check is then a hash and a compare. Negative verdicts are
 * never kept: those calls are forwarded, and the master decides.
 *
 * A kept verdict stays right because the prefixes are read-only to programs (the Sandbox refuses
 * every change under a mount with EROFS): only the host can change where a path under them leads.
 * If the host changes a symlink (or creates one where a path did not exist) under a prefix while
 * a program runs, that program may go on with the old verdict. A master that lets programs change
 * files under its own passthrough prefixes (use_slave_credentials on a write there) gives up that
 * premise: a symlink a program makes there may be followed out of the table by a later call.
 *
 * Process-global, in static storage, with no lock a signal handler could wait on: each slot has a
 * try-only spin flag, and a thread that finds it taken (another thread, or the call a signal
 * handler interrupted) skips the cache and does the full check. A slot holds one path: a new
 * verdict replaces the old one. A fork() child inherits the verdicts, which hold there too. */
struct verdict {
    int busy;                      /* the slot's flag: taken by whoever reads or writes it */
    uint16_t len;                  /* of path; 0 for an empty slot */
    bool follows;                  /* follows_last() of the calls it was checked for */
    char path[LCF_VERDICT_PATH];
};
static struct verdict verdicts[LCF_VERDICTS];

/* The slot of (path, follows), taken; NULL if the path is too long or the slot is busy. */
static struct verdict *verdict_take(const char *path, size_t n, bool follows)
{
    if (n > LCF_VERDICT_PATH)
        return NULL;
    uint64_t hash = (lcf_path_hash(path, n) >> 1) ^ follows; /* its low bit is always set */
    struct verdict *v = &verdicts[hash % LCF_VERDICTS];
    return __atomic_exchange_n(&v->busy, 1, __ATOMIC_ACQUIRE) ? NULL : v;
}

static void verdict_release(struct verdict *v)
{
    __atomic_store_n(&v->busy, 0, __ATOMIC_RELEASE);
}

/* Whether (path, follows) is known to resolve under the table. */
static bool verdict_known(const char *path, size_t n, bool follows)
{
    struct verdict *v = verdict_take(path, n, follows);
    if (v == NULL)
        return false;
    bool known = v->len == n && v->follows == follows && memcmp(v->path, path, n) == 0;
    verdict_release(v);
    return known;
}

/* Remembers that (path, follows) resolves under the table (if its slot is free). */
static void verdict_keep(const char *path, size_t n, bool follows)
{
    struct verdict *v = verdict_take(path, n, follows);
    if (v == NULL)
        return;
    memcpy(v->path, path, n);
    v->len = (uint16_t)n;
    v->follows = follows;
    verdict_release(v);
}

/* Whether the path, which passes_through, also leads under a prefix once the kernel follows its
 * symlinks: a symlink inside a mount may point out of every mount (/usr/lib/ssl/private ->
 * /etc/ssl/private), and the local call would then reach the host. The path is opened O_PATH
 * and its descriptor's /proc/self/fd link checked. A path that does not exist is the mount's
 * when its longest existing ancestor lies under a prefix and has no entry (not even a symlink)
 * of the next component's name. Anything else (EACCES, ENOTDIR, ELOOP, no /proc) is false:
 * the call is forwarded and the master decides. errno is left as it was. A path found to lead
 * under a prefix is kept (see struct verdict) and not checked again. */
static bool resolves_under_table(const struct lcf_request *req)
{
    bool follows = follows_last(req);
    if (verdict_known(req->str1, (size_t)req->call.length1, follows))
        return true;
    int saved = errno;
    bool ok = false;
    int fd = lcf_real_openat(AT_FDCWD, req->str1, O_PATH | O_CLOEXEC | (follows ? 0 : O_NOFOLLOW));
    if (fd >= 0) {
        ok = fd_under_table(fd);
        close(fd);
    } else if (errno == ENOENT) {
        char buf[LCF_MAX_PATH + 1];
        size_t n = (size_t)req->call.length1;
        memcpy(buf, req->str1, n);
        buf[n] = '\0';
        for (;;) {
            while (n > 1 && buf[n - 1] == '/')
                n--; /* the missing component: buf[cut + 1 .. n) */
            size_t cut = n;
            while (cut > 0 && buf[cut - 1] != '/')
                cut--;
            if (cut == 0 || cut == n)
                break;
            buf[n] = '\0';
            char parent[LCF_MAX_PATH + 1];
            size_t k = cut > 1 ? cut - 1 : 1; /* "/" for the root */
            memcpy(parent, buf, k);
            parent[k] = '\0';
            const char *name = buf + cut;
            int dir = lcf_real_openat(AT_FDCWD, parent, O_PATH | O_CLOEXEC | O_DIRECTORY);
            int err = errno;
            if (dir >= 0) {
                struct stat st;
                ok = fd_under_table(dir) && lcf_real_fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
                     errno == ENOENT;
                close(dir);
                break;
            }
            if (err != ENOENT)
                break;
            n = cut - 1; /* one component up */
        }
    }
    if (ok)
        verdict_keep(req->str1, (size_t)req->call.length1, follows);
    errno = saved;
    return ok;
}


/* ========================================================================= decisions ===== */

enum passthrough_verdict passthrough_decide(const struct lcf_request *req)
{
    if (!table_ready())
        return PASSTHROUGH_NO_TABLE;
    return passes_through(req) && resolves_under_table(req) ? PASSTHROUGH_LOCAL
                                                             : PASSTHROUGH_FORWARD;
}

bool passthrough_path(const char *path, size_t n)
{
    struct lcf_request req = {.str1 = path, .readonly = true};
    req.call.length1 = (int32_t)n;
    return passthrough_decide(&req) == PASSTHROUGH_LOCAL;
}

bool table_master_dev(uint64_t dev)
{
    return dev != 0 && table_ready() && (dev == master_devices[0] || dev == master_devices[1]);
}

void table_inspect(struct table_view *view)
{
    *view = (struct table_view){table_bytes, table_start, table_len, table_count};
}

void table_forget(void)
{
    __atomic_store_n(&table_state, TABLE_EMPTY, __ATOMIC_RELEASE);
    table_count = 0;
}
