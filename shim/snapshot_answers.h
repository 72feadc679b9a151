/* snapshot_answers.h — calls answered in the shim from the master's metadata snapshot
 * (snapshot_answers.c; the layout is snapshot.h's): stats, access(F_OK), readlink and opens of
 * listed directories, and ENOENT for names a complete directory lacks, each told to the master
 * in a note on the connection's ring. */
#ifndef LIBCFAKE_SNAPSHOT_ANSWERS_H
#define LIBCFAKE_SNAPSHOT_ANSWERS_H

#include "connection.h"
#include "errline.h"

/* Maps the snapshot memfd (bytes long) read-only and checks its layout (the first welcome's,
 * through table_load). Returns 0, or -1 with the reason in l. */
int snapshot_map(int fd, uint64_t bytes, struct line *l);

/* Answers stat, lstat, access(F_OK) and readlink of a published entry, fstat of a listed
 * directory, and opening one, as the master would, and these calls and access(any mode) with
 * ENOENT for a name missing from a complete directory: fills *reply and the payload (or *fd),
 * tells the master in a note on c's ring, and returns true. False: ask the master (not
 * published, a symlink to follow, or no snapshot). errno is left as it was. */
bool snapshot_answer(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                     int *fd, void *payload, size_t payload_size);

/* For listings of shadow directories (listing.c), without a note: the virtual path of the
 * directory descriptor fd into out, and its length; -1 when it is no shadow directory, or there
 * is no snapshot to say where the shadow tree is. errno is left as it was. */
ssize_t snapshot_directory(int fd, char out[LCF_MAX_PATH + 1]);

/* The inode number the snapshot holds for path (n bytes, in the snapshot's form): a published
 * entry's st_ino, or that of a file it only names (its inode number is known even when its
 * size and times are not); 0 when it holds none. */
uint64_t snapshot_inode(const char *path, size_t n);

#endif
