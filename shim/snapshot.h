/* The metadata snapshot (struct lcf_snapshot in libcfake_wire.h): the master's writer and the
 * shim's reader of one shared memory layout, in one C file both are built from (the master
 * through the cffi module, the shim as one of its sources). Nothing here calls libc wrappers or
 * allocates, so the reader is safe in any thread and in signal handlers. */
#ifndef LIBCFAKE_SNAPSHOT_H
#define LIBCFAKE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "libcfake_wire.h"

/* A snapshot's geometry, as the reader checked it once (the master never changes it). */
struct lcf_snapshot_view {
    const unsigned char *base;
    uint64_t bytes;
    uint32_t slot_count;
    uint64_t slots_offset;
    uint64_t pool_offset;
    uint64_t pool_bytes;
    size_t root_length;
    char root[LCF_MAX_PATH + 1];   /* the shadow tree's root, NUL-terminated */
};

/* FNV-1a of a path's bytes (never 0): the snapshot's and the passthrough verdicts' hash. */
uint64_t lcf_path_hash(const char *path, size_t length);

/* The master's writer of one snapshot: the layout it chose and the counts it keeps, in the
 * master's own memory. Programs map the snapshot read-only, but even so the writer never reads
 * back from shared memory anything that decides where it writes or how much it copies. */
struct lcf_snapshot_writer {
    unsigned char *base;           /* the master's writable mapping */
    uint64_t bytes;
    uint32_t slot_count;           /* a power of two */
    uint32_t live;                 /* slots filled in this epoch */
    uint64_t epoch;
    uint64_t slots_offset;
    uint64_t pool_offset;
    uint64_t pool_bytes;
    uint64_t pool_used;            /* bytes of the pool used in this epoch */
};

/* Master: lays out an empty snapshot in the `bytes` bytes at map for slot_count slots (a power of
 * two) and the shadow tree's root, and fills w. Returns 0, or -1 when it does not fit. */
int lcf_snapshot_init(struct lcf_snapshot_writer *w, void *map, uint64_t bytes,
                      uint32_t slot_count, const char *root, uint32_t root_length);

/* Master: empties the snapshot (one new epoch). */
void lcf_snapshot_clear(struct lcf_snapshot_writer *w);

/* Master: publishes what lstat says of path, with a symlink's target (target_length -1 for
 * other files). Returns 1 (published), 0 (already there in this epoch) or -1 (full). */
int lcf_snapshot_put(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                     const struct lcf_stat *stat, const char *target, int32_t target_length);

/* Master: withdraws path's entry (a tombstone, see struct lcf_snapshot). Returns 1, or 0 when
 * path is not published in this epoch. */
int lcf_snapshot_withdraw(struct lcf_snapshot_writer *w, const char *path, uint32_t length);

/* Master: adds flags (LCF_SNAPSHOT_*) to path's entry. Returns 1, or 0 when path is not
 * published in this epoch. */
int lcf_snapshot_mark(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                      uint32_t flags);

/* Master: takes flags (LCF_SNAPSHOT_*) off path's entry. Returns 1, or 0 when path is not
 * published in this epoch. */
int lcf_snapshot_unmark(struct lcf_snapshot_writer *w, const char *path, uint32_t length,
                        uint32_t flags);

/* One entry of lcf_snapshot_put_many's buffer, followed by path_length bytes of its path and,
 * for a symlink, target_length bytes of its target. The fields are struct lcf_stat's, but the
 * times are nanoseconds, made into seconds and nanoseconds as the master's stat answers them. */
struct lcf_snapshot_record {
    uint64_t dev;
    uint64_t ino;
    uint64_t nlink;
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    int32_t target_length;         /* -1: not a symlink */
    uint64_t rdev;
    int64_t size;
    int64_t blksize;
    int64_t blocks;
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
    uint32_t path_length;
    uint32_t flags;                /* LCF_SNAPSHOT_* flags the entry starts with */
};

/* Master: publishes every record of the bytes at records, in order (one call for a directory's
 * entries). Returns 0, -1 when the snapshot filled up, or -2 when the buffer is not a sequence
 * of records; the records before the one that did not fit or was broken are in, and *published
 * counts those new in this epoch whatever the result. */
int lcf_snapshot_put_many(struct lcf_snapshot_writer *w, const char *records, uint64_t bytes,
                          uint32_t *published);

/* Shim: checks the header of a mapped snapshot and fills view (a copy of its geometry and root).
 * Returns 0, or -1 if the layout does not fit in `bytes` or is not a snapshot. */
int lcf_snapshot_view_init(struct lcf_snapshot_view *view, const void *map, uint64_t bytes);

/* Shim: looks path up. Returns 1 with *stat (its reserved field holding the entry's flags) (and, for a symlink, its target in target, which
 * has LCF_MAX_PATH + 1 bytes, NUL-terminated, and *target_length; else *target_length = -1),
 * or 0 when the snapshot has no such entry now. */
int lcf_snapshot_get(const struct lcf_snapshot_view *view, const char *path, size_t length,
                     struct lcf_stat *stat, char *target, int32_t *target_length);

/* Whether the mode has a file type a stat answer may carry (0: a named-only entry, or garbage). */
int lcf_stat_typed(uint32_t mode);

/* Reader: whether path (n bytes) is the shadow tree's root or lies under it: the real directories
 * that stand for the virtual ones (the root's, then the virtual path). */
int lcf_snapshot_in_tree(const struct lcf_snapshot_view *view, const char *path, size_t n);

/* Reader: writes into out (the root's bytes and LCF_MAX_PATH more, NUL-terminated) the shadow
 * directory of the virtual path (n bytes, in the snapshot's form); returns its length. */
size_t lcf_snapshot_shadow(const struct lcf_snapshot_view *view, const char *path, size_t n,
                           char *out);

/* Reader: whether an open with open_flags of an entry the snapshot found (*st, its flags) may
 * be answered by opening the entry's shadow directory, as the master would: a directory marked
 * listed and readable by everyone, opened read-only with no flag the shadow could answer
 * otherwise (O_NOATIME wants its owner). */
int lcf_snapshot_opens_shadow(const struct lcf_stat *st, uint32_t flags, int open_flags);

/* What the snapshot says of a virtual path (see lcf_snapshot_says). */
#define LCF_SNAPSHOT_UNKNOWN 0 /* nothing: ask the master */
#define LCF_SNAPSHOT_FOUND 1   /* what lstat says of it */
#define LCF_SNAPSHOT_MISSING 2 /* no such entry: its directory is complete, and lacks it */

/* Reader: looks up the virtual path (n bytes, in the snapshot's form: path_text.h): FOUND with
 * what lstat says of it in *st (its LCF_SNAPSHOT_* flags moved to *flags, a symlink's target in
 * target), MISSING when `names_missing` and a directory marked complete lacks its name (not for
 * "/", nor a name longer than NAME_MAX, which is ENAMETOOLONG), else UNKNOWN. An entry of mode 0
 * (only named) or of a mode of no file type is UNKNOWN. */
int lcf_snapshot_says(const struct lcf_snapshot_view *view, const char *path, size_t n,
                      struct lcf_stat *st, uint32_t *flags, char target[LCF_MAX_PATH + 1],
                      int32_t *target_length, int names_missing);

/* Reader: fstat of a model file's memfd, answered from the memfd's record (LCF_SNAPSHOT_DESCRIPTOR
 * in libcfake_wire.h), given the memfd's own fstat in *real (what the program holds). Returns 1
 * with the answer in *out and the file's virtual path in path (*path_length bytes, then a NUL),
 * or 0 when no record is published for it. */
int lcf_snapshot_descriptor(const struct lcf_snapshot_view *view, const struct stat *real,
                            struct lcf_stat *out, char path[LCF_MAX_PATH + 1],
                            int32_t *path_length);

#endif
