/* xattr.c — extended attributes. The virtual filesystem has none: on its paths and on the
 * master's descriptors the reading calls fail with ENOTSUP, as on a filesystem without xattr
 * support, with no round trip; host paths under the passthrough table, and every other
 * descriptor, get the real reading call. The changing calls go to the master (below). (Without this, `ls -l` and `cp -a` would look the attributes up on the real
 * disk, find no such file, and print errors for every virtual entry.) */

#include "shim.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <string.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* Whether the path (copied into *p) is the host's: 1, 0 (a virtual path), or -1 with errno for a
 * bad path. The real call gets the copy. */
static int xattr_on_host(const char *path, struct fs_path *p)
{
    if (fs_path_init(p, AT_FDCWD, path) < 0)
        return -1;
    return lcf_in_passthrough(p->str) ? 1 : 0;
}

/* Whether the descriptor is the host's (not one the master handed out). */
static bool xattr_fd_on_host(int fd)
{
    return lcf_in_real || !lcf_is_master_fd(fd);
}

/* The body of a path wrapper: the real call on host paths (with the copy of the path, p.str,
 * through the gate: `gated` is its lcf_real_ form, `follow` its first argument), ENOTSUP
 * elsewhere; libc's under lcf_in_real. */
#define XATTR_PATH(real, gated, follow, ...)                                                     \
    if (lcf_in_real)                                                                             \
        return libc_##real(path, __VA_ARGS__);                                                   \
    FS_PATH(p);                                                                                  \
    int host = xattr_on_host(path, &p);                                                          \
    if (host < 0)                                                                                \
        return -1;                                                                               \
    if (host == 0)                                                                               \
        return fs_fail(ENOTSUP);                                                                 \
    return gated(follow, p.str, __VA_ARGS__)

#define XATTR_FD(call)                                                                     \
    if (!xattr_fd_on_host(fd))                                                                   \
        return fs_fail(ENOTSUP);                                                                 \
    return call

LCF_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(getxattr, ssize_t, const char *, const char *, void *, size_t);
    XATTR_PATH(getxattr, lcf_real_getxattr, true, name, value, size);
}

LCF_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(lgetxattr, ssize_t, const char *, const char *, void *, size_t);
    XATTR_PATH(lgetxattr, lcf_real_getxattr, false, name, value, size);
}

LCF_EXPORT ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
    LCF_REAL(fgetxattr, ssize_t, int, const char *, void *, size_t);
    XATTR_FD(libc_fgetxattr(fd, name, value, size));
}

LCF_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(listxattr, ssize_t, const char *, char *, size_t);
    XATTR_PATH(listxattr, lcf_real_listxattr, true, list, size);
}

LCF_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(llistxattr, ssize_t, const char *, char *, size_t);
    XATTR_PATH(llistxattr, lcf_real_listxattr, false, list, size);
}

LCF_EXPORT ssize_t flistxattr(int fd, char *list, size_t size)
{
    LCF_REAL(flistxattr, ssize_t, int, char *, size_t);
    XATTR_FD(libc_flistxattr(fd, list, size));
}

/* =================================================================== changing ones ===== */
/* Setting or removing an attribute is never done on a host file: each goes to the master, which
 * refuses it on the host's files (EROFS, a violation) and answers ENOTSUP on the model's (which
 * have none). Anonymous descriptors (pipes, sockets) get the real call. */

/* Copies an attribute name into name (XATTR_NAME_MAX + 1 bytes). Returns its length, or -1 with
 * the kernel's errno (EFAULT; ERANGE for an empty or too long name). */
static int xattr_name(const char *given, char name[XATTR_NAME_MAX + 1])
{
    if (given == NULL)
        return fs_fail(EFAULT);
    size_t n = strnlen(given, XATTR_NAME_MAX + 1);
    if (n == 0 || n > XATTR_NAME_MAX)
        return fs_fail(ERANGE);
    memcpy(name, given, n);
    name[n] = '\0';
    return (int)n;
}

/* Forwards a change of the attribute `given` of path (flags: AT_SYMLINK_NOFOLLOW for the l-forms,
 * xflags: XATTR_CREATE/REPLACE); returns LCF_PASSTHROUGH with the copies in *p and name for the
 * real call, or LCF_ANSWER with *ret, or -1 with errno. */
static int xattr_forward(const char *symbol, uint32_t function, const char *path, const char *given,
                         int flags, int xflags, struct fs_path *p, char name[XATTR_NAME_MAX + 1],
                         int *ret)
{
    int n = xattr_name(given, name);
    if (n < 0 || fs_path_init(p, AT_FDCWD, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, function, symbol, p, NULL);
    req.str2 = name;
    req.call.length2 = n;
    req.call.flags = flags;
    req.call.mode = (uint32_t)xflags;
    return fs_int_call(&req, ret);
}

/* The same for a descriptor's file. */
static int xattr_fd_forward(const char *symbol, uint32_t function, int fd, const char *given,
                            int xflags, char name[XATTR_NAME_MAX + 1], int *ret)
{
    int n = xattr_name(given, name);
    if (n < 0)
        return -1;
    struct lcf_request req;
    lcf_request_init(&req, function, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    req.str2 = name;
    req.call.length2 = n;
    req.call.mode = (uint32_t)xflags;
    return fs_int_call(&req, ret);
}

/* The body of setxattr and lsetxattr. */
#define SETXATTR_PATH(symbol, real, nofollow)                                                   \
    LCF_REAL(real, int, const char *, const char *, const void *, size_t, int);                  \
    if (lcf_in_real)                                                                             \
        return libc_##real(path, name, value, size, flags);                                      \
    FS_PATH(p);                                                                                  \
    char copy[XATTR_NAME_MAX + 1];                                                               \
    int ret = -1;                                                                                \
    int action = xattr_forward(symbol, LCF_SETXATTR, path, name, nofollow, flags, &p, copy, &ret); \
    if (action == LCF_PASSTHROUGH)                                                               \
        return libc_##real(p.str, copy, value, size, flags);                                     \
    return action < 0 ? -1 : ret

#define REMOVEXATTR_PATH(symbol, real, nofollow)                                                \
    LCF_REAL(real, int, const char *, const char *);                                             \
    if (lcf_in_real)                                                                             \
        return libc_##real(path, name);                                                          \
    FS_PATH(p);                                                                                  \
    char copy[XATTR_NAME_MAX + 1];                                                               \
    int ret = -1;                                                                                \
    int action = xattr_forward(symbol, LCF_REMOVEXATTR, path, name, nofollow, 0, &p, copy, &ret); \
    if (action == LCF_PASSTHROUGH)                                                               \
        return libc_##real(p.str, copy);                                                         \
    return action < 0 ? -1 : ret

LCF_EXPORT int setxattr(const char *path, const char *name, const void *value, size_t size,
                        int flags)
{
    SETXATTR_PATH("setxattr", setxattr, 0);
}

LCF_EXPORT int lsetxattr(const char *path, const char *name, const void *value, size_t size,
                         int flags)
{
    SETXATTR_PATH("lsetxattr", lsetxattr, AT_SYMLINK_NOFOLLOW);
}

LCF_EXPORT int fsetxattr(int given, const char *name, const void *value, size_t size, int flags)
{
    LCF_REAL(fsetxattr, int, int, const char *, const void *, size_t, int);
    if (lcf_in_real)
        return libc_fsetxattr(given, name, value, size, flags);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return libc_fsetxattr(fd, name, value, size, flags);
    char copy[XATTR_NAME_MAX + 1];
    int ret = -1;
    int action = xattr_fd_forward("fsetxattr", LCF_FSETXATTR, fd, name, flags, copy, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_fsetxattr(fd, copy, value, size, flags);
    return action < 0 ? -1 : ret;
}

LCF_EXPORT int removexattr(const char *path, const char *name)
{
    REMOVEXATTR_PATH("removexattr", removexattr, 0);
}

LCF_EXPORT int lremovexattr(const char *path, const char *name)
{
    REMOVEXATTR_PATH("lremovexattr", lremovexattr, AT_SYMLINK_NOFOLLOW);
}

LCF_EXPORT int fremovexattr(int given, const char *name)
{
    LCF_REAL(fremovexattr, int, int, const char *);
    if (lcf_in_real)
        return libc_fremovexattr(given, name);
    FD_PIN(fd, given); /* the file checked is the one changed */
    if (!lcf_fd_to_master(fd))
        return libc_fremovexattr(fd, name);
    char copy[XATTR_NAME_MAX + 1];
    int ret = -1;
    int action = xattr_fd_forward("fremovexattr", LCF_FREMOVEXATTR, fd, name, 0, copy, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_fremovexattr(fd, copy);
    return action < 0 ? -1 : ret;
}
