/* xattr.c — extended attributes. The virtual filesystem has none: on its paths and on the
 * master's descriptors these calls fail with ENOTSUP, as on a filesystem without xattr support,
 * with no round trip. Host paths under the passthrough table, and every other descriptor, get
 * the real call. (Without this, `ls -l` and `cp -a` would look the attributes up on the real
 * disk, find no such file, and print errors for every virtual entry.) */

#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/xattr.h>

/* Whether the path is the host's: 1, 0 (a virtual path), or -1 with errno for a bad path. */
static int xattr_on_host(const char *path)
{
    if (lcf_in_real)
        return 1;
    struct fs_path p;
    if (fs_path_init(&p, AT_FDCWD, path) < 0)
        return -1;
    return lcf_in_passthrough(p.str) ? 1 : 0;
}

/* Whether the descriptor is the host's (not one the master handed out). */
static bool xattr_fd_on_host(int fd)
{
    return lcf_in_real || !lcf_is_master_fd(fd);
}

/* The body of a path wrapper: the real call on host paths, ENOTSUP elsewhere. */
#define XATTR_PATH(call)                                                                   \
    int host = xattr_on_host(path);                                                              \
    if (host < 0)                                                                                \
        return -1;                                                                               \
    if (host == 0)                                                                               \
        return fs_fail(ENOTSUP);                                                                 \
    return call

#define XATTR_FD(call)                                                                     \
    if (!xattr_fd_on_host(fd))                                                                   \
        return fs_fail(ENOTSUP);                                                                 \
    return call

LCF_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(getxattr, ssize_t, const char *, const char *, void *, size_t);
    XATTR_PATH(libc_getxattr(path, name, value, size));
}

LCF_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(lgetxattr, ssize_t, const char *, const char *, void *, size_t);
    XATTR_PATH(libc_lgetxattr(path, name, value, size));
}

LCF_EXPORT ssize_t fgetxattr(int fd, const char *name, void *value, size_t size)
{
    LCF_REAL(fgetxattr, ssize_t, int, const char *, void *, size_t);
    XATTR_FD(libc_fgetxattr(fd, name, value, size));
}

LCF_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(listxattr, ssize_t, const char *, char *, size_t);
    XATTR_PATH(libc_listxattr(path, list, size));
}

LCF_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(llistxattr, ssize_t, const char *, char *, size_t);
    XATTR_PATH(libc_llistxattr(path, list, size));
}

LCF_EXPORT ssize_t flistxattr(int fd, char *list, size_t size)
{
    LCF_REAL(flistxattr, ssize_t, int, char *, size_t);
    XATTR_FD(libc_flistxattr(fd, list, size));
}

LCF_EXPORT int setxattr(const char *path, const char *name, const void *value, size_t size,
                        int flags)
{
    LCF_REAL(setxattr, int, const char *, const char *, const void *, size_t, int);
    XATTR_PATH(libc_setxattr(path, name, value, size, flags));
}

LCF_EXPORT int lsetxattr(const char *path, const char *name, const void *value, size_t size,
                         int flags)
{
    LCF_REAL(lsetxattr, int, const char *, const char *, const void *, size_t, int);
    XATTR_PATH(libc_lsetxattr(path, name, value, size, flags));
}

LCF_EXPORT int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
    LCF_REAL(fsetxattr, int, int, const char *, const void *, size_t, int);
    XATTR_FD(libc_fsetxattr(fd, name, value, size, flags));
}

LCF_EXPORT int removexattr(const char *path, const char *name)
{
    LCF_REAL(removexattr, int, const char *, const char *);
    XATTR_PATH(libc_removexattr(path, name));
}

LCF_EXPORT int lremovexattr(const char *path, const char *name)
{
    LCF_REAL(lremovexattr, int, const char *, const char *);
    XATTR_PATH(libc_lremovexattr(path, name));
}

LCF_EXPORT int fremovexattr(int fd, const char *name)
{
    LCF_REAL(fremovexattr, int, int, const char *);
    XATTR_FD(libc_fremovexattr(fd, name));
}
