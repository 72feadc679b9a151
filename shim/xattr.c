/* xattr.c — extended attributes. The model's files keep theirs (the master's FileSystem): the
 * reading calls on virtual paths and on the master's descriptors go to the master, which answers
 * with the attribute's bytes or the list of names; host paths under the passthrough table, and
 * every other descriptor, get the real reading call. The changing calls go to the master too
 * (below), which refuses them on the host's files. (Without this, `ls -l` and `cp -a` would look
 * the attributes up on the real disk, find no such file, and print errors for every virtual
 * entry.) */

#include "shim.h"
#include "errline.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <string.h>
#include <sys/types.h>
#include <sys/xattr.h>

_Static_assert(XATTR_NAME_MAX + 1 + LCF_MAX_XATTR_VALUE <= LCF_MAX_PATH,
               "a name, its NUL and a carried value fit in one string");

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

/* Whether the descriptor is the host's (not one the master handed out). */
static bool xattr_fd_on_host(int fd)
{
    return lcf_in_real || !lcf_is_master_fd(fd);
}

/* Forwards a prepared read (getxattr, listxattr and their forms) whose bytes go to buf (size
 * bytes; 0: the size is asked). Returns LCF_PASSTHROUGH, or LCF_ANSWER with *ret the program's
 * return value (and errno on failure), or -1 when the call failed closed. The bytes are received
 * straight into buf: the packet is cut at its end (at most LCF_MAX_BYTES), and a longer answer
 * fails the check. */
static int xattr_read_call(struct lcf_request *req, void *buf, size_t size, ssize_t *ret)
{
    req->call.values[0] = size > INT64_MAX ? INT64_MAX : (int64_t)size;
    struct lcf_reply reply;
    int fd;
    size_t room = size < LCF_MAX_BYTES ? size : LCF_MAX_BYTES;
    int action = lcf_forward(req, &reply, &fd, room ? buf : NULL, room);
    if (action != LCF_ANSWER)
        return action;
    if (reply.result >= 0 && size != 0 && reply.text_length != reply.result) {
        struct line l;
        line_begin(&l, req);
        line_str(&l, "invalid reply (bytes missing for a buffer of ");
        line_uint(&l, size);
        line_str(&l, ")");
        return line_fail(&l);
    }
    *ret = reply.result < 0 ? fs_fail(reply.error) : reply.result;
    return LCF_ANSWER;
}

/* The body of getxattr and lgetxattr, listxattr and llistxattr: the real call (through the
 * gate: `gated` its lcf_real_ form) on host paths under the passthrough table and when the
 * master passes it through; else the master's answer. `given` is the attribute's name (NULL:
 * a list). */
static ssize_t xattr_path_read(const char *symbol, uint32_t function, bool follow, const char *path,
                               const char *given, void *buf, size_t size)
{
    FS_PATH(p);
    char name[XATTR_NAME_MAX + 1];
    int n = given != NULL || function == LCF_GETXATTR ? xattr_name(given, name) : 0;
    if (n < 0 || fs_path_init(&p, AT_FDCWD, path) < 0)
        return -1;
    ssize_t ret = -1;
    int action = LCF_PASSTHROUGH;
    if (!lcf_in_passthrough(p.str)) {
        struct lcf_request req;
        fs_request(&req, function, symbol, &p, NULL);
        req.readonly = true;
        if (function == LCF_GETXATTR) {
            req.str2 = name;
            req.call.length2 = n;
        }
        req.call.flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
        action = xattr_read_call(&req, buf, size, &ret);
    }
    if (action != LCF_PASSTHROUGH)
        return action < 0 ? -1 : ret;
    if (function == LCF_GETXATTR)
        return lcf_real_getxattr(follow, p.str, name, buf, size);
    return lcf_real_listxattr(follow, p.str, buf, size);
}

/* The same for a descriptor: the real call on the host's descriptors; else the master's
 * answer. */
static ssize_t xattr_fd_read(const char *symbol, uint32_t function, int fd, const char *given,
                             void *buf, size_t size)
{
    char name[XATTR_NAME_MAX + 1];
    int n = function == LCF_FGETXATTR ? xattr_name(given, name) : 0;
    if (n < 0)
        return -1;
    struct lcf_request req;
    lcf_request_init(&req, function, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    if (function == LCF_FGETXATTR) {
        req.str2 = name;
        req.call.length2 = n;
    }
    ssize_t ret = -1;
    int action = xattr_read_call(&req, buf, size, &ret);
    if (action == LCF_PASSTHROUGH)
        return -2;
    return action < 0 ? -1 : ret;
}

LCF_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(getxattr, ssize_t, const char *, const char *, void *, size_t);
    if (lcf_in_real)
        return libc_getxattr(path, name, value, size);
    return xattr_path_read("getxattr", LCF_GETXATTR, true, path, name, value, size);
}

LCF_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    LCF_REAL(lgetxattr, ssize_t, const char *, const char *, void *, size_t);
    if (lcf_in_real)
        return libc_lgetxattr(path, name, value, size);
    return xattr_path_read("lgetxattr", LCF_GETXATTR, false, path, name, value, size);
}

LCF_EXPORT ssize_t fgetxattr(int given, const char *name, void *value, size_t size)
{
    LCF_REAL(fgetxattr, ssize_t, int, const char *, void *, size_t);
    if (xattr_fd_on_host(given))
        return libc_fgetxattr(given, name, value, size);
    FD_PIN(fd, given); /* the file asked about is the one read */
    ssize_t ret = xattr_fd_read("fgetxattr", LCF_FGETXATTR, fd, name, value, size);
    return ret == -2 ? libc_fgetxattr(fd, name, value, size) : ret;
}

LCF_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(listxattr, ssize_t, const char *, char *, size_t);
    if (lcf_in_real)
        return libc_listxattr(path, list, size);
    return xattr_path_read("listxattr", LCF_LISTXATTR, true, path, NULL, list, size);
}

LCF_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
    LCF_REAL(llistxattr, ssize_t, const char *, char *, size_t);
    if (lcf_in_real)
        return libc_llistxattr(path, list, size);
    return xattr_path_read("llistxattr", LCF_LISTXATTR, false, path, NULL, list, size);
}

LCF_EXPORT ssize_t flistxattr(int given, char *list, size_t size)
{
    LCF_REAL(flistxattr, ssize_t, int, char *, size_t);
    if (xattr_fd_on_host(given))
        return libc_flistxattr(given, list, size);
    FD_PIN(fd, given);
    ssize_t ret = xattr_fd_read("flistxattr", LCF_FLISTXATTR, fd, NULL, list, size);
    return ret == -2 ? libc_flistxattr(fd, list, size) : ret;
}

/* =================================================================== changing ones ===== */
/* Setting or removing an attribute is never done on a host file: each goes to the master, which
 * refuses it on the host's files (EROFS, a violation) and answers from the model on the model's.
 * Anonymous descriptors (pipes, sockets) get the real call. */

/* The kernel's first checks of a change, in its order, then the second string of the call in
 * carried (LCF_MAX_PATH + 1 bytes): the name and its NUL, which the real call can use as it is,
 * and, for a set whose value is at most LCF_MAX_XATTR_VALUE bytes, the value after them (else the
 * master, seeing values[0] larger than what came, refuses the call). `setting`: a setxattr form,
 * with value, size and xflags. Returns the string's length, or -1 with errno (EINVAL for unknown
 * flags, ERANGE for the name, E2BIG for a value larger than Linux takes, EFAULT). */
static int xattr_carry(bool setting, const char *given, const void *value, size_t size,
                       int xflags, char carried[LCF_MAX_PATH + 1])
{
    if (setting && (xflags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0)
        return fs_fail(EINVAL);
    int n = xattr_name(given, carried);
    if (n < 0 || !setting)
        return n;
    if (size > XATTR_SIZE_MAX)
        return fs_fail(E2BIG);
    if (value == NULL && size > 0)
        return fs_fail(EFAULT);
    if (size > LCF_MAX_XATTR_VALUE)
        return n;
    if (size > 0)
        memcpy(carried + n + 1, value, size);
    return n + 1 + (int)size;
}

/* Fills what a change carries besides its file: the second string, the value's size, the
 * XATTR_* flags. */
static void xattr_change_request(struct lcf_request *req, const char *carried, int length,
                                 size_t size, int xflags)
{
    req->str2 = carried;
    req->call.length2 = length;
    req->call.values[0] = (int64_t)size;
    req->call.mode = (uint32_t)xflags;
}

/* Forwards a change of the attribute `given` of path (flags: AT_SYMLINK_NOFOLLOW for the l-forms;
 * value, size and xflags: a set's); returns LCF_PASSTHROUGH with the copies in *p and carried
 * (the name) for the real call, or LCF_ANSWER with *ret, or -1 with errno. */
static int xattr_forward(const char *symbol, uint32_t function, const char *path, const char *given,
                         int flags, const void *value, size_t size, int xflags, struct fs_path *p,
                         char carried[LCF_MAX_PATH + 1], int *ret)
{
    int length = xattr_carry(function == LCF_SETXATTR, given, value, size, xflags, carried);
    if (length < 0 || fs_path_init(p, AT_FDCWD, path) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, function, symbol, p, NULL);
    xattr_change_request(&req, carried, length, size, xflags);
    req.call.flags = flags;
    return fs_int_call(&req, ret);
}

/* The same for a descriptor's file. */
static int xattr_fd_forward(const char *symbol, uint32_t function, int fd, const char *given,
                            const void *value, size_t size, int xflags,
                            char carried[LCF_MAX_PATH + 1], int *ret)
{
    int length = xattr_carry(function == LCF_FSETXATTR, given, value, size, xflags, carried);
    if (length < 0)
        return -1;
    struct lcf_request req;
    lcf_request_init(&req, function, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    xattr_change_request(&req, carried, length, size, xflags);
    return fs_int_call(&req, ret);
}

/* The body of setxattr and lsetxattr. */
#define SETXATTR_PATH(symbol, real, nofollow)                                                   \
    LCF_REAL(real, int, const char *, const char *, const void *, size_t, int);                  \
    if (lcf_in_real)                                                                             \
        return libc_##real(path, name, value, size, flags);                                      \
    FS_PATH(p);                                                                                  \
    char carried[LCF_MAX_PATH + 1];                                                              \
    int ret = -1;                                                                                \
    int action = xattr_forward(symbol, LCF_SETXATTR, path, name, nofollow, value, size, flags,   \
                               &p, carried, &ret);                                               \
    if (action == LCF_PASSTHROUGH)                                                               \
        return libc_##real(p.str, carried, value, size, flags);                                  \
    return action < 0 ? -1 : ret

#define REMOVEXATTR_PATH(symbol, real, nofollow)                                                \
    LCF_REAL(real, int, const char *, const char *);                                             \
    if (lcf_in_real)                                                                             \
        return libc_##real(path, name);                                                          \
    FS_PATH(p);                                                                                  \
    char carried[LCF_MAX_PATH + 1];                                                              \
    int ret = -1;                                                                                \
    int action = xattr_forward(symbol, LCF_REMOVEXATTR, path, name, nofollow, NULL, 0, 0, &p,    \
                               carried, &ret);                                                   \
    if (action == LCF_PASSTHROUGH)                                                               \
        return libc_##real(p.str, carried);                                                      \
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
    char carried[LCF_MAX_PATH + 1];
    int ret = -1;
    int action = xattr_fd_forward("fsetxattr", LCF_FSETXATTR, fd, name, value, size, flags,
                                  carried, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_fsetxattr(fd, carried, value, size, flags);
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
    char carried[LCF_MAX_PATH + 1];
    int ret = -1;
    int action = xattr_fd_forward("fremovexattr", LCF_FREMOVEXATTR, fd, name, NULL, 0, 0, carried,
                                  &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_fremovexattr(fd, carried);
    return action < 0 ? -1 : ret;
}
