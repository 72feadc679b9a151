/* snapshot_answers.c — the calls the shim answers from the master's snapshot (see
 * snapshot_answers.h) without a round trip: the snapshot's mapping, the virtual path a call
 * names, the lookup, the answer as the master would give it, and the note that tells the master. */

#include "snapshot_answers.h"
#include "passthrough.h"
#include "real.h"
#include "replies.h"
#include "ring.h"
#include "snapshot.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LCF_SNAPSHOT_MAX (1ULL << 30) /* a larger snapshot is refused */

/* The master's metadata snapshot, mapped read-only from the first welcome (see snapshot.h). */
static struct lcf_snapshot_view snapshot;
static bool snapshot_mapped;

int snapshot_map(int fd, uint64_t bytes, struct line *l)
{
    void *map = memfd_map(fd, bytes, LCF_SNAPSHOT_MAX, PROT_READ);
    if (map != MAP_FAILED && lcf_snapshot_view_init(&snapshot, map, bytes) == 0) {
        snapshot_mapped = true;
        return 0;
    }
    return memfd_refuse(map, bytes, "snapshot", l);
}


/* Whether path (n bytes) is the shadow tree's root or lies under it. */
static bool in_shadow_tree(const char *path, size_t n)
{
    return lcf_snapshot_in_tree(&snapshot, path, n);
}

/* Writes into out (LCF_MAX_PATH + 1 bytes) the virtual path a stat-like call names: a path in the
 * shadow tree stands for the virtual path after the tree's root, a relative path is joined to
 * its directory descriptor's (which must be a shadow directory), any other absolute path is
 * itself; fstat names its descriptor's, which must be a shadow directory. Returns its length, or
 * -1 when the snapshot cannot name it. */
static ssize_t snapshot_path(const struct lcf_request *req, char *out)
{
    size_t root_len = snapshot.root_length, base = 0, n = 0;
    const char *rest = "";
    bool fstat = req->call.function == LCF_FSTAT;
    if (fstat || (req->call.fds & LCF_FD_DIR1)) {
        /* the descriptor's path: fstat's file, or the directory a relative path starts from */
        ssize_t k = !fstat || req->call.fds == LCF_FD_FILE ? lcf_fd_path(req->fds[0], out) : -1;
        if (k < 0 || !in_shadow_tree(out, (size_t)k))
            return -1;
        base = (size_t)k - root_len; /* its virtual path, "" for "/" */
        memmove(out, out + root_len, base);
        if (!fstat) {
            out[base++] = '/';
            rest = req->str1;
            n = (size_t)req->call.length1;
        }
    } else {
        rest = req->str1;
        n = (size_t)req->call.length1;
        if (in_shadow_tree(rest, n)) {
            rest += root_len;
            n -= root_len;
        }
    }
    if (base + n == 0) { /* the shadow tree's root: "/" */
        rest = "/";
        n = 1;
    }
    if (base + n > LCF_MAX_PATH)
        return -1;
    memcpy(out + base, rest, n);
    out[base + n] = '\0';
    return snapshot_form(out, base + n) ? (ssize_t)(base + n) : -1;
}

/* Tells the master about a call answered from the snapshot: appends a note to the connection's
 * ring. False when the ring is full: the call then makes its round trip, before which the master
 * takes the ring, so the notes keep their order and the ring is empty again. (Never a message:
 * the master would take notes appended after it before reading it.) */
static bool send_note(struct conn *c, const struct lcf_request *req, const struct lcf_stat *st,
                      const char *path, size_t n, const char *target, int32_t result, int32_t error)
{
    struct lcf_note note = {
        .function = req->call.function,
        .flags = req->call.flags,
        .result = result,
        .mode = st->mode,
        .size = st->size,
        .length = (int32_t)n,
        .error = error, /* ENOENT, ENODATA (getxattr): the failures answered from the snapshot */
    };
    memcpy(note.symbol, req->call.symbol, sizeof note.symbol);
    size_t text = req->call.function == LCF_READLINK && result > 0 ? (size_t)result : 0;
    header_init(&note.header, LCF_NOTE, sizeof note + n + text, ++c->seq);
    struct lcf_piece pieces[3] = {{&note, sizeof note}, {path, n}, {target, text}};
    return c->ring != NULL && lcf_ring_append(c->ring, c->ring_data, &c->ring_head, pieces, 3);
}


/* What the snapshot says of the path a call names. */
enum snapshot_says {
    UNKNOWN,                       /* nothing: ask the master */
    FOUND,                         /* what lstat says of it */
    MISSING,                       /* no such entry: its directory is complete, and lacks it */
};

/* Looks up the entry the call names: its virtual path (n bytes) in path and, when FOUND, what the
 * snapshot says in *st (its flags moved to *flags) and, for a symlink, target. A name missing
 * from a complete directory (not fstat's: its descriptor names what exists) is MISSING. errno is
 * left as it was. */
static enum snapshot_says snapshot_entry(const struct lcf_request *req,
                                         char path[LCF_MAX_PATH + 1], size_t *n,
                                         struct lcf_stat *st, uint32_t *flags,
                                         char target[LCF_MAX_PATH + 1], int32_t *target_length)
{
    int saved = errno;
    ssize_t k = snapshot_path(req, path); /* (may readlink a descriptor's path) */
    errno = saved;
    if (k <= 0)
        return UNKNOWN;
    *n = (size_t)k;
    switch (lcf_snapshot_says(&snapshot, path, *n, st, flags, target, target_length,
                              req->call.function != LCF_FSTAT)) {
    case LCF_SNAPSHOT_FOUND:
        return FOUND;
    case LCF_SNAPSHOT_MISSING:
        return MISSING;
    default:
        return UNKNOWN;
    }
}

/* Fills *reply as the master's answer would be: result (-1 with error), no payload yet. */
static void snapshot_reply(struct lcf_reply *reply, int32_t result, int32_t error)
{
    memset(reply, 0, sizeof *reply);
    reply->action = LCF_ANSWER;
    reply->result = result;
    reply->error = error;
    reply->text_length = -1;
}

/* Answers the call with -1 ENOENT, after telling the master in a note. */
static bool snapshot_missing(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                             const char *path, size_t n)
{
    static const struct lcf_stat none;
    if (!send_note(c, req, &none, path, n, NULL, -1, ENOENT))
        return false;
    snapshot_reply(reply, -1, ENOENT);
    return true;
}

/* Answers an open of a name missing from a complete directory (unless it creates one) with
 * ENOENT, and opens a listed directory readable by everyone as the master would: its shadow
 * directory, which lists exactly its entries. Tells the master in a note; false (errno as it
 * was) when the master must answer. */
static bool snapshot_open(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                          int *fd)
{
    int open_flags = req->call.flags;
    bool creates = (open_flags & O_CREAT) || (open_flags & O_TMPFILE) == O_TMPFILE;
    if (creates || req->call.length1 <= 0)
        return false;
    char path[LCF_MAX_PATH + 1], target[LCF_MAX_PATH + 1];
    char real[sizeof snapshot.root + LCF_MAX_PATH];
    size_t n;
    struct lcf_stat st;
    uint32_t flags;
    int32_t target_length;
    enum snapshot_says says = snapshot_entry(req, path, &n, &st, &flags, target, &target_length);
    if (says == MISSING)
        return snapshot_missing(c, req, reply, path, n);
    if (says != FOUND || !lcf_snapshot_opens_shadow(&st, flags, open_flags))
        return false;
    lcf_snapshot_shadow(&snapshot, path, n, real);
    int saved = errno;
    int dir = lcf_real_openat(AT_FDCWD, real, open_flags | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0 && !send_note(c, req, &st, path, n, target, 0, 0)) {
        close(dir);
        dir = -1;
    }
    errno = saved; /* a shadow a program may not enter (it runs as another user): the master's */
    if (dir < 0)
        return false;
    snapshot_reply(reply, 0, 0);
    *fd = dir; /* with FD_CLOEXEC, as a descriptor from the master arrives */
    return true;
}

/* Whether getxattr's name (n bytes) is one the model keeps none of, whoever asks: a POSIX ACL
 * (ENOTSUP on a symlink, which the caller leaves to the master) or a security. name other than
 * the bare prefix. The kernel checks no permission on these, so a published entry is ENODATA. */
static bool never_kept(const char *name, int32_t n)
{
    static const char acl[] = "system.posix_acl_", sec[] = "security.";
    size_t k = n > 0 ? (size_t)n : 0;
    if (k > sizeof sec - 1 && memcmp(name, sec, sizeof sec - 1) == 0)
        return true;
    return k > sizeof acl - 1 && memcmp(name, acl, sizeof acl - 1) == 0 &&
           ((k == sizeof acl - 1 + 6 && memcmp(name + sizeof acl - 1, "access", 6) == 0) ||
            (k == sizeof acl - 1 + 7 && memcmp(name + sizeof acl - 1, "default", 7) == 0));
}

/* Answers getxattr of a name the model keeps none of on a published entry (ENODATA), and of
 * any name on a name a complete directory lacks (ENOENT); ls -l asks of every file. */
static bool snapshot_getxattr(struct conn *c, const struct lcf_request *req,
                              struct lcf_reply *reply)
{
    if (req->call.length1 <= 0 || (req->call.fds & LCF_FD_DIR1))
        return false;
    char path[LCF_MAX_PATH + 1], target[LCF_MAX_PATH + 1];
    struct lcf_stat st;
    uint32_t flags;
    int32_t target_length;
    size_t n;
    enum snapshot_says says = snapshot_entry(req, path, &n, &st, &flags, target, &target_length);
    if (says == MISSING)
        return snapshot_missing(c, req, reply, path, n);
    if (says != FOUND || S_ISLNK(st.mode) || !never_kept(req->str2, req->call.length2))
        return false; /* (a symlink: followed, or ENOTSUP for an ACL; the master's) */
    if (!send_note(c, req, &st, path, n, NULL, -1, ENODATA))
        return false;
    snapshot_reply(reply, -1, ENODATA);
    return true;
}

/* Answers fstat of a model file's memfd from its descriptor's record (see LCF_SNAPSHOT_DESCRIPTOR
 * in libcfake_wire.h): the memfd's own size and times where the memfd is the file, the record's
 * values for the rest. False (errno as it was) when the master must answer. */
static bool snapshot_fstat_file(struct conn *c, const struct lcf_request *req,
                                struct lcf_reply *reply, void *payload, size_t payload_size)
{
    struct lcf_stat st;
    struct stat real;
    char path[LCF_MAX_PATH + 1];
    int32_t path_length;
    int saved = errno;
    bool got = req->call.fds == LCF_FD_FILE && payload_size >= sizeof st &&
               lcf_real_fstat(req->fds[0], &real) == 0;
    errno = saved;
    if (!got || !lcf_snapshot_descriptor(&snapshot, &real, &st, path, &path_length) ||
        !send_note(c, req, &st, path, (size_t)path_length, NULL, 0, 0))
        return false;
    snapshot_reply(reply, 0, 0);
    reply->count = 1;
    memcpy(payload, &st, sizeof st);
    return true;
}

bool snapshot_answer(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                     int *fd, void *payload, size_t payload_size)
{
    uint32_t f = req->call.function;
    if (!lcf_noted(f))
        return false; /* (readdir: a stat reply, but the master takes no note of it) */
    if (snapshot_mapped && is_open(f))
        return snapshot_open(c, req, reply, fd);
    if (snapshot_mapped && f == LCF_GETXATTR)
        return snapshot_getxattr(c, req, reply);
    if (snapshot_mapped && f == LCF_FSTAT && !req->directory) /* (a file's: a memfd) */
        return snapshot_fstat_file(c, req, reply, payload, payload_size);
    bool stat = is_stat(f);
    bool access = f == LCF_ACCESS || f == LCF_EACCESS;
    if (!snapshot_mapped || !(stat || access || f == LCF_READLINK) ||
        (f != LCF_FSTAT && req->call.length1 <= 0))
        return false;
    char path[LCF_MAX_PATH + 1], target[LCF_MAX_PATH + 1];
    struct lcf_stat st;
    uint32_t flags;
    int32_t target_length;
    size_t n;
    enum snapshot_says says = snapshot_entry(req, path, &n, &st, &flags, target, &target_length);
    if (says == MISSING)
        return snapshot_missing(c, req, reply, path, n);
    if (says != FOUND || (access && req->call.flags != F_OK))
        return false; /* (other modes are checked against the caller: the master's) */
    bool link = S_ISLNK(st.mode);
    bool follows = f == LCF_STAT || access;
    if (f == LCF_READLINK ? !link || (size_t)target_length > payload_size : link && follows)
        return false; /* the last symlink is followed: the master resolves it */
    if (stat && payload_size < sizeof st)
        return false;
    int32_t result = f == LCF_READLINK ? target_length : 0;
    if (!send_note(c, req, &st, path, n, target, result, 0))
        return false;
    snapshot_reply(reply, result, 0);
    if (stat) {
        reply->count = 1;
        memcpy(payload, &st, sizeof st);
    } else if (f == LCF_READLINK) {
        reply->text_length = target_length;
        memcpy(payload, target, (size_t)target_length);
    }
    return true;
}

/* ====================================================================== listings ===== */

ssize_t snapshot_directory(int fd, char out[LCF_MAX_PATH + 1])
{
    if (!snapshot_mapped)
        return -1;
    int saved = errno;
    ssize_t k = lcf_fd_path(fd, out);
    errno = saved;
    if (k < 0 || !in_shadow_tree(out, (size_t)k))
        return -1;
    size_t n = (size_t)k - snapshot.root_length;
    memmove(out, out + snapshot.root_length, n);
    if (n == 0) /* the shadow tree's root: "/" */
        out[n++] = '/';
    out[n] = '\0';
    return snapshot_form(out, n) ? (ssize_t)n : -1;
}

uint64_t snapshot_inode(const char *path, size_t n)
{
    struct lcf_stat st;
    char target[LCF_MAX_PATH + 1];
    int32_t target_length;
    if (!snapshot_mapped || !lcf_snapshot_get(&snapshot, path, n, &st, target, &target_length))
        return 0;
    return st.ino;
}
