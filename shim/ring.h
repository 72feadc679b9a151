/* The note ring (struct lcf_ring in libcfake_wire.h): the shim's appender and the master's taker
 * and checker of one shared memory layout, in one C file both are built from (the master through
 * the cffi module, the shim as one of its sources). Nothing here calls libc wrappers or allocates,
 * so the appender is safe in any thread and in signal handlers. */
#ifndef LIBCFAKE_RING_H
#define LIBCFAKE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "libcfake_wire.h"

/* One piece of a record: a record is written from the pieces of a note message, in order. */
struct lcf_piece {
    const void *bytes;
    size_t length;
};

/* Master: lays out an empty ring in the `bytes` bytes at map. Returns 0, or -1 unless bytes is
 * the header plus a power of two. */
int lcf_ring_init(void *map, uint64_t bytes);

/* Shim: checks a mapped ring of `bytes` bytes as the master laid it out. Returns its data_bytes,
 * or 0 if it is not such a ring. */
uint64_t lcf_ring_check(const void *map, uint64_t bytes);

/* Shim: appends one record made of the n pieces, padded to 8 bytes, at *head (the shim's own
 * count of bytes appended, which it moves). Returns 1, or 0 when the record does not fit now. */
int lcf_ring_append(void *map, uint64_t data_bytes, uint64_t *head, const struct lcf_piece *pieces,
                    int n);

/* Master: the bytes appended since `taken` (the master's count of bytes it took), or -1 if the
 * ring's head is impossible: behind taken, more than data_bytes ahead, or not a whole record. */
int64_t lcf_ring_pending(const void *map, uint64_t data_bytes, uint64_t taken);

/* Master: copies the n bytes after `taken` (n as lcf_ring_pending said) to out and tells the shim
 * they are free. The caller adds n to its count. */
void lcf_ring_take(void *map, uint64_t data_bytes, uint64_t taken, void *out, uint64_t n);

/* Master: checks n bytes of records as the master reads a note: each a whole struct lcf_note of
 * this protocol with a noted function, an absolute path of 1 to LCF_MAX_PATH bytes and, for
 * readlink, a target of at most LCF_MAX_PATH bytes, its length field exact, padded to 8 bytes.
 * Returns how many records there are, or -1 - the index of the first invalid one. */
int64_t lcf_notes_check(const void *records, uint64_t n);

#endif
