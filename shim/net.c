/* net.c — the socket wrappers: connect and bind on AF_UNIX, AF_INET and AF_INET6 sockets. The
 * program's socket travels with the call; the master connects or binds it in place, answers with
 * an errno, may send a replacement socket (which takes the original's descriptor number), or lets
 * the program do the real call. Other families, unix autobind and malformed addresses go to libc,
 * whose kernel answer is the right one. */

#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ==================================================================== real functions ===== */

static int real_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    LCF_REAL(connect, int, int, const struct sockaddr *, socklen_t);
    return libc_connect(fd, addr, len);
}

static int real_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    LCF_REAL(bind, int, int, const struct sockaddr *, socklen_t);
    return libc_bind(fd, addr, len);
}

static int real_call(bool is_bind, int fd, const struct sockaddr *addr, socklen_t len)
{
    return is_bind ? real_bind(fd, addr, len) : real_connect(fd, addr, len);
}

/* ========================================================================= addresses ===== */

/* Describes a unix address in req. Returns 1, 0 for an address libc should handle, or -1 with
 * errno when a relative path does not resolve. */
static int describe_unix(struct lcf_request *req, const struct sockaddr *addr, socklen_t len,
                         char path[LCF_MAX_PATH + 1])
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
    size_t size = len - offsetof(struct sockaddr_un, sun_path);
    if (len > sizeof *un || size == 0) /* too long for the kernel, or autobind */
        return 0;
    if (un->sun_path[0] == '\0') { /* abstract: the name is every byte, the leading NUL too */
        req->str1 = un->sun_path;
        req->call.length1 = (int32_t)size;
        return 1;
    }
    size_t n = strnlen(un->sun_path, size);
    if (un->sun_path[0] == '/') {
        req->str1 = un->sun_path;
        req->call.length1 = (int32_t)n;
        return 1;
    }
    int resolved = lcf_resolve_cwd(path, un->sun_path, n);
    if (resolved < 0)
        return -1;
    req->str1 = path;
    req->call.length1 = resolved;
    return 1;
}

static int describe_inet(struct lcf_request *req, const struct sockaddr *addr, socklen_t len)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    if (len < sizeof *in)
        return 0;
    req->call.port = ntohs(in->sin_port);
    memcpy(req->call.address, &in->sin_addr, sizeof in->sin_addr);
    return 1;
}

static int describe_inet6(struct lcf_request *req, const struct sockaddr *addr, socklen_t len)
{
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
    if (len < offsetof(struct sockaddr_in6, sin6_scope_id)) /* the kernel's SIN6_LEN_RFC2133 */
        return 0;
    req->call.port = ntohs(in6->sin6_port);
    req->call.flowinfo = ntohl(in6->sin6_flowinfo);
    req->call.scope_id = len < sizeof *in6 ? 0 : in6->sin6_scope_id; /* RFC 2133 had none */
    memcpy(req->call.address, &in6->sin6_addr, sizeof in6->sin6_addr);
    return 1;
}

/* Starts the request for addr. Returns 1, 0 when libc should handle the call, or -1 with errno. */
static int describe(struct lcf_request *req, bool is_bind, const struct sockaddr *addr,
                    socklen_t len, char path[LCF_MAX_PATH + 1])
{
    const char *symbol = is_bind ? "bind" : "connect";
    switch (addr->sa_family) {
    case AF_UNIX:
        lcf_request_init(req, is_bind ? LCF_BIND_UNIX : LCF_CONNECT_UNIX, symbol);
        return describe_unix(req, addr, len, path);
    case AF_INET:
        lcf_request_init(req, is_bind ? LCF_BIND_INET : LCF_CONNECT_INET, symbol);
        return describe_inet(req, addr, len);
    case AF_INET6:
        lcf_request_init(req, is_bind ? LCF_BIND_INET6 : LCF_CONNECT_INET6, symbol);
        return describe_inet6(req, addr, len);
    default:
        return 0;
    }
}

/* Fills the socket's domain, type and protocol. Returns 0, or -1 if fd is no socket. */
static int describe_socket(struct lcf_request *req, int fd)
{
    int value[3];
    static const int options[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
    for (int i = 0; i < 3; i++) {
        socklen_t size = sizeof value[i];
        if (getsockopt(fd, SOL_SOCKET, options[i], &value[i], &size) < 0)
            return -1;
    }
    req->call.family = value[0];
    req->call.socktype = value[1];
    req->call.protocol = value[2];
    return 0;
}

/* ============================================================================= calls ===== */

/* Puts the master's socket newfd in place of the program's fd, keeping the descriptor's
 * close-on-exec flag and the file's O_NONBLOCK as they were. Returns 0, or -1 with errno. */
static int adopt_socket(int newfd, int fd, int fd_flags, int status_flags)
{
    int ret = dup3(newfd, fd, (fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    int err = errno;
    close(newfd);
    if (ret < 0) {
        errno = err;
        return -1;
    }
    int now = fcntl(fd, F_GETFL);
    if (now >= 0 && (now & O_NONBLOCK) != (status_flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, (now & ~O_NONBLOCK) | (status_flags & O_NONBLOCK));
    return 0;
}

static int net_call(bool is_bind, int fd, const struct sockaddr *addr, socklen_t len)
{
    struct lcf_request req;
    char path[LCF_MAX_PATH + 1];
    if (lcf_in_real || addr == NULL || len < sizeof(sa_family_t))
        return real_call(is_bind, fd, addr, len);
    int described = describe(&req, is_bind, addr, len, path);
    if (described < 0)
        return -1;
    if (described == 0 || describe_socket(&req, fd) < 0)
        return real_call(is_bind, fd, addr, len);
    int saved = errno;
    int fd_flags = fcntl(fd, F_GETFD);
    int status_flags = fcntl(fd, F_GETFL);
    lcf_request_fd(&req, LCF_FD_SOCKET, fd);
    struct lcf_reply reply;
    int newfd;
    int action = lcf_forward(&req, &reply, &newfd, NULL, 0);
    if (action == LCF_PASSTHROUGH)
        return real_call(is_bind, fd, addr, len);
    if (action < 0)
        return -1;
    if (newfd >= 0 && adopt_socket(newfd, fd, fd_flags, status_flags) < 0)
        return -1;
    if (reply.result < 0) {
        errno = reply.error;
        return -1;
    }
    errno = saved;
    return reply.result;
}

LCF_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return net_call(false, fd, addr.__sockaddr__, len);
}

LCF_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return net_call(true, fd, addr.__sockaddr__, len);
}
