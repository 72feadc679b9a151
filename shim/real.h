/* real.h — libc's own functions for the channel (real.c): the shim exports wrappers of the same
 * names (sendmsg in net.c, readlink and openat in fs.c and dir.c, connect in net.c), and a call the
 * channel makes for itself must never pass through them. The lookups shared by the wrappers
 * (lcf_dlsym, lcf_real_fstat, lcf_real_fstatat, lcf_real_getcwd) are declared in shim.h. */
#ifndef LIBCFAKE_REAL_H
#define LIBCFAKE_REAL_H

#include "shim.h"

#include <sys/socket.h>

int lcf_real_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t lcf_real_readlink(const char *path, char *buf, size_t size);
int lcf_real_openat(int dirfd, const char *path, int flags);
ssize_t lcf_real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t lcf_real_recvmsg(int fd, struct msghdr *msg, int flags);

#endif
