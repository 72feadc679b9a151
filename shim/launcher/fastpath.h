/* fastpath.h — the supervisor's fast path, on the master's side (compiled into libcfake._wire).
 *
 * Under the hybrid backend, a dynamic program's loader (before the shim is loaded) and libc's
 * internal I/O (locale files, NSS's files backend, gconv) make their calls with no shim in the
 * way: each traps to the master. Almost all are reads of the host's files under the read-only
 * mounts, which the shim would have passed through itself (shim/passthrough.c): a Python round
 * trip for each cost a dynamic program's start 50 to 100 traps of 200 µs. lcf_fast_serve waits
 * for the trapped calls of one listener without the GIL and answers those itself, by the shim's
 * passthrough rule, unjournaled as the shim's passthrough is; every other call goes back to
 * Python (the supervisor's adapter) unanswered.
 *
 * The rule (shim/passthrough.c says the same for the shim's side):
 *   - the call only reads: open/openat without O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_TMPFILE or
 *     O_PATH; stat, lstat, newfstatat, statx; access, faccessat, faccessat2; readlink,
 *     readlinkat; of an absolute path with no "." or ".." component;
 *   - the path's text lies under a passthrough prefix (a mount), and so does where the kernel
 *     really goes (its symlinks followed as the call follows them): the master opens the path
 *     O_PATH and reads its descriptor's /proc/self/fd link. A path that does not exist is the
 *     mount's when its longest existing ancestor lies under a prefix (both ways) and holds no
 *     entry of the next component's name;
 *   - it is no file of the master's own (a memfd or shadow directory: `devices`);
 *   - the caller has the master's ids. A tree starts with them unless lcf_fast_init was told
 *     otherwise; once any of its threads changes ids (set*id and setgroups trap), each caller's
 *     /proc/<tid>/status is read and compared before its call is answered here.
 * Besides: a stat of one of the program's own descriptors (glibc's fstat, made inside libc by
 * the loader, opendir and stdio) is answered from the master's look at it, or for a shadow
 * directory (the master's stand-in for a model directory) or a model file's memfd from the
 * metadata snapshot; and stat, lstat, statx and access(F_OK) of an absolute model path (a
 * static program's: the shim answers a dynamic one's) from the snapshot, as the shim does
 * (snapshot_answers.c). What it answers from the snapshot of the model's files is journaled:
 * lcf_fast_serve returns it.
 * The master makes the call itself on the descriptor it checked (never the program's path read
 * again: a racing thread cannot redirect it) and answers: a regular file's or directory's
 * descriptor injected (SECCOMP_ADDFD_FLAG_SEND), a stat written into the program's memory, a
 * link's text, 0, or the errno. Anything unusual (a FIFO, EACCES on the way, a relative path,
 * a flag it does not know) goes to Python, which decides with the whole pipeline. */
#ifndef LIBCFAKE_FASTPATH_H
#define LIBCFAKE_FASTPATH_H

#include <stdint.h>

#include "../snapshot.h"

#define LCF_FAST_PREFIXES 64   /* prefixes kept, as named and where each really is */
#define LCF_FAST_BYTES 16384   /* bytes of their text */
#define LCF_FAST_DEVICES 4     /* the master's own file devices */
#define LCF_FAST_GROUPS 64     /* the master's supplementary groups */

/* What lcf_fast_serve returns (or -errno). */
#define LCF_FAST_NOTE 1    /* a trapped call left to Python, in *note */
#define LCF_FAST_WAKEUP 2  /* the wakeup descriptor is readable */
#define LCF_FAST_EXITED 3  /* the process descriptor is readable: that process exited */
#define LCF_FAST_HANGUP 4  /* the listener hung up: every process of the tree is gone */
#define LCF_FAST_TIMEOUT 5 /* timeout_ms passed */
#define LCF_FAST_ANSWERED 6 /* a call answered from the model's snapshot: in fast->journal */

/* struct seccomp_notif, as the kernel writes it. */
struct lcf_fast_note {
    uint64_t id;
    uint32_t pid;
    uint32_t flags;
    int32_t nr;
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t args[6];
};

/* A call the fast path answered from the model's snapshot, for the master's journal, as the
 * shim's note tells it (struct lcf_note): a stat of a model file's descriptor (glibc's fstat
 * inside libc), or a stat-like call of a model path (a static program's). */
struct lcf_fast_answer {
    uint32_t pid;                           /* the calling thread */
    int32_t nr;                             /* its system call */
    int32_t function;                       /* enum lcf_function: LCF_FSTAT, LCF_STAT... */
    int32_t flags;                          /* access: the amode */
    int32_t result;                         /* 0, or -1 with error (ENOENT) */
    int32_t error;
    uint32_t mode;                          /* what it got: st_mode and st_size */
    int64_t size;
    int32_t path_length;                    /* bytes of the virtual path */
    char path[LCF_MAX_PATH + 1];
    uint64_t id;                            /* the call, answered by lcf_fast_finish: */
    int32_t fd;                             /* a descriptor to place in the program (-1: none; */
    uint32_t fd_flags;                      /* then the reply is 0, or -1 with error) */
};

/* One listener's fast path: filled by lcf_fast_init, used by one thread at a time. */
struct lcf_fast {
    char bytes[LCF_FAST_BYTES];             /* the prefixes, then where each really is */
    uint16_t start[2 * LCF_FAST_PREFIXES];
    uint16_t len[2 * LCF_FAST_PREFIXES];
    uint32_t count;                         /* prefixes as named: the first `count` */
    uint32_t real_count;                    /* where they really are: the next `real_count` */
    uint64_t devices[LCF_FAST_DEVICES];
    uint32_t device_count;
    uint32_t uid, gid;                      /* the master's (real, effective, saved, fs alike) */
    uint32_t groups[LCF_FAST_GROUPS];
    uint32_t group_count;
    struct lcf_snapshot_view snapshot;      /* the model's published metadata */
    int has_snapshot;
    int enabled;                            /* 0: every call goes to Python */
    int mixed_ids;                          /* a thread of the tree may have other ids */
    struct lcf_fast_answer journal;         /* the last call answered from the snapshot */
    uint64_t answered;                      /* calls answered here */
    uint64_t passed_on;                     /* calls left to Python */
};

/* Fills *fast: `prefixes` holds `count` NUL-terminated absolute paths (the mounts); `devices`
 * the st_dev of the master's own files; `root` the tree's first process (0: unknown), whose ids
 * are read once: if they are the master's, so are every later process's until one changes them;
 * `snapshot` the master's mapping of the metadata snapshot (NULL: none), from which a stat of a
 * shadow directory's descriptor (opendir's, inside libc) is answered when its virtual directory
 * is published there. Returns 0, or -1 when the fast path cannot be used (the master's own ids
 * differ from each other, the table does not fit): every call then goes to Python. */
int lcf_fast_init(struct lcf_fast *fast, const char *prefixes, uint32_t count,
                  const uint64_t *devices, uint32_t device_count, uint32_t root,
                  const void *snapshot, uint64_t snapshot_bytes);

/* Waits (poll) on the listener, `wakeup` and `pidfd` (-1: none) for up to timeout_ms (-1:
 * forever), answering the calls the fast path covers, until one is left to Python, one has an
 * answer of the model's that the journal must see first (LCF_FAST_ANSWERED: in fast->journal,
 * given to the program by lcf_fast_finish), or another descriptor is readable. Returns one of
 * LCF_FAST_*, or -errno. */
int lcf_fast_serve(struct lcf_fast *fast, int listener, int wakeup, int pidfd, int timeout_ms,
                   struct lcf_fast_note *note);

/* Gives the program the answer fast->journal holds (after the master journaled it): 0, or -1
 * when it could not (the caller is gone). Nothing when none is held. */
int lcf_fast_finish(struct lcf_fast *fast, int listener);

#endif
