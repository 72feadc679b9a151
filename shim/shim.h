/* shim.h — what the parts of the preload shim share: the export marker, the lazy lookup of the
 * real libc functions (real.c), the per-thread guard, the channel API the wrappers forward calls
 * through (channel.c routes them; the channel's own units have their own headers: connection.h,
 * transport.h, passthrough.h, replies.h, snapshot_answers.h, errline.h, real.h), and the path
 * helpers of the filesystem wrappers (fs.c). Every shim C file includes it first. */
#ifndef LIBCFAKE_SHIM_H
#define LIBCFAKE_SHIM_H

/* The wrappers define open, stat, ...: glibc's fortify inlines of those must stay out of the way. */
#undef _FORTIFY_SOURCE

/* glibc declares most path arguments nonnull, and a wrapper's definition inherits that: GCC would
 * then delete the wrapper's own NULL checks (utimensat(fd, NULL, ...) must reach libc, a NULL path
 * must give EFAULT, not a crash). No declaration in the shim carries the attribute. */
#define __nonnull(params)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "libcfake_wire.h"

/* Marks a wrapper the program's calls must reach; everything else stays hidden (-fvisibility=hidden). */
#define LCF_EXPORT __attribute__((visibility("default")))

/* Declares `libc_NAME`, a pointer to the next definition of NAME after the shim (libc's), found with
 * dlsym(RTLD_NEXT) on first use. Works before the shim's constructor ran; umockdev's libc_func. */
#define LCF_REAL(name, rettype, ...)                                                              \
    static rettype (*libc_##name)(__VA_ARGS__);                                                   \
    if (__atomic_load_n(&libc_##name, __ATOMIC_ACQUIRE) == NULL)                                  \
        __atomic_store_n(&libc_##name, (rettype(*)(__VA_ARGS__))lcf_dlsym(#name), __ATOMIC_RELEASE)

/* dlsym(RTLD_NEXT, name); a missing symbol aborts the program with one line on stderr. */
void *lcf_dlsym(const char *name);

/* libc's own getcwd (real.c). */
char *lcf_real_getcwd(char *buf, size_t size);

/* libc's own fstat and fstatat, for the shim's checks (the public names are wrappers). */
int lcf_real_fstat(int fd, struct stat *st);
int lcf_real_fstatat(int dirfd, const char *path, struct stat *st, int flags);

/* Tells the channel that the process's user or group ids changed (ids.c): each thread's next
 * call says hello again, with the new ids. */
void lcf_ids_changed(void);

/* libc's fdopen; on failure the descriptor is closed and errno kept (fs.c). */
FILE *lcf_fdopen(int fd, const char *mode);

/* Writes "/proc/self/fd/N" into buf, async-signal-safely. */
void lcf_proc_fd_path(char buf[32], int fd);

/* Nonzero while the shim itself runs a real libc function that may call wrapped functions back
 * (getaddrinfo loading NSS modules, freopen): wrappers then go straight to the real function. */
extern __thread int lcf_in_real;

/* A call ready to forward; the wrappers fill it, lcf_forward sends it. */
struct lcf_request {
    struct lcf_call call;          /* the fixed part, zeroed first; lcf_forward fills in the header */
    const char *str1;              /* call.length1 bytes (path, unix name, node), unless -1 */
    const char *str2;              /* call.length2 bytes (new path, service), unless -1 */
    int fds[LCF_MAX_FDS];          /* the descriptors that call.fds names, in bit order */
    int nfds;
    int *pins[2];                  /* where to keep a duplicate of the DIR1 and DIR2 descriptors
                                    * made when the call is sent (see struct fs_path), or NULL */
    bool readonly;                 /* may be done locally when str1 lies under a passthrough prefix */
    bool directory;                /* fstat: of a directory (only those are in the snapshot) */
};

/* The program's umask as calls carry it (umask.c): LCF_UMASK_KNOWN | umask, or 0 when /proc
 * cannot tell. One load and a test while the shim knows it (umask() keeps it); else it is read. */
extern uint64_t lcf_umask_state;
uint32_t lcf_umask_read(uint64_t seen);

static inline uint32_t lcf_umask(void)
{
    uint64_t s = __atomic_load_n(&lcf_umask_state, __ATOMIC_RELAXED);
    return __builtin_expect((uint32_t)s != 0, 1) ? (uint32_t)s : lcf_umask_read(s);
}

/* In a fork() child: forgets what the parent's threads were doing to the umask (umask.c). */
void lcf_umask_forked(void);

/* Whether this is a vfork child, which shares its parent's memory (connection.c). A system call. */
bool lcf_shares_parent_memory(void);

/* Zeroes *req, sets the function, the symbol the program called, both strings absent, and the
 * umask the call says (lcf_umask). */
void lcf_request_init(struct lcf_request *req, uint32_t function, const char *symbol);

/* Adds a descriptor under one LCF_FD_* bit; call in bit order. */
void lcf_request_fd(struct lcf_request *req, uint32_t bit, int fd);

/* Forwards req and waits for the reply. Returns LCF_ANSWER (*reply, *fd: the descriptor that came
 * with it or -1, payload: reply->count entries), LCF_PASSTHROUGH (the caller does the real call),
 * or -1 when the call failed closed: errno is EIO and one line went to stderr. errno is otherwise
 * left as it was. payload_size bounds the payload the caller accepts (0 when it expects none). */
int lcf_forward(const struct lcf_request *req, struct lcf_reply *reply, int *fd, void *payload,
                size_t payload_size);

/* The master's socket path ($LIBCFAKE_SOCKET as the program started), or NULL. */
const char *lcf_master_path(void);

/* Writes the current directory, "/" and the first len bytes of relative into buf (LCF_MAX_PATH + 1
 * bytes, NUL-terminated); returns the length, or -1 with errno (ENAMETOOLONG when it does not fit).
 * The directory is the real one (libc's getcwd, never the master's answer): relative paths are sent
 * as the kernel would resolve them, and the master maps a shadow directory back. */
int lcf_resolve_cwd(char *buf, const char *relative, size_t len);

/* Whether dev is one of the devices of the descriptors the master hands out (the welcome's
 * devices). Connects first if this process has had no welcome; false when there is no master. */
bool lcf_is_master_dev(uint64_t dev);

/* Whether fd is one of the master's files or directories: fstat works on it and its st_dev is one
 * of the master's devices. The f-calls (fstat, fchmod ...) on such a descriptor are forwarded;
 * on any other they are real calls without a round trip. errno is left as it was. */
bool lcf_is_master_fd(int fd);

/* Whether a call that changes the file fd refers to (fchmod, fchown, futimens, fsetxattr, an
 * attribute ioctl, linkat of the descriptor) goes to the master: for the master's own files (the
 * model answers) and for every file with a path (a host file: the master refuses the change).
 * Anonymous files (pipes, sockets, anonymous inodes) and bad descriptors get the real call, which
 * changes nothing of the host's files. errno is left as it was (fsmeta.c). */
bool lcf_fd_to_master(int fd);

/* Whether an absolute path lies under a prefix of the passthrough table (the host's read-only
 * mounts); false when no master can be reached. */
bool lcf_in_passthrough(const char *path);

/* ============================================================ filesystem helpers (fs.c) ===== */
/* Shared by the filesystem wrappers in fs.c, fsmeta.c and dir.c. */

/* A path argument made ready to forward: absolute, or relative to a directory fd sent along.
 * It is the shim's own copy of the program's path: only it is checked, sent, and handed to the
 * real call (with fs_real_dirfd). When the call goes to the master, the channel sends a duplicate
 * of the directory descriptor and keeps it in `own`, and the real call uses that duplicate: a
 * thread that dup2s another directory over dirfd meanwhile changes nothing. Declare one with
 * FS_PATH, which closes the duplicate when it goes out of scope. */
struct fs_path {
    const char *str;               /* what is sent and used: buf ("" for a descriptor's file) */
    int32_t len;
    int dirfd;                     /* the program's directory descriptor, or -1 */
    int own;                       /* the duplicate that was sent (fs_path_release closes it), or -1 */
    char buf[LCF_MAX_PATH + 1];    /* the copy; a relative path joined to the current directory */
};

/* Closes the duplicate directory descriptor of p, if it has one; errno is left as it was. */
void fs_path_release(struct fs_path *p);

/* Declares struct fs_path NAME, released at the end of its scope. */
#define FS_PATH(name)                                                                            \
    struct fs_path name __attribute__((cleanup(fs_path_release)));                               \
    name.own = -1

/* A private duplicate of the descriptor fd (close-on-exec), so that a check of the file and the
 * call made after it see the same file even if another thread dup2s another file over fd
 * meanwhile; fd itself when it cannot be duplicated (EBADF: the call then fails as it would; the
 * descriptor table full: unpinned). Release it with fs_unpin (fs.c). */
int fs_pin(int fd);

struct fs_pinned {
    int fd;                        /* fs_pin's duplicate */
    int given;                     /* the program's descriptor */
};

void fs_unpin(struct fs_pinned *pinned);

/* Declares int NAME, a pinned duplicate of the descriptor, released at the end of its scope. */
#define FD_PIN(name, descriptor)                                                                 \
    struct fs_pinned name##_pin __attribute__((cleanup(fs_unpin))) = {fs_pin(descriptor),        \
                                                                      descriptor};               \
    int name = name##_pin.fd

/* Sets errno to err and returns -1. */
int fs_fail(int err);

/* Copies the program's (dirfd, path) into *p, as the kernel would see it. Returns 0, or -1 with
 * errno (EFAULT, ENOENT, ENAMETOOLONG, EBADF) for calls the kernel would refuse outright. */
int fs_path_init(struct fs_path *p, int dirfd, const char *path);

/* The directory descriptor the real call on p->str starts from: the duplicate sent to the
 * master, its dirfd, or AT_FDCWD (p->str is then absolute). */
int fs_real_dirfd(const struct fs_path *p);

/* Whether (path, flags) asks for the file dirfd refers to itself (AT_EMPTY_PATH and ""). */
bool fs_is_fd_operation(const char *path, int flags);

/* Starts a request naming one or two prepared paths (p2 may be NULL), with their directory fds. */
void fs_request(struct lcf_request *req, uint32_t function, const char *symbol,
                struct fs_path *p1, struct fs_path *p2);

/* Forwards a call whose answer is a plain int. Returns LCF_PASSTHROUGH, or LCF_ANSWER with *ret
 * the program's return value (and errno on failure), or -1 when the call failed closed. */
int fs_int_call(const struct lcf_request *req, int *ret);

/* Forwards an open or openat. Returns the new fd, or -1 with errno, or -2 when the caller must do
 * the real call itself (passthrough), on the copy of the path in *p. */
int fs_open_forward(const char *symbol, uint32_t function, int dirfd, const char *path, int flags,
                    mode_t mode, struct fs_path *p);

#endif
