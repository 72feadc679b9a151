/* libcfake wire protocol: the one definition shared by the shim (C) and the master (Python,
 * which reads this file through cffi). Nothing but the protocol lives here.
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
 * fstat of a shadow directory, read-only opens of a listed directory, ENOENT for a name a
 * complete directory lacks, and ENODATA for getxattr of a POSIX ACL or a security. name, which
 * the model keeps none of: ls -l asks both of every file) from, without a round trip; each such call is still told to the
 * master in a note, which has no reply, written to the connection's note ring (struct lcf_ring,
 * below).
 */
#ifndef LIBCFAKE_WIRE_H
#define LIBCFAKE_WIRE_H

#include <stdint.h>

#define LCF_MAGIC 0x3146434c       /* "LCF1" in memory order on little-endian machines */
#define LCF_VERSION 12             /* bumped on any incompatible change */
#define LCF_MAX_MESSAGE 16384      /* no packet is larger */
#define LCF_MAX_FDS 4              /* no packet carries more descriptors */
#define LCF_MAX_PATH 4095          /* longest path (bytes, no terminator), like PATH_MAX - 1 */
#define LCF_SYMBOL_SIZE 24         /* bytes of struct lcf_call.symbol */
#define LCF_MAX_BYTES 16320        /* most bytes a BYTES reply carries (a packet's room after
                                    * struct lcf_reply, rounded down) */
#define LCF_MAX_XATTR_VALUE 3839   /* largest attribute value setxattr carries: the name
                                    * (<= 255 bytes), a NUL and the value in one string */
#define LCF_UMASK_KNOWN 0x10000    /* in struct lcf_hello.umask and lcf_call.umask: the low 9 bits
                                    * are the program's umask; without it (0) the shim could not
                                    * tell, and the master reads it from /proc itself */

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

/* The calls the shim forwards: the one table of them, which both ends read. Each row is
 *   X(NAME, number, name, family, subject, reply, effect, noted)
 * NAME gives LCF_NAME (enum lcf_function); number is its value on the wire; name is the seed's
 * name of the call (the first 17 are Emilua's libc_service.master's, with its numbers);
 * family, subject, reply and effect name an LCF_FAMILY_*, LCF_SUBJECT_*, LCF_REPLY_* and
 * LCF_EFFECT_* below; noted is 1 when the shim may answer the call from the metadata snapshot
 * (and then tells the master in a note). The shim's reply checks (shim/calls.h, replies.c) and
 * the master's vocabulary (libcfake/protocol.py: Function) are made from this table; adding a
 * call is a row here, a wrapper in the shim and an answer in the master.
 *
 * What each call carries (strings in order; flags, mode, values: struct lcf_call's fields):
 *   open, openat       path (openat: relative to DIR1 if sent); flags = O_*; mode with O_CREAT
 *                      or O_TMPFILE; openat: resolve = RESOLVE_* -> a descriptor
 *   unlink, rmdir, stat, lstat, readlink, realpath, chdir   path
 *   rename, link       path, new path; flags = RENAME_* (link: AT_SYMLINK_FOLLOW)
 *   access, eaccess    path; flags = F_OK or R_OK|W_OK|X_OK (eaccess: the effective ids')
 *   mkdir              path; mode
 *   connect_*, bind_*  unix: the name (a path, or abstract: starts with a NUL byte); inet:
 *                      address (4 bytes), port; inet6: address (16 bytes), port, flowinfo,
 *                      scope_id; SOCKET; family, socktype, protocol: the socket's. A
 *                      sendto/sendmsg/sendmmsg with a destination comes as connect (symbol says)
 *   getaddrinfo        node, service (each may be absent); hints in flags, family, socktype,
 *                      protocol -> addresses, or an EAI_* code
 *   readlink           -> result: bytes of the target, which is the reply's text
 *   symlink            target (first string, as given), link path (second string)
 *   chdir              -> a directory descriptor to fchdir() to
 *   getcwd             the real working directory -> text: the one the program sees
 *   realpath           -> text: its canonical absolute form
 *   chmod, fchmod      mode; chmod: flags = AT_SYMLINK_NOFOLLOW
 *   chown, fchown      values = uid, gid (-1 keeps one); chown: flags = AT_SYMLINK_NOFOLLOW
 *   utimens, futimens  values = atime s, ns, mtime s, ns (ns may be UTIME_NOW/OMIT); flags
 *   truncate           values[0] = the new length
 *   fstat, f*          FILE: a descriptor of the master's devices
 *   exec               path of the program about to be executed; mode = its st_mode (0 if
 *                      unknown) -> 0 to go ahead; or 0 and a descriptor of the file to run
 *                      instead (a program of the model, which the shim runs with
 *                      execveat(fd, "", AT_EMPTY_PATH), a script's "#!" line read from it);
 *                      or -1 with errno
 *   getnameinfo        address, port, family; flags = NI_* -> text: the host name (result 0),
 *                      or result an EAI_* code
 *   res_query          name; mode = class, flags = type -> result: bytes of the DNS answer
 *                      (wire format), which is the reply's text; or -1 with error = the
 *                      resolver's h_errno (HOST_NOT_FOUND, TRY_AGAIN...)
 *   mknod              path; mode = the file type (S_IF*) and permissions; values[0] = device
 *   setxattr           path, then the attribute name, a NUL and the value as one string
 *                      when the value is at most LCF_MAX_XATTR_VALUE bytes (else the name
 *                      alone: the master refuses it); values[0] = the value's size; mode =
 *                      XATTR_CREATE/REPLACE; flags = AT_SYMLINK_NOFOLLOW (lsetxattr)
 *   removexattr        path, attribute name; flags = AT_SYMLINK_NOFOLLOW (lremovexattr)
 *   fsetxattr, fremovexattr   FILE; the second string and the rest as for setxattr, removexattr
 *   getxattr           path, attribute name; flags = AT_SYMLINK_NOFOLLOW (lgetxattr);
 *                      values[0] = the size of the program's buffer -> result: the value's
 *                      length, with the value as the reply's bytes (size 0: the length alone)
 *   listxattr          path; flags and values[0] as for getxattr -> the names, each ending
 *                      in a NUL, as the reply's bytes
 *   fgetxattr, flistxattr   FILE; the rest as for getxattr, listxattr
 *   fsioctl            FILE; values[0] = an ioctl request that changes the file's attributes
 *                      (FS_IOC_SETFLAGS ...), values[1] = the int it sets
 *   open_by_handle_at  FILE (the mount_fd); flags = O_* -> -1 with errno (a file handle names
 *                      any file of a filesystem: no path to decide on), or passthrough
 *   mount              mount, umount, umount2, chroot (the symbol says which): the target
 *                      path; mount's source (second string, as given); flags = mount's or
 *                      umount2's flags -> -1 with errno, or passthrough
 *   statfs, fstatfs    path (statfs, statvfs); FILE (fstatfs, fstatvfs) -> a struct lcf_statfs
 *   read, write        FILE: a watched descriptor (LCF_WATCH_* below); values[0] = the offset
 *                      (pread, pwrite...) or -1 (at the descriptor's position), values[1] = the
 *                      bytes asked for -> a count: the program's call is made with at most that
 *                      many bytes (a short write, as a disk nearly full gives), or -1 with errno,
 *                      or passthrough (the whole call). The symbol says which entry point
 *   fsync, fdatasync   FILE, watched -> -1 with errno (the call is not made), or passthrough
 *   ftruncate          FILE, watched; values[0] = the new length -> -1 with errno, or passthrough
 *   close              FILE, watched for close -> passthrough, or -1 with errno: the descriptor
 *                      is closed all the same, and the program sees the error (as with EIO)
 *   readdir            DIR1: a shadow directory the program lists; an entry's name (".", ".."
 *                      too) -> what lstat says of that entry, whose st_ino the shim puts in the
 *                      entry's d_ino. No permission is checked: the descriptor is the program's
 *                      right to read the names and their inode numbers. Asked only when the
 *                      snapshot does not say (see shim/listing.c); never noted
 */
#define LCF_CALLS(X)                                                                       \
    X(OPEN,           1,  open,              FS,    PATH,        DESCRIPTOR,  BY_FLAGS, 1) \
    X(OPENAT,         2,  openat,            FS,    PATH,        DESCRIPTOR,  BY_FLAGS, 1) \
    X(UNLINK,         3,  unlink,            FS,    PATH,        STATUS,      CHANGES,  0) \
    X(RENAME,         4,  rename,            FS,    PATH,        STATUS,      CHANGES,  0) \
    X(STAT,           5,  stat,              FS,    PATH,        STAT,        READS,    1) \
    X(LSTAT,          6,  lstat,             FS,    PATH,        STAT,        READS,    1) \
    X(ACCESS,         7,  access,            FS,    PATH,        STATUS,      READS,    1) \
    X(EACCESS,        8,  eaccess,           FS,    PATH,        STATUS,      READS,    1) \
    X(MKDIR,          9,  mkdir,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(RMDIR,          10, rmdir,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(CONNECT_UNIX,   11, connect_unix,      NET,   SOCKET_NAME, SOCKET,      READS,    0) \
    X(CONNECT_INET,   12, connect_inet,      NET,   ADDRESS,     SOCKET,      READS,    0) \
    X(CONNECT_INET6,  13, connect_inet6,     NET,   ADDRESS,     SOCKET,      READS,    0) \
    X(BIND_UNIX,      14, bind_unix,         NET,   SOCKET_NAME, SOCKET,      READS,    0) \
    X(BIND_INET,      15, bind_inet,         NET,   ADDRESS,     SOCKET,      READS,    0) \
    X(BIND_INET6,     16, bind_inet6,        NET,   ADDRESS,     SOCKET,      READS,    0) \
    X(GETADDRINFO,    17, getaddrinfo,       NAMES, HOST,        ADDRESSES,   READS,    0) \
    X(READLINK,       18, readlink,          FS,    PATH,        LINK_TEXT,   READS,    1) \
    X(SYMLINK,        19, symlink,           FS,    LINK,        STATUS,      CHANGES,  0) \
    X(LINK,           20, link,              FS,    PATH,        STATUS,      CHANGES,  0) \
    X(CHDIR,          21, chdir,             FS,    PATH,        DIRECTORY,   READS,    0) \
    X(GETCWD,         22, getcwd,            FS,    CWD,         PATH_TEXT,   READS,    0) \
    X(REALPATH,       23, realpath,          FS,    PATH,        PATH_TEXT,   READS,    0) \
    X(CHMOD,          24, chmod,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(CHOWN,          25, chown,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(UTIMENS,        26, utimens,           FS,    PATH,        STATUS,      CHANGES,  0) \
    X(TRUNCATE,       27, truncate,          FS,    PATH,        STATUS,      CHANGES,  0) \
    X(FSTAT,          28, fstat,             FILE,  FILE,        STAT,        READS,    1) \
    X(FCHMOD,         29, fchmod,            FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(FCHOWN,         30, fchown,            FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(FUTIMENS,       31, futimens,          FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(EXEC,           32, exec,              FS,    PATH,        PROGRAM,     READS,    0) \
    X(GETNAMEINFO,    33, getnameinfo,       NAMES, IP,          HOST_TEXT,   READS,    0) \
    X(RES_QUERY,      34, res_query,         NAMES, HOST,        DNS_MESSAGE, READS,    0) \
    X(MKNOD,          35, mknod,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(SETXATTR,       36, setxattr,          FS,    PATH,        STATUS,      CHANGES,  0) \
    X(REMOVEXATTR,    37, removexattr,       FS,    PATH,        STATUS,      CHANGES,  0) \
    X(FSETXATTR,      38, fsetxattr,         FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(FREMOVEXATTR,   39, fremovexattr,      FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(FSIOCTL,        40, fsioctl,           FILE,  FILE,        STATUS,      CHANGES,  0) \
    X(OPEN_BY_HANDLE, 41, open_by_handle_at, FILE,  FILE,        STATUS,      READS,    0) \
    X(MOUNT,          42, mount,             FS,    PATH,        STATUS,      CHANGES,  0) \
    X(STATFS,         43, statfs,            FS,    PATH,        STATFS,      READS,    0) \
    X(FSTATFS,        44, fstatfs,           FILE,  FILE,        STATFS,      READS,    0) \
    X(GETXATTR,       45, getxattr,          FS,    PATH,        BYTES,       READS,    1) \
    X(LISTXATTR,      46, listxattr,         FS,    PATH,        BYTES,       READS,    0) \
    X(FGETXATTR,      47, fgetxattr,         FILE,  FILE,        BYTES,       READS,    0) \
    X(FLISTXATTR,     48, flistxattr,        FILE,  FILE,        BYTES,       READS,    0) \
    X(READ,           50, read,              FILE,  FILE,        COUNT,       READS,    0) \
    X(WRITE,          51, write,             FILE,  FILE,        COUNT,       READS,    0) \
    X(FSYNC,          52, fsync,             FILE,  FILE,        STATUS,      READS,    0) \
    X(FDATASYNC,      53, fdatasync,         FILE,  FILE,        STATUS,      READS,    0) \
    X(FTRUNCATE,      54, ftruncate,         FILE,  FILE,        STATUS,      READS,    0) \
    X(CLOSE,          55, close,             FILE,  FILE,        STATUS,      READS,    0) \
    X(READDIR,        56, readdir,           FS,    PATH,        STAT,        READS,    0)

#define LCF_FUNCTION_ENUMERATOR(NAME, number, name, family, subject, reply, effect, noted) \
    LCF_##NAME = number,
enum lcf_function { LCF_CALLS(LCF_FUNCTION_ENUMERATOR) };

/* What a call works on: the columns of LCF_CALLS. */
enum lcf_family {
    LCF_FAMILY_FS = 1,             /* a path of the filesystem */
    LCF_FAMILY_FILE = 2,           /* a descriptor (FILE) of the master's */
    LCF_FAMILY_NET = 3,            /* the program's socket and an address */
    LCF_FAMILY_NAMES = 4           /* name resolution */
};

/* What fault rules and the journal name a call by. */
enum lcf_subject {
    LCF_SUBJECT_PATH = 1,          /* the first string: a path, resolved from DIR1 */
    LCF_SUBJECT_LINK = 2,          /* the second string: a link's own path, resolved from DIR2 */
    LCF_SUBJECT_FILE = 3,          /* the path of the FILE descriptor */
    LCF_SUBJECT_SOCKET_NAME = 4,   /* a unix socket's name: a path, or @abstract */
    LCF_SUBJECT_ADDRESS = 5,       /* address:port */
    LCF_SUBJECT_HOST = 6,          /* the first string: a host or DNS name */
    LCF_SUBJECT_IP = 7,            /* the address */
    LCF_SUBJECT_CWD = 8            /* the working directory the first string names */
};

/* What a successful answer carries, besides the result. (Numbered so that each group the shim's
 * checks ask about is one range, tested with one comparison: descriptors 3-4, a result that
 * counts 4-7, binary bytes whose length is the result 6-7, texts 5-9, EAI_* results 9-10.) */
enum lcf_reply_kind {
    LCF_REPLY_STATUS = 1,          /* 0, or -1 with errno */
    LCF_REPLY_SOCKET = 2,          /* 0 or -1; may carry a socket that replaces the program's */
    LCF_REPLY_DIRECTORY = 3,       /* result 0 and one directory descriptor */
    LCF_REPLY_DESCRIPTOR = 4,      /* one descriptor, which the program gets as the result */
    LCF_REPLY_LINK_TEXT = 5,       /* text; the result is its length */
    LCF_REPLY_BYTES = 6,           /* bytes (NULs allowed, at most LCF_MAX_BYTES) as text; the
                                    * result is their length; or text_length -1 and the result
                                    * a length alone (the program asked the size) */
    LCF_REPLY_DNS_MESSAGE = 7,     /* a DNS message as text; the result is its length; or -1
                                    * with error an h_errno */
    LCF_REPLY_PATH_TEXT = 8,       /* result 0 and an absolute path as text */
    LCF_REPLY_HOST_TEXT = 9,       /* result 0 and a host name as text, or result an EAI_* code */
    LCF_REPLY_ADDRESSES = 10,      /* result 0 and count struct lcf_address, or an EAI_* code */
    LCF_REPLY_STAT = 11,           /* result 0 and one struct lcf_stat */
    LCF_REPLY_STATFS = 12,         /* result 0 and one struct lcf_statfs */
    LCF_REPLY_PROGRAM = 13,        /* 0 or -1; a 0 may carry the regular file to run instead of
                                    * the one named (exec of a program of the model) */
    LCF_REPLY_COUNT = 14           /* a count of bytes the call may move (>= 0), or -1 with errno */
};

/* Whether a call may change files. */
enum lcf_effect {
    LCF_EFFECT_READS = 1,          /* never */
    LCF_EFFECT_CHANGES = 2,        /* always */
    LCF_EFFECT_BY_FLAGS = 3        /* when its flags ask to write, create or truncate (open) */
};

/* One row of LCF_CALLS as data (the master reads the table so, through cffi). */
struct lcf_call_info {
    uint32_t function;             /* enum lcf_function */
    const char *name;              /* the seed's name */
    uint32_t family;               /* enum lcf_family */
    uint32_t subject;              /* enum lcf_subject */
    uint32_t reply;                /* enum lcf_reply_kind */
    uint32_t effect;               /* enum lcf_effect */
    uint32_t noted;                /* 1: may be answered from the snapshot */
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
    uint32_t umask;                /* LCF_UMASK_KNOWN | the process's umask now, or 0 */
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
    uint32_t umask;                /* LCF_UMASK_KNOWN | the umask when the program made the call (each
                                    * call says it: a change on any thread is seen), or 0 */
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
    uint32_t flags;                /* LCF_WATCH_* on a successful open; else zero. (Also keeps the
                                    * payload 8-byte aligned.) */
};

/* Watched descriptors (struct lcf_reply.flags of a successful open or openat). The master watches
 * a file of the model when a fault rule on its data calls covers its path, or the model's disk
 * has a size (FileSystem.set_disk_usage) and the open may write. The shim then asks the master
 * before each data call of that class on the descriptor (and on its dup, dup2, dup3 and
 * F_DUPFD copies; fork keeps them); every other descriptor keeps native speed: one table lookup,
 * then the real call. The master also opens a watched descriptor with O_NOATIME (a no-op on its
 * memfds, whose atime the model ignores), so that a program that inherits one across exec
 * (a shell's "> file") finds it on its standard descriptors at start. The read and write rows
 * (above) carry what is asked. The effect of these rows is READS: the program makes the change
 * itself, after the answer, and a file a program may write is never in the snapshot. */
#define LCF_WATCH_READS 1          /* read, pread, readv, preadv... (and stdio's reads) */
#define LCF_WATCH_WRITES 2         /* write, pwrite, writev, pwritev..., copy_file_range and
                                    * sendfile into it, fsync, fdatasync, ftruncate */
#define LCF_WATCH_CLOSE 4          /* close (of the descriptor the open gave, and dup/dup2/dup3
                                    * copies; not F_DUPFD ones) */
#define LCF_WATCH_ALL 7

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

struct lcf_statfs {                /* the payload of a successful statfs or fstatfs reply */
    uint64_t type;                 /* f_type: the filesystem's magic number */
    uint64_t bsize;                /* f_bsize: the optimal transfer block size */
    uint64_t blocks;               /* f_blocks: the size in f_frsize units */
    uint64_t bfree;                /* f_bfree: free blocks */
    uint64_t bavail;               /* f_bavail: free blocks an unprivileged user may use */
    uint64_t files;                /* f_files: inodes */
    uint64_t ffree;                /* f_ffree: free inodes */
    uint64_t fsid;                 /* f_fsid, its two ints as one */
    uint64_t namelen;              /* f_namelen: the longest name */
    uint64_t frsize;               /* f_frsize: the fragment size */
    uint64_t flags;                /* f_flags: ST_* mount flags, ST_VALID among them */
};

struct lcf_note {                  /* a call the shim answered from the snapshot, for the journal */
    struct lcf_header header;      /* kind LCF_NOTE; seq as for a call */
    uint32_t function;             /* LCF_STAT, LCF_LSTAT, LCF_FSTAT (of a shadow directory),
                                    * LCF_ACCESS, LCF_EACCESS, LCF_READLINK, LCF_GETXATTR, or
                                    * LCF_OPEN and LCF_OPENAT of a listed directory */
    char symbol[LCF_SYMBOL_SIZE];  /* the libc entry point the program called, NUL-padded */
    int32_t flags;                 /* access: amode; open: its flags */
    int32_t result;                /* what the program got: 0, or -1 with error; readlink: bytes of
                                    * the target, which follow the path */
    uint32_t mode;                 /* the answered entry's st_mode */
    int64_t size;                  /* and st_size */
    int32_t length;                /* bytes of the virtual path that follow */
    int32_t error;                 /* when result is -1: ENOENT (a name a complete directory lacks),
                                    * or ENODATA (getxattr of a name the model keeps none of);
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
 * entry only while it is exact: before a change to the filesystem it withdraws the entries the
 * change makes wrong (the changed path and its directory; the whole snapshot for a change it
 * cannot bound: a rename, a file with other hard links, a directory's permissions), and
 * entries under host mounts, or directories not searchable by everyone are never published. An
 * absent entry says nothing: the call goes to the master as usual; neither does an entry of mode
 * 0, which only names a file the master answers for (one a program may write: its memfd's size
 * and times change unseen; every entry while a fault rule covers a call the shim answers; one
 * whose values a stat answer cannot carry); its ino is still the file's (0: unknown), which no
 * program can change: the d_ino of the name in a listing (shim/listing.c).
 *
 * A directory's entry may also carry flags (in stat.reserved). LCF_SNAPSHOT_LISTED: its shadow
 * directory (root followed by its path) lists exactly its entries, so a program that opens it
 * read-only may open the shadow itself, as the master would have, when the directory is readable
 * by everyone. LCF_SNAPSHOT_COMPLETE: every one of its entries is published, so a name it lacks
 * does not exist (ENOENT, for the calls answered from the snapshot and for an open that creates
 * nothing).
 *
 * A descriptor's record (LCF_SNAPSHOT_DESCRIPTOR) answers fstat of a model file's memfd, which a
 * program holds from an open the master answered. Its key is no path but "//memfd/DEV/INO", the
 * memfd's st_dev and st_ino in lowercase hex (no path a call names has "//"); its target is the
 * file's virtual path (for the note). The memfd is the file's contents, so its size, blocks and
 * mtime come from the memfd's own fstat, and its ctime too once the memfd changed: the record's
 * ctime is the model's, and its mtime the memfd's ctime when the master made it (then unchanged:
 * the record's ctime; else the later of the two). Everything else is the record's.
 *
 * Layout: struct lcf_snapshot at offset 0; slot_count struct lcf_snapshot_slot at slots_offset
 * (an open-addressing hash table, linear probing on lcf_path_hash); path and target bytes in
 * the pool at pool_offset. Emptying is one increment of epoch: a slot counts only when its epoch
 * equals the header's. A reader copies a slot, then checks that neither the header's epoch nor
 * the slot's has moved (a seqlock): the master writes a slot's fields first and its epoch last.
 * Withdrawing one entry sets its slot's epoch to the header's with LCF_SNAPSHOT_WITHDRAWN added,
 * a tombstone: a lookup passes over it (the entries after it on the probe stay reachable) and
 * finds the path absent; the slot is reused only in a later epoch. */
#define LCF_SNAPSHOT_MAGIC 0x3150534c /* "LSP1" in memory order on little-endian machines */
#define LCF_SNAPSHOT_LISTED 1         /* a directory whose shadow lists exactly its entries */
#define LCF_SNAPSHOT_COMPLETE 2       /* a directory all of whose entries are published */
#define LCF_SNAPSHOT_DESCRIPTOR 4     /* a descriptor's record: see above */
#define LCF_SNAPSHOT_WITHDRAWN 0x8000000000000000 /* in a slot's epoch: a withdrawn entry */

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
    uint64_t epoch;                /* the epoch this slot was filled in, written last (with
                                    * LCF_SNAPSHOT_WITHDRAWN: withdrawn in that epoch) */
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
