/* libcfake wire protocol, version 4: the one definition shared by the shim (C) and the master
 * (Python, which reads this file through cffi). Nothing but the protocol lives here.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET, one message per packet, at most LCF_MAX_MESSAGE bytes. The
 * shim connects to the path in $LIBCFAKE_SOCKET, once per (process, thread, nesting level), and
 * sends a hello; the master answers with a welcome. After that the shim sends calls and the master
 * answers each with exactly one reply, in order. Integers are in host byte order (both ends share
 * one machine). Strings follow the fixed part of a message, in the order its length fields name
 * them, without terminators; a length of -1 means the string is absent (a NULL pointer).
 * Descriptors travel as SCM_RIGHTS on the packet they belong to.
 *
 * A master may also share a metadata snapshot (struct lcf_snapshot, below): a memfd the shim maps
 * read-only and answers stat, lstat, access (F_OK) and readlink of unchanged virtual entries (and
 * fstat of a shadow directory, read-only opens of a listed directory, and ENOENT for a name a
 * complete directory lacks) from, without a round trip; each such call is still told to the
 * master in a note, which has no reply, written to the connection's note ring (struct lcf_ring,
 * below).
 */
#ifndef LIBCFAKE_WIRE_H
#define LIBCFAKE_WIRE_H

#include <stdint.h>

#define LCF_MAGIC 0x3146434c       /* "LCF1" in memory order on little-endian machines */
#define LCF_VERSION 5              /* bumped on any incompatible change */
#define LCF_MAX_MESSAGE 16384      /* no packet is larger */
#define LCF_MAX_FDS 4              /* no packet carries more descriptors */
#define LCF_MAX_PATH 4095          /* longest path (bytes, no terminator), like PATH_MAX - 1 */
#define LCF_SYMBOL_SIZE 24         /* bytes of struct lcf_call.symbol */

/* Bits of struct lcf_call.fds: which descriptors travel with a call, in this order. A directory
 * descriptor travels with any path call (open, stat, access, mkdir, unlink, rename ...) that the
 * program made with a real dirfd and a relative path; the path is then sent as given. */
#define LCF_FD_DIR1 1              /* the directory the first (relative) path is resolved from */
#define LCF_FD_DIR2 2              /* the directory the second (relative) path is resolved from */
#define LCF_FD_SOCKET 4            /* the program's socket, for connect and bind */
#define LCF_FD_FILE 8              /* a descriptor of the master's devices, for fstat & co. */

enum lcf_kind {
    LCF_HELLO = 1,                 /* shim -> master: struct lcf_hello, then the executable path */
    LCF_WELCOME = 2,               /* master -> shim: struct lcf_welcome, then its payload */
    LCF_CALL = 3,                  /* shim -> master: struct lcf_call, then its strings */
    LCF_REPLY = 4,                 /* master -> shim: struct lcf_reply, then its payload */
    LCF_NOTE = 5                   /* struct lcf_note, its path (and readlink's target): a record
                                    * of the note ring, never sent as a message */
};

/* The calls the shim forwards; the names and numbers of Emilua's libc_service.master. */
enum lcf_function {
    LCF_OPEN = 1,                  /* path; flags = O_*; mode when O_CREAT or O_TMPFILE */
    LCF_OPENAT = 2,                /* path (relative to DIR1 if sent); flags; mode; resolve */
    LCF_UNLINK = 3,                /* path */
    LCF_RENAME = 4,                /* path, new path; flags = RENAME_* */
    LCF_STAT = 5,                  /* path */
    LCF_LSTAT = 6,                 /* path */
    LCF_ACCESS = 7,                /* path; flags = F_OK or R_OK|W_OK|X_OK */
    LCF_EACCESS = 8,               /* path; flags as for access, checked with effective ids */
    LCF_MKDIR = 9,                 /* path; mode */
    LCF_RMDIR = 10,                /* path */
    LCF_CONNECT_UNIX = 11,         /* name (a path, or abstract: starts with a NUL byte); SOCKET */
    LCF_CONNECT_INET = 12,         /* address (4 bytes), port; SOCKET */
    LCF_CONNECT_INET6 = 13,        /* address (16 bytes), port, flowinfo, scope_id; SOCKET */
    LCF_BIND_UNIX = 14,            /* as connect_unix */
    LCF_BIND_INET = 15,            /* as connect_inet */
    LCF_BIND_INET6 = 16,           /* as connect_inet6 */
    LCF_GETADDRINFO = 17,          /* node, service (each may be absent); hints in flags, family, socktype, protocol */
    /* Beyond Emilua's list: what real programs need to live in a virtual filesystem. */
    LCF_READLINK = 18,             /* path -> result: bytes of the target, which is the reply's text */
    LCF_SYMLINK = 19,              /* target (first string, as given), link path (second string) */
    LCF_LINK = 20,                 /* path, new path; flags = AT_SYMLINK_FOLLOW */
    LCF_CHDIR = 21,                /* path -> an answer carries a directory descriptor to fchdir() to */
    LCF_GETCWD = 22,               /* the real working directory -> text: the one the program sees */
    LCF_REALPATH = 23,             /* path -> text: its canonical absolute form */
    LCF_CHMOD = 24,                /* path; mode; flags = AT_SYMLINK_NOFOLLOW */
    LCF_CHOWN = 25,                /* path; values = uid, gid (-1 keeps one); flags = AT_SYMLINK_NOFOLLOW */
    LCF_UTIMENS = 26,              /* path; values = atime s, ns, mtime s, ns (ns may be UTIME_NOW/OMIT); flags */
    LCF_TRUNCATE = 27,             /* path; values[0] = the new length */
    LCF_FSTAT = 28,                /* FILE -> a stat reply */
    LCF_FCHMOD = 29,               /* FILE; mode */
    LCF_FCHOWN = 30,               /* FILE; values = uid, gid */
    LCF_FUTIMENS = 31,             /* FILE; values as for utimens */
    LCF_EXEC = 32,                 /* path of the program about to be executed; mode = its st_mode
                                    * (0 if unknown) -> 0 to go ahead, or -1 with errno */
    /* Name resolution beyond getaddrinfo. */
    LCF_GETNAMEINFO = 33,          /* address, port, family; flags = NI_* -> text: the host name
                                    * (result 0), or result an EAI_* code */
    LCF_RES_QUERY = 34,            /* name; mode = class, flags = type -> result: bytes of the DNS
                                    * answer (wire format), which is the reply's text; or -1 with
                                    * error = the resolver's h_errno (HOST_NOT_FOUND, TRY_AGAIN...) */
    /* Changes the shim must never make to a host file itself. */
    LCF_MKNOD = 35,                /* path; mode = the file type (S_IF*) and permissions;
                                    * values[0] = the device number */
    LCF_SETXATTR = 36,             /* path, attribute name; mode = XATTR_CREATE/REPLACE;
                                    * flags = AT_SYMLINK_NOFOLLOW (lsetxattr) */
    LCF_REMOVEXATTR = 37,          /* path, attribute name; flags = AT_SYMLINK_NOFOLLOW */
    LCF_FSETXATTR = 38,            /* FILE; attribute name (second string); mode as for setxattr */
    LCF_FREMOVEXATTR = 39,         /* FILE; attribute name (second string) */
    LCF_FSIOCTL = 40,              /* FILE; values[0] = an ioctl request that changes the file's
                                    * attributes (FS_IOC_SETFLAGS ...), values[1] = the int it sets */
    LCF_OPEN_BY_HANDLE = 41,       /* FILE (the mount_fd); flags = O_* -> -1 with errno (a file
                                    * handle names any file of a filesystem: no path to decide
                                    * on), or passthrough */
    LCF_MOUNT = 42                 /* mount, umount, umount2, chroot (the symbol says which): the
                                    * target path; mount's source (second string, as given);
                                    * flags = mount's or umount2's flags -> -1 with errno, or
                                    * passthrough */
};

/* What the master tells the shim to do with a call. */
enum lcf_action {
    LCF_ANSWER = 1,                /* return struct lcf_reply.result (and the payload) to the program */
    LCF_PASSTHROUGH = 2            /* perform the real call in the program (use_slave_credentials) */
};

struct lcf_header {                /* starts every message */
    uint32_t magic;                /* LCF_MAGIC */
    uint16_t version;              /* LCF_VERSION */
    uint16_t kind;                 /* enum lcf_kind */
    uint32_t length;               /* bytes of the whole message, this header included */
    uint32_t seq;                  /* chosen by the shim per call; a reply echoes its call's */
};

struct lcf_hello {                 /* first message on a connection */
    struct lcf_header header;
    int32_t pid;                   /* getpid() of the caller */
    int32_t ppid;                  /* getppid() */
    int32_t tid;                   /* gettid() */
    uint32_t uid;                  /* real user id */
    uint32_t gid;                  /* real group id */
    uint32_t euid;                 /* effective user id */
    uint32_t egid;                 /* effective group id */
    int32_t level;                 /* 0, or how deep in nested calls (a signal handler's call) */
    int32_t exe_length;            /* bytes of the executable's path that follow */
};

struct lcf_welcome {               /* the master's answer to a hello */
    struct lcf_header header;
    int32_t status;                /* 0: accepted; else an errno, and the payload is a message */
    uint32_t timeout_ms;           /* how long the shim waits for each reply before failing the call */
    uint32_t passthrough_count;    /* number of NUL-terminated path prefixes in the payload */
    int32_t payload_length;        /* bytes that follow: the prefixes, or the refusal message */
    uint64_t devices[2];           /* st_dev of the descriptors the master hands out (its files, its
                                    * directories): fstat & co. on those are forwarded; 0: unused */
    uint64_t snapshot_bytes;       /* size of the snapshot memfd that comes with the welcome as
                                    * SCM_RIGHTS (0: no snapshot, no descriptor) */
    uint64_t ring_bytes;           /* size of this connection's note ring memfd, which comes after
                                    * the snapshot's descriptor (0: no ring, no descriptor) */
};

/* Passthrough prefixes: read-only calls (open without write, create or truncate; stat; lstat;
 * access without W_OK) on an absolute path under one of them, with no "." or ".." component, are
 * performed by the shim without a round trip. A prefix matches whole components only. */

struct lcf_call {                  /* one forwarded libc call */
    struct lcf_header header;
    uint32_t function;             /* enum lcf_function */
    char symbol[LCF_SYMBOL_SIZE];  /* the libc entry point the program called, NUL-padded */
    int32_t flags;                 /* open: O_*; access: amode; rename: RENAME_*; getaddrinfo: ai_flags */
    uint32_t mode;                 /* open, mkdir: the mode argument */
    uint32_t reserved1;            /* zero; keeps resolve 8-byte aligned without hidden padding */
    uint64_t resolve;              /* openat2-style RESOLVE_* bits for openat (0 from plain openat) */
    uint32_t fds;                  /* LCF_FD_* bits: the descriptors sent with this call */
    int32_t family;                /* getaddrinfo: ai_family hint; connect/bind: the socket's domain */
    int32_t socktype;              /* getaddrinfo: ai_socktype hint; connect/bind: the socket's type */
    int32_t protocol;              /* getaddrinfo: ai_protocol hint; connect/bind: the socket's protocol */
    uint32_t port;                 /* connect/bind inet, inet6: the port */
    uint32_t flowinfo;             /* connect/bind inet6: sin6_flowinfo */
    uint32_t scope_id;             /* connect/bind inet6: sin6_scope_id */
    uint8_t address[16];           /* connect/bind inet: 4 bytes used; inet6: all 16 */
    int32_t length1;               /* bytes of the first string: path, unix name or node; -1 absent */
    int32_t length2;               /* bytes of the second string: new path or service; -1 absent */
    uint32_t reserved2;            /* zero */
    int64_t values[4];             /* chown: uid, gid; truncate: length; utimens: atime s, ns, mtime s, ns */
};

struct lcf_reply {                 /* the answer to one call */
    struct lcf_header header;
    uint32_t action;               /* enum lcf_action */
    int32_t result;                /* the return value: 0, a count, -1; getaddrinfo: 0 or an EAI_* code */
    int32_t error;                 /* errno when the call fails (for getaddrinfo EAI_SYSTEM too) */
    uint32_t count;                /* stat: 1 struct lcf_stat follows; getaddrinfo: count struct lcf_address */
    int32_t text_length;           /* bytes of text after the entries, -1 none: getaddrinfo's canonical
                                    * name; readlink's target; getcwd's and realpath's path */
    uint32_t reserved;             /* zero; the payload starts 8-byte aligned */
};

struct lcf_stat {                  /* the payload of a successful stat or lstat reply */
    uint64_t dev;                  /* device id */
    uint64_t ino;                  /* inode number */
    uint64_t nlink;                /* number of hard links */
    uint32_t mode;                 /* type (S_IF*) and permission bits */
    uint32_t uid;                  /* owner */
    uint32_t gid;                  /* group */
    uint32_t reserved;             /* zero; in a snapshot slot, LCF_SNAPSHOT_* flags */
    uint64_t rdev;                 /* device id of a special file */
    int64_t size;                  /* bytes */
    int64_t blksize;               /* preferred I/O block size */
    int64_t blocks;                /* 512-byte blocks allocated */
    int64_t atime_sec;             /* last access, seconds since the epoch */
    int64_t atime_nsec;            /* and nanoseconds */
    int64_t mtime_sec;             /* last modification */
    int64_t mtime_nsec;
    int64_t ctime_sec;             /* last status change */
    int64_t ctime_nsec;
};

struct lcf_note {                  /* a call the shim answered from the snapshot, for the journal */
    struct lcf_header header;      /* kind LCF_NOTE; seq as for a call */
    uint32_t function;             /* LCF_STAT, LCF_LSTAT, LCF_FSTAT (of a shadow directory),
                                    * LCF_ACCESS, LCF_EACCESS, LCF_READLINK, or LCF_OPEN and
                                    * LCF_OPENAT of a listed directory */
    char symbol[LCF_SYMBOL_SIZE];  /* the libc entry point the program called, NUL-padded */
    int32_t flags;                 /* access: amode; open: its flags */
    int32_t result;                /* what the program got: 0, or -1 with error; readlink: bytes of
                                    * the target, which follow the path */
    uint32_t mode;                 /* the answered entry's st_mode */
    int64_t size;                  /* and st_size */
    int32_t length;                /* bytes of the virtual path that follow */
    int32_t error;                 /* when result is -1: ENOENT (a name a complete directory lacks);
                                    * else 0 */
};

struct lcf_address {               /* one entry of a successful getaddrinfo reply */
    int32_t family;                /* AF_INET or AF_INET6 */
    int32_t socktype;              /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW */
    int32_t protocol;              /* IPPROTO_TCP, IPPROTO_UDP, 0 */
    uint32_t port;                 /* the port, 0 when no service was resolved */
    uint32_t flowinfo;             /* inet6: sin6_flowinfo */
    uint32_t scope_id;             /* inet6: sin6_scope_id */
    uint8_t address[16];           /* inet: 4 bytes used; inet6: all 16 */
};

/* The metadata snapshot: one memfd per master, shared with every program it serves, filled by the
 * master only. It maps virtual absolute paths (no "." or ".." components, no repeated or trailing
 * slashes) to what lstat says of them, and symlinks to their targets. The master publishes an
 * entry only while it is exact: every change to the filesystem empties the snapshot first, and
 * entries under fault rules, host mounts, files a program may write (their memfd's size and
 * times change unseen), or directories not searchable by everyone are never published. An absent
 * entry says nothing: the call goes to the master as usual; neither does an entry of mode 0,
 * which only names a file the master answers for (one a program may write, or whose values a
 * stat answer cannot carry).
 *
 * A directory's entry may also carry flags (in stat.reserved). LCF_SNAPSHOT_LISTED: its shadow
 * directory (root followed by its path) lists exactly its entries, so a program that opens it
 * read-only may open the shadow itself, as the master would have, when the directory is readable
 * by everyone. LCF_SNAPSHOT_COMPLETE: every one of its entries is published, so a name it lacks
 * does not exist (ENOENT, for the calls answered from the snapshot and for an open that creates
 * nothing).
 *
 * Layout: struct lcf_snapshot at offset 0; slot_count struct lcf_snapshot_slot at slots_offset
 * (an open-addressing hash table, linear probing on lcf_path_hash); path and target bytes in
 * the pool at pool_offset. Emptying is one increment of epoch: a slot counts only when its epoch
 * equals the header's. A reader copies a slot, then checks that the header's epoch has not moved
 * (a seqlock): the master writes a slot's fields first and its epoch last. */
#define LCF_SNAPSHOT_MAGIC 0x3150534c /* "LSP1" in memory order on little-endian machines */
#define LCF_SNAPSHOT_LISTED 1         /* a directory whose shadow lists exactly its entries */
#define LCF_SNAPSHOT_COMPLETE 2       /* a directory all of whose entries are published */

struct lcf_snapshot {
    uint32_t magic;                /* LCF_SNAPSHOT_MAGIC */
    uint32_t slot_count;           /* a power of two */
    uint64_t epoch;                /* slots of other epochs are empty */
    uint64_t slots_offset;         /* bytes from the start of the memfd */
    uint64_t pool_offset;
    uint64_t pool_bytes;
    uint64_t pool_used;            /* the master's: bytes of the pool used in this epoch */
    uint32_t live;                 /* the master's: slots filled in this epoch */
    uint32_t root_length;          /* bytes of root */
    char root[LCF_MAX_PATH + 1];   /* the real directory that stands for "/" in the master's shadow
                                    * tree: a path under it names the virtual path after it */
};

struct lcf_snapshot_slot {
    uint64_t epoch;                /* the epoch this slot was filled in, written last */
    uint64_t hash;                 /* lcf_path_hash of the path */
    uint64_t path_offset;          /* in the pool */
    uint32_t path_length;
    int32_t target_length;         /* a symlink's target (at target_offset in the pool); else -1 */
    uint64_t target_offset;
    struct lcf_stat stat;          /* what lstat says; reserved holds LCF_SNAPSHOT_* flags */
};

/* The note ring: one memfd per connection, sent with its welcome and mapped read-write by both ends.
 * The shim appends each note here instead of sending it; the master takes what was appended
 * before it reads the connection's next message, when the connection ends and when its journal is
 * read. So a note keeps its place among the connection's calls and costs a copy, not a message. A
 * call whose note does not fit now is not answered from the snapshot: it makes its round trip,
 * before which the master takes the ring (a note sent as a message instead would be read after
 * notes appended behind it once the master made room).
 *
 * Layout: struct lcf_ring at offset 0, then data_bytes bytes of records (a power of two). head and
 * tail count bytes since the start and only grow; byte i is at data[i % data_bytes], so a record
 * may wrap around. A record is a note message (struct lcf_note, its path and target) padded with
 * zeros to a multiple of 8 bytes. The shim writes a record, then head (release); the master
 * copies records out, then writes tail (release). The master trusts nothing in the ring: it keeps
 * its own count of the bytes it took and its own data_bytes, and a head behind that count or
 * more than data_bytes ahead, or a record that is not a valid note, closes the connection. */
#define LCF_RING_MAGIC 0x3152434c  /* "LCR1" in memory order on little-endian machines */

struct lcf_ring {
    uint32_t magic;                /* LCF_RING_MAGIC */
    uint32_t data_bytes;           /* bytes of records after this header: a power of two */
    uint64_t head;                 /* the shim's: bytes appended */
    uint64_t tail;                 /* the master's: bytes taken */
    uint64_t reserved[5];          /* zero; the records start on a cache line of their own */
};

#endif
