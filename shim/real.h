/* real.h — the shim's own real calls (real.c). Each lcf_real_NAME is the system call behind libc's
 * NAME, made through the gate (gate.c), so that under libcfake-launch a call the shim or the master
 * has decided on costs no trap; it returns like libc's NAME (-1 with errno). They are for the
 * channel and for the calls the shim has decided: the master said LCF_PASSTHROUGH, the passthrough
 * table let a call through, or the shim checks something for itself. A call the shim makes
 * without deciding it (under lcf_in_real, or one handed to libc because the shim does not model
 * it) keeps libc's function, and traps under the launcher: the master decides it there.
 *
 * The shim exports wrappers of these names (sendmsg in net.c, readlink and openat in fs.c and
 * dir.c, ...): a call the shim makes for itself must never pass through them. Unlike libc's, none
 * of these is a cancellation point. lcf_real_fstat, lcf_real_fstatat and lcf_real_getcwd are
 * declared in shim.h. */
#ifndef LIBCFAKE_REAL_H
#define LIBCFAKE_REAL_H

#include "shim.h"

#include <sys/socket.h>

/* the channel */
int lcf_real_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t lcf_real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t lcf_real_recvmsg(int fd, struct msghdr *msg, int flags); /* libc's: the filter allows it */

/* paths */
int lcf_real_openat(int dirfd, const char *path, int flags, ...); /* a mode when flags need one */
ssize_t lcf_real_readlink(const char *path, char *buf, size_t size);
ssize_t lcf_real_readlinkat(int dirfd, const char *path, char *buf, size_t size);
int lcf_real_statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx);
int lcf_real_faccessat(int dirfd, const char *path, int amode, int flags);
int lcf_real_mkdirat(int dirfd, const char *path, mode_t mode);
int lcf_real_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev);
int lcf_real_unlinkat(int dirfd, const char *path, int flags);
int lcf_real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       unsigned int flags);
int lcf_real_chdir(const char *path);
int lcf_real_symlinkat(const char *target, int dirfd, const char *path);
int lcf_real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                    int flags);
int lcf_real_fchmodat(int dirfd, const char *path, mode_t mode, int flags);
int lcf_real_fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags);
int lcf_real_utimensat(int dirfd, const char *path, const struct timespec times[2], int flags);
int lcf_real_truncate(const char *path, off_t length);
int lcf_real_fchmod(int fd, mode_t mode);
int lcf_real_fchown(int fd, uid_t uid, gid_t gid);
int lcf_real_futimens(int fd, const struct timespec times[2]);
/* getxattr/lgetxattr and listxattr/llistxattr: `follow` picks the first */
ssize_t lcf_real_getxattr(bool follow, const char *path, const char *name, void *value, size_t size);
ssize_t lcf_real_listxattr(bool follow, const char *path, char *list, size_t size);

/* sockets */
int lcf_real_bind(int fd, const struct sockaddr *addr, socklen_t len);
int lcf_real_listen(int fd, int backlog);
ssize_t lcf_real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                        socklen_t len);
int lcf_real_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);

#endif
