/* passthrough.h — the passthrough table and the master's devices (passthrough.c), as the first
 * welcome of the process brought them: which read-only calls a program makes itself (paths under
 * the host's read-only mounts, where the kernel's resolution stays under them too) and which
 * descriptors are the master's. Nothing here connects to the master: before a welcome, every
 * predicate says no (the call is forwarded; the master decides). */
#ifndef LIBCFAKE_PASSTHROUGH_H
#define LIBCFAKE_PASSTHROUGH_H

#include "errline.h"
#include "path_text.h"

#define LCF_TABLE_PREFIXES 64       /* the passthrough table holds at most this many prefixes */
#define LCF_TABLE_BYTES 4096        /* and at most this many bytes */

/* Checks a welcome's table: `count` NUL-terminated absolute paths filling exactly `size` bytes.
 * Stores it, the devices and the snapshot (snapshot_fd, or -1: snapshot_map) if no table is
 * stored yet. Returns 0, or -1 with the reason in l. */
int table_load(const char *bytes, size_t size, uint32_t count, const uint64_t devices[2],
               int snapshot_fd, uint64_t snapshot_bytes, struct line *l);

/* Whether a welcome's table (and devices, and snapshot) is stored. */
bool table_ready(void);

/* The one passthrough decision of a call: whether req may be done locally, by the program
 * itself. Its path must lie under a prefix as written (a read-only call, an absolute path without
 * "." or ".." components) and where the kernel's resolution leads (see resolves_under_table in
 * passthrough.c). errno is left as it was. */
enum passthrough_verdict {
    PASSTHROUGH_NO_TABLE,          /* no welcome yet: decide once it came (forwarded until then) */
    PASSTHROUGH_LOCAL,             /* the program makes the real call */
    PASSTHROUGH_FORWARD,           /* the master answers (or says to pass it through) */
};
enum passthrough_verdict passthrough_decide(const struct lcf_request *req);

/* Whether a read-only call on the absolute path (n bytes, NUL-terminated) is LOCAL. */
bool passthrough_path(const char *path, size_t n);

/* Whether dev is one of the welcome's devices (of the master's files); false before a welcome. */
bool table_master_dev(uint64_t dev);

/* Whether a read-only call on the path may be done locally as far as its text goes (the table
 * must be ready). */
bool passes_through(const struct lcf_request *req);

/* The path the kernel gives an open descriptor (readlink of /proc/self/fd/N) into buf
 * (LCF_MAX_PATH + 1 bytes, NUL-terminated). Returns its length, or -1 (no /proc, too long, or
 * not a path: a pipe, a socket). */
ssize_t lcf_fd_path(int fd, char *buf);

/* The table as stored, for the reply fuzzer's checks. */
struct table_view {
    const char *bytes;
    const uint16_t *start;
    const uint16_t *len;
    uint32_t count;
};
void table_inspect(struct table_view *view);

/* For the reply fuzzer only: forgets the stored table, so that the next table_load stores its
 * own. (A process keeps its first table for good.) */
void table_forget(void);

#endif
