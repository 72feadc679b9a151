/* The metadata snapshot's writer (the master's, through cffi) and reader (the shim's).
 * See struct lcf_snapshot in libcfake_wire.h for the layout and the rules. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_LARGEFILE (the shim defines it for all its units; cffi does not) */
#endif
#include "snapshot.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

uint64_t lcf_path_hash(const char *path, size_t length)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < length; i++) {
        h ^= (unsigned char)path[i];
        h *= 0x100000001b3ULL;
    }
    return h | 1;
}

static struct lcf_snapshot_slot *slots_of(const struct lcf_snapshot_writer *w)
{
    return (struct lcf_snapshot_slot *)(w->base + w->slots_offset);
}

int lcf_snapshot_init(struct lcf_snapshot_writer *w, void *map, uint64_t bytes,
                      uint32_t slot_count, const char *root, uint32_t root_length)
{
    struct lcf_snapshot *s = map;
    uint64_t slots = (sizeof *s + 63) / 64 * 64;
    uint64_t pool = slots + (uint64_t)slot_count * sizeof(struct lcf_snapshot_slot);
    if (slot_count == 0 || (slot_count & (slot_count - 1)) != 0 || pool >= bytes ||
        root_length > LCF_MAX_PATH)
        return -1;
    *w = (struct lcf_snapshot_writer){
        .base = map,
        .bytes = bytes,
        .slot_count = slot_count,
        .epoch = 2, /* slots start at epoch 0: empty */
        .slots_offset = slots,
        .pool_offset = pool,
        .pool_bytes = bytes - pool,
    };
    memset(s, 0, sizeof *s);
    s->slot_count = slot_count;
    s->epoch = w->epoch;
    s->slots_offset = slots;
    s->pool_offset = pool;
    s->pool_bytes = w->pool_bytes;
    s->root_length = root_length;
    memcpy(s->root, root, root_length);
    __atomic_store_n(&s->magic, LCF_SNAPSHOT_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

void lcf_snapshot_clear(struct lcf_snapshot_writer *w)
{
    struct lcf_snapshot *s = (struct lcf_snapshot *)w->base;
    /* a seqlock's writer: the new epoch is visible before any slot of it is written */
    w->epoch++;
    __atomic_store_n(&s->epoch, w->epoch, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    w->live = 0;
    w->pool_used = 0;
    s->live = 0;
    s->pool_used = 0;
}

/* The master's probe for path (of that hash): its slot in this epoch, with *found true, or the
 * free slot where it would go (NULL if none: never while the table is at most half full). Every
 * offset it follows is the writer's own or checked against what the writer used. */
static struct lcf_snapshot_slot *probe(const struct lcf_snapshot_writer *w, const char *path,
                                       uint32_t length, uint64_t hash, bool *found)
{
    struct lcf_snapshot_slot *slots = slots_of(w);
    const unsigned char *pool = w->base + w->pool_offset;
    uint32_t mask = w->slot_count - 1;
    uint32_t i = (uint32_t)hash & mask;
    for (uint32_t probes = 0; probes < w->slot_count; probes++, i = (i + 1) & mask) {
        struct lcf_snapshot_slot *slot = &slots[i];
        if (slot->epoch == (w->epoch | LCF_SNAPSHOT_WITHDRAWN))
            continue; /* a tombstone: taken until the next epoch, the probe goes on */
        *found = slot->epoch == w->epoch;
        if (!*found)
            return slot;
        uint64_t offset = slot->path_offset;
        if (slot->hash == hash && slot->path_length == length && offset <= w->pool_used &&
            length <= w->pool_used - offset && memcmp(pool + offset, path, length) == 0)
            return slot;
    }
    *found = false;
    return NULL;
}

/* Puts one entry; returns as lcf_snapshot_put. */
static int put_entry(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                     const struct lcf_stat *stat, const char *target, int32_t target_length)
{
    struct lcf_snapshot *s = (struct lcf_snapshot *)w->base;
    uint64_t hash = lcf_path_hash(path, length);
    uint64_t extra = target_length > 0 ? (uint64_t)target_length : 0;
    unsigned char *pool = w->base + w->pool_offset;
    if (w->live >= w->slot_count / 2 || length + extra > w->pool_bytes - w->pool_used)
        return -1; /* half full keeps probes short; a full snapshot just answers less */
    bool found;
    struct lcf_snapshot_slot *slot = probe(w, path, length, hash, &found);
    if (found)
        return 0; /* nothing changed since it was published, or it would be empty */
    if (slot == NULL)
        return -1;
    slot->hash = hash;
    slot->path_offset = w->pool_used;
    slot->path_length = length;
    memcpy(pool + w->pool_used, path, length);
    w->pool_used += length;
    slot->target_length = target_length;
    slot->target_offset = w->pool_used;
    if (extra > 0)
        memcpy(pool + w->pool_used, target, extra);
    w->pool_used += extra;
    slot->stat = *stat;
    __atomic_store_n(&slot->epoch, w->epoch, __ATOMIC_RELEASE);
    w->live++;
    s->live = w->live; /* for a reader's curiosity only: the writer never reads them back */
    s->pool_used = w->pool_used;
    return 1;
}

int lcf_snapshot_put(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                     const struct lcf_stat *stat, const char *target, int32_t target_length)
{
    return put_entry(w, path, length, stat, target, target_length);
}

int lcf_snapshot_withdraw(struct lcf_snapshot_writer *w, const char *path, uint32_t length)
{
    bool found;
    struct lcf_snapshot_slot *slot = probe(w, path, length, lcf_path_hash(path, length), &found);
    if (found) /* one aligned word: a reader checks it again after copying the slot */
        __atomic_store_n(&slot->epoch, w->epoch | LCF_SNAPSHOT_WITHDRAWN, __ATOMIC_RELEASE);
    return found;
}

int lcf_snapshot_mark(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                      uint32_t flags)
{
    bool found;
    struct lcf_snapshot_slot *slot = probe(w, path, length, lcf_path_hash(path, length), &found);
    if (found) /* one aligned word: a reader copying the slot sees it before or after */
        __atomic_fetch_or(&slot->stat.reserved, flags, __ATOMIC_RELEASE);
    return found;
}

int lcf_snapshot_unmark(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                        uint32_t flags)
{
    bool found;
    struct lcf_snapshot_slot *slot = probe(w, path, length, lcf_path_hash(path, length), &found);
    if (found) /* as lcf_snapshot_mark */
        __atomic_fetch_and(&slot->stat.reserved, ~flags, __ATOMIC_RELEASE);
    return found;
}

/* The seconds and nanoseconds of a time of ns nanoseconds (pyfakefs keeps times so), floored as
 * Python's divmod: what the master's stat answers carry (libcfake.protocol.pack_stat_ns), so the
 * snapshot answers exactly what the master would (tests/test_snapshot.py compares the two). */
static void split_nanoseconds(int64_t ns, int64_t *sec, int64_t *nsec)
{
    int64_t seconds = ns / 1000000000, rest = ns % 1000000000;
    if (rest < 0) { /* C truncates toward zero */
        seconds--;
        rest += 1000000000;
    }
    *sec = seconds;
    *nsec = rest;
}

int lcf_snapshot_put_many(struct lcf_snapshot_writer *w, const char *records, uint64_t bytes,
                          uint32_t *published)
{
    uint64_t offset = 0;
    *published = 0;
    while (offset < bytes) {
        struct lcf_snapshot_record record;
        if (bytes - offset < sizeof record)
            return -2;
        memcpy(&record, records + offset, sizeof record); /* records are not aligned */
        offset += sizeof record;
        uint64_t extra = record.target_length > 0 ? (uint64_t)record.target_length : 0;
        if (record.target_length < -1 || record.path_length > bytes - offset ||
            extra > bytes - offset - record.path_length)
            return -2;
        struct lcf_stat stat = {
            .dev = record.dev,
            .ino = record.ino,
            .nlink = record.nlink,
            .mode = record.mode,
            .uid = record.uid,
            .gid = record.gid,
            .rdev = record.rdev,
            .size = record.size,
            .blksize = record.blksize,
            .blocks = record.blocks,
            .reserved = record.flags,
        };
        split_nanoseconds(record.atime_ns, &stat.atime_sec, &stat.atime_nsec);
        split_nanoseconds(record.mtime_ns, &stat.mtime_sec, &stat.mtime_nsec);
        split_nanoseconds(record.ctime_ns, &stat.ctime_sec, &stat.ctime_nsec);
        const char *path = records + offset;
        int done = put_entry(w, path, record.path_length, &stat, path + record.path_length,
                             record.target_length);
        if (done < 0)
            return -1;
        *published += (uint32_t)done;
        offset += record.path_length + extra;
    }
    return 0;
}

int lcf_snapshot_view_init(struct lcf_snapshot_view *view, const void *map, uint64_t bytes)
{
    const struct lcf_snapshot *s = map;
    if (bytes < sizeof *s || __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) != LCF_SNAPSHOT_MAGIC)
        return -1;
    uint64_t slot_bytes = (uint64_t)s->slot_count * sizeof(struct lcf_snapshot_slot);
    if (s->slot_count == 0 || (s->slot_count & (s->slot_count - 1)) != 0 ||
        s->slots_offset < sizeof *s || s->slots_offset > bytes ||
        slot_bytes > bytes - s->slots_offset || s->pool_offset > bytes ||
        s->pool_bytes > bytes - s->pool_offset || s->root_length > LCF_MAX_PATH ||
        s->root[s->root_length] != '\0' || s->slots_offset % 8 != 0)
        return -1;
    view->base = map;
    view->bytes = bytes;
    view->slot_count = s->slot_count;
    view->slots_offset = s->slots_offset;
    view->pool_offset = s->pool_offset;
    view->pool_bytes = s->pool_bytes;
    view->root_length = s->root_length;
    memcpy(view->root, s->root, s->root_length + 1);
    return 0;
}

/* Whether [offset, offset + length) lies in the pool. */
static int in_pool(const struct lcf_snapshot_view *view, uint64_t offset, uint64_t length)
{
    return offset <= view->pool_bytes && length <= view->pool_bytes - offset;
}

int lcf_snapshot_get(const struct lcf_snapshot_view *view, const char *path, size_t length,
                     struct lcf_stat *stat, char *target, int32_t *target_length)
{
    const struct lcf_snapshot *s = (const struct lcf_snapshot *)view->base;
    const struct lcf_snapshot_slot *slots =
        (const struct lcf_snapshot_slot *)(view->base + view->slots_offset);
    const unsigned char *pool = view->base + view->pool_offset;
    uint64_t epoch = __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
    uint64_t hash = lcf_path_hash(path, length);
    uint32_t mask = view->slot_count - 1;
    uint32_t i = (uint32_t)hash & mask;
    for (uint32_t probes = 0; probes < view->slot_count; probes++, i = (i + 1) & mask) {
        const struct lcf_snapshot_slot *slot = &slots[i];
        uint64_t slot_epoch = __atomic_load_n(&slot->epoch, __ATOMIC_ACQUIRE);
        if (slot_epoch == (epoch | LCF_SNAPSHOT_WITHDRAWN))
            continue; /* a withdrawn entry: the probe goes on past it */
        if (slot_epoch != epoch)
            return 0; /* an empty slot ends the probe: not published */
        uint64_t offset = slot->path_offset;
        if (slot->hash != hash || slot->path_length != length || !in_pool(view, offset, length) ||
            memcmp(pool + offset, path, length) != 0)
            continue;
        *stat = slot->stat;
        int32_t n = slot->target_length;
        if (n > LCF_MAX_PATH || n < -1 ||
            (n >= 0 && !in_pool(view, slot->target_offset, (uint64_t)n)))
            return 0;
        if (n >= 0) {
            memcpy(target, pool + slot->target_offset, (size_t)n);
            target[n] = '\0';
        }
        *target_length = n;
        /* a seqlock's reader: what was copied counts only if no new epoch began meanwhile and
         * the entry was not withdrawn */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        return __atomic_load_n(&s->epoch, __ATOMIC_RELAXED) == epoch &&
               __atomic_load_n(&slot->epoch, __ATOMIC_RELAXED) == epoch;
    }
    return 0;
}

/* Appends v in lowercase hex to out; returns the bytes written (at most 16). */
static size_t put_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    do {
        n++;
    } while (n < 16 && (v >> (4 * n)) != 0);
    for (size_t i = n; i-- > 0; v >>= 4)
        out[i] = digits[v & 15];
    return n;
}

/* Whether the time sec.nsec is later than the other. */
static int later(int64_t sec, int64_t nsec, int64_t other_sec, int64_t other_nsec)
{
    return sec > other_sec || (sec == other_sec && nsec > other_nsec);
}

int lcf_snapshot_descriptor(const struct lcf_snapshot_view *view, const struct stat *real,
                            struct lcf_stat *out, char path[LCF_MAX_PATH + 1],
                            int32_t *path_length)
{
    static const char prefix[] = "//memfd/"; /* the key: "//memfd/DEV/INO" */
    char key[sizeof prefix + 2 * 16 + 1];
    size_t n = sizeof prefix - 1;
    memcpy(key, prefix, n);
    n += put_hex(key + n, (uint64_t)real->st_dev);
    key[n++] = '/';
    n += put_hex(key + n, (uint64_t)real->st_ino);
    struct lcf_stat s;
    if (!S_ISREG(real->st_mode) || !lcf_snapshot_get(view, key, n, &s, path, path_length) ||
        !(s.reserved & LCF_SNAPSHOT_DESCRIPTOR) || !S_ISREG(s.mode) || *path_length <= 0)
        return 0;
    /* the record's mtime is the memfd's ctime when it was made: since then unchanged, the
     * file's ctime is the model's; else the later of the two */
    int changed = real->st_ctim.tv_sec != s.mtime_sec || real->st_ctim.tv_nsec != s.mtime_nsec;
    if (changed && later(real->st_ctim.tv_sec, real->st_ctim.tv_nsec, s.ctime_sec, s.ctime_nsec)) {
        s.ctime_sec = real->st_ctim.tv_sec;
        s.ctime_nsec = real->st_ctim.tv_nsec;
    }
    s.size = real->st_size; /* the memfd is the file's contents */
    s.blocks = (real->st_size + 4095) / 4096 * 8; /* as the master's answers count them */
    s.mtime_sec = real->st_mtim.tv_sec;
    s.mtime_nsec = real->st_mtim.tv_nsec;
    s.reserved = 0;
    *out = s;
    return 1;
}

int lcf_stat_typed(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO:
    case S_IFSOCK:
        return 1;
    default:
        return 0;
    }
}

int lcf_snapshot_says(const struct lcf_snapshot_view *view, const char *path, size_t n,
                      struct lcf_stat *st, uint32_t *flags, char target[LCF_MAX_PATH + 1],
                      int32_t *target_length, int names_missing)
{
    if (lcf_snapshot_get(view, path, n, st, target, target_length)) {
        if (!lcf_stat_typed(st->mode))
            return LCF_SNAPSHOT_UNKNOWN;
        *flags = st->reserved;
        st->reserved = 0;
        return LCF_SNAPSHOT_FOUND;
    }
    size_t slash = n - 1; /* the snapshot's form: "/" or no trailing slash */
    while (slash > 0 && path[slash] != '/')
        slash--;
    if (!names_missing || n <= 1 || n - slash - 1 > NAME_MAX)
        return LCF_SNAPSHOT_UNKNOWN;
    struct lcf_stat parent; /* the directory the name would be in ("/" for "/name") */
    int32_t parent_target;
    int complete = lcf_snapshot_get(view, path, slash > 0 ? slash : 1, &parent, target,
                                    &parent_target) &&
                   S_ISDIR(parent.mode) && (parent.reserved & LCF_SNAPSHOT_COMPLETE);
    return complete ? LCF_SNAPSHOT_MISSING : LCF_SNAPSHOT_UNKNOWN;
}

int lcf_snapshot_in_tree(const struct lcf_snapshot_view *view, const char *path, size_t n)
{
    size_t k = view->root_length;
    return n >= k && memcmp(path, view->root, k) == 0 && (n == k || path[k] == '/');
}

size_t lcf_snapshot_shadow(const struct lcf_snapshot_view *view, const char *path, size_t n,
                           char *out)
{
    size_t k = view->root_length;
    memcpy(out, view->root, k);
    if (n > 1) { /* "/" is the root itself */
        memcpy(out + k, path, n);
        k += n;
    }
    out[k] = '\0';
    return k;
}

/* The open flags a listed directory's shadow is opened with: read-only, and nothing the shadow
 * directory could answer differently from the master. */
#define LISTED_OPEN_FLAGS (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_LARGEFILE | O_NOCTTY)

int lcf_snapshot_opens_shadow(const struct lcf_stat *st, uint32_t flags, int open_flags)
{
    return (open_flags & ~LISTED_OPEN_FLAGS) == 0 && /* (O_RDONLY is 0) */
           (flags & LCF_SNAPSHOT_LISTED) && S_ISDIR(st->mode) && (st->mode & 0444) == 0444;
}
