/* mounts.c — mount, umount, umount2 and chroot. They change the mounts or the root of the host
 * (or of the program's namespace, which the shim cannot tell apart): each is asked of the master
 * (LCF_MOUNT, the symbol naming the call), which refuses it or lets it through. The target and
 * the source are copied first; a passthrough gets the copies. */

#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Asks the master about symbol on target (copied into *p) with source (copied into *q, when
 * given) and flags. Returns LCF_PASSTHROUGH, LCF_ANSWER with *ret, or -1 with errno. */
static int mount_forward(const char *symbol, const char *target, const char *source, int flags,
                         struct fs_path *p, struct fs_path *q, int *ret)
{
    if (fs_path_init(p, AT_FDCWD, target) < 0)
        return -1;
    struct lcf_request req;
    fs_request(&req, LCF_MOUNT, symbol, p, NULL);
    req.call.flags = flags;
    if (source != NULL) {
        size_t n = strnlen(source, LCF_MAX_PATH + 1);
        if (n > LCF_MAX_PATH)
            return fs_fail(ENAMETOOLONG);
        memcpy(q->buf, source, n);
        q->buf[n] = '\0';
        q->str = q->buf;
        req.str2 = q->buf;
        req.call.length2 = (int32_t)strlen(q->buf);
    }
    return fs_int_call(&req, ret);
}

LCF_EXPORT int mount(const char *source, const char *target, const char *type,
                     unsigned long flags, const void *data)
{
    LCF_REAL(mount, int, const char *, const char *, const char *, unsigned long, const void *);
    if (lcf_in_real)
        return libc_mount(source, target, type, flags, data);
    FS_PATH(p);
    FS_PATH(q);
    int ret = -1;
    int action = mount_forward("mount", target, source, (int)flags, &p, &q, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_mount(source != NULL ? q.str : NULL, p.str, type, flags, data);
    return action < 0 ? -1 : ret;
}

LCF_EXPORT int umount2(const char *target, int flags)
{
    LCF_REAL(umount2, int, const char *, int);
    if (lcf_in_real)
        return libc_umount2(target, flags);
    FS_PATH(p);
    FS_PATH(q);
    int ret = -1;
    int action = mount_forward("umount2", target, NULL, flags, &p, &q, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_umount2(p.str, flags);
    return action < 0 ? -1 : ret;
}

LCF_EXPORT int umount(const char *target)
{
    LCF_REAL(umount, int, const char *);
    if (lcf_in_real)
        return libc_umount(target);
    FS_PATH(p);
    FS_PATH(q);
    int ret = -1;
    int action = mount_forward("umount", target, NULL, 0, &p, &q, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_umount(p.str);
    return action < 0 ? -1 : ret;
}

LCF_EXPORT int chroot(const char *path)
{
    LCF_REAL(chroot, int, const char *);
    if (lcf_in_real)
        return libc_chroot(path);
    FS_PATH(p);
    FS_PATH(q);
    int ret = -1;
    int action = mount_forward("chroot", path, NULL, 0, &p, &q, &ret);
    if (action == LCF_PASSTHROUGH)
        return libc_chroot(p.str);
    return action < 0 ? -1 : ret;
}
