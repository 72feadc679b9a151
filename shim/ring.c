/* The note ring's appender (the shim's) and taker and checker (the master's, through cffi).
 * See struct lcf_ring in libcfake_wire.h for the layout and the rules. */
#include "ring.h"

#include "calls.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static unsigned char *data_of(void *map)
{
    return (unsigned char *)map + sizeof(struct lcf_ring);
}

static uint64_t padded(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

int lcf_ring_init(void *map, uint64_t bytes)
{
    uint64_t data = bytes - sizeof(struct lcf_ring);
    if (bytes <= sizeof(struct lcf_ring) || data > UINT32_MAX || (data & (data - 1)) != 0)
        return -1;
    struct lcf_ring *r = map;
    memset(r, 0, sizeof *r);
    r->data_bytes = (uint32_t)data;
    __atomic_store_n(&r->magic, LCF_RING_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

uint64_t lcf_ring_check(const void *map, uint64_t bytes)
{
    const struct lcf_ring *r = map;
    uint64_t data = r->data_bytes;
    if (bytes <= sizeof *r || __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != LCF_RING_MAGIC ||
        data != bytes - sizeof *r || data == 0 || (data & (data - 1)) != 0)
        return 0;
    return data;
}

/* Copies n bytes (zeros when from is NULL) into the ring's data at byte `at`, wrapping around. */
static void put(unsigned char *data, uint64_t data_bytes, uint64_t at, const void *from, size_t n)
{
    size_t offset = (size_t)(at & (data_bytes - 1));
    size_t first = n < data_bytes - offset ? n : (size_t)(data_bytes - offset);
    if (from == NULL) {
        memset(data + offset, 0, first);
        memset(data, 0, n - first);
    } else {
        memcpy(data + offset, from, first);
        memcpy(data, (const unsigned char *)from + first, n - first);
    }
}

int lcf_ring_append(void *map, uint64_t data_bytes, uint64_t *head, const struct lcf_piece *pieces,
                    int n)
{
    struct lcf_ring *r = map;
    uint64_t size = 0;
    for (int i = 0; i < n; i++)
        size += pieces[i].length;
    uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    uint64_t used = *head - tail;
    if (used > data_bytes || padded(size) > data_bytes - used)
        return 0; /* full (or a tail the master never wrote: then never) */
    uint64_t at = *head;
    for (int i = 0; i < n; i++) {
        put(data_of(map), data_bytes, at, pieces[i].bytes, pieces[i].length);
        at += pieces[i].length;
    }
    put(data_of(map), data_bytes, at, NULL, (size_t)(padded(size) - size));
    *head += padded(size);
    __atomic_store_n(&r->head, *head, __ATOMIC_RELEASE);
    return 1;
}

int64_t lcf_ring_pending(const void *map, uint64_t data_bytes, uint64_t taken)
{
    const struct lcf_ring *r = map;
    uint64_t n = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) - taken;
    if (n > data_bytes || (n & 7) != 0)
        return -1;
    return (int64_t)n;
}

void lcf_ring_take(void *map, uint64_t data_bytes, uint64_t taken, void *out, uint64_t n)
{
    const unsigned char *data = data_of(map);
    size_t offset = (size_t)(taken & (data_bytes - 1));
    size_t first = n < data_bytes - offset ? (size_t)n : (size_t)(data_bytes - offset);
    memcpy(out, data + offset, first);
    memcpy((unsigned char *)out + first, data, (size_t)n - first);
    __atomic_store_n(&((struct lcf_ring *)map)->tail, taken + n, __ATOMIC_RELEASE);
}


int64_t lcf_notes_check(const void *records, uint64_t n)
{
    const unsigned char *bytes = records;
    int64_t count = 0;
    for (uint64_t at = 0; at < n; count++) {
        struct lcf_note note;
        if (n - at < sizeof note)
            return -1 - count;
        memcpy(&note, bytes + at, sizeof note);
        bool readlink = note.function == LCF_READLINK;
        int32_t text = readlink && note.result > 0 ? note.result : 0;
        bool failed = note.result == -1; /* only ever with ENOENT, or getxattr's ENODATA */
        int32_t error = failed && note.function == LCF_GETXATTR && note.error == ENODATA ? ENODATA
                        : failed                                                        ? ENOENT
                                                                                        : 0;
        if (note.header.magic != LCF_MAGIC || note.header.version != LCF_VERSION ||
            note.header.kind != LCF_NOTE || !lcf_noted(note.function) || note.length <= 0 ||
            note.result < -1 || (note.result > 0 && !readlink) ||
            note.error != error ||
            note.length > LCF_MAX_PATH || text < 0 || text > LCF_MAX_PATH ||
            note.header.length != sizeof note + (uint64_t)note.length + (uint64_t)text ||
            padded(note.header.length) > n - at || bytes[at + sizeof note] != '/')
            return -1 - count;
        at += padded(note.header.length);
    }
    return count;
}
