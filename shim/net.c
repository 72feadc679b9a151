/* net.c — the socket wrappers: connect and bind on AF_UNIX, AF_INET and AF_INET6 sockets. The
 * program's socket travels with the call; the master connects or binds it in place, answers with
 * an errno, may send a replacement socket (which takes the original's descriptor number), or lets
 * the program do the real call. Other families, unix autobind and malformed addresses go to libc,
 * whose kernel answer is the right one.
 *
 * The master connects and binds on loopback, so the kernel knows only the real addresses. The shim
 * remembers the virtual ones (the address the program gave to a connect or bind the master
 * answered), per socket, and getsockname, getpeername and accept report those. */

#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* ================================================================= virtual addresses ===== */

/* The virtual addresses of sockets the master connected or bound, keyed by the socket's inode
 * (dups and forks share it; closing the socket retires the inode). Lock-free: a slot is claimed
 * with a compare-and-swap on its inode; when the table is full the oldest slot is reused, and a
 * socket whose entry was lost shows its real address. A racing reader may see a half-written
 * address only if the same socket is connected or bound concurrently. */
#define VIRTUAL_SLOTS 256

struct virtual_address {
    struct sockaddr_storage addr;
    socklen_t len;                 /* 0: not known */
};

struct virtual_socket {
    uint64_t ino;                  /* 0: free */
    struct virtual_address local;  /* what getsockname reports (a bind's address) */
    struct virtual_address peer;   /* what getpeername reports (a connect's address) */
};

static struct virtual_socket virtual_sockets[VIRTUAL_SLOTS];
static unsigned virtual_next; /* the slot reused next when the table is full */

static int real_fstat(int fd, struct stat *st)
{
    LCF_REAL(fstat, int, int, struct stat *);
    return libc_fstat(fd, st);
}

static int real_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    LCF_REAL(getsockname, int, int, struct sockaddr *, socklen_t *);
    return libc_getsockname(fd, addr, len);
}

static int real_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    LCF_REAL(getpeername, int, int, struct sockaddr *, socklen_t *);
    return libc_getpeername(fd, addr, len);
}

static uint64_t socket_inode(int fd)
{
    struct stat st;
    int saved = errno;
    uint64_t ino = real_fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_ino : 0;
    errno = saved;
    return ino;
}

static struct virtual_socket *virtual_find(uint64_t ino)
{
    if (ino == 0)
        return NULL;
    for (unsigned i = 0; i < VIRTUAL_SLOTS; i++)
        if (__atomic_load_n(&virtual_sockets[i].ino, __ATOMIC_ACQUIRE) == ino)
            return &virtual_sockets[i];
    return NULL;
}

/* The slot of ino, claimed (and cleared) if it had none. */
static struct virtual_socket *virtual_claim(uint64_t ino)
{
    struct virtual_socket *slot = virtual_find(ino);
    if (slot != NULL || ino == 0)
        return slot;
    for (unsigned i = 0; i < VIRTUAL_SLOTS; i++) {
        uint64_t expected = 0;
        slot = &virtual_sockets[i];
        if (__atomic_compare_exchange_n(&slot->ino, &expected, ino, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            goto claimed;
    }
    unsigned oldest = __atomic_fetch_add(&virtual_next, 1, __ATOMIC_RELAXED) % VIRTUAL_SLOTS;
    slot = &virtual_sockets[oldest];
    __atomic_store_n(&slot->ino, ino, __ATOMIC_RELEASE);
claimed:
    slot->local.len = 0;
    slot->peer.len = 0;
    return slot;
}

static void virtual_set(struct virtual_address *va, const struct sockaddr *addr, socklen_t len)
{
    if (len > sizeof va->addr)
        len = sizeof va->addr;
    memcpy(&va->addr, addr, len);
    va->len = len;
}

/* Copies a remembered address out as the kernel would: truncated to *len, *len the full size. */
static int virtual_get(const struct virtual_address *va, struct sockaddr *addr, socklen_t *len)
{
    memcpy(addr, &va->addr, va->len < *len ? va->len : *len);
    *len = va->len;
    return 0;
}

/* After a bind the master performed: the program's address, with the real port if it asked for
 * port 0 (the kernel's pick is the one other programs reach it at). */
static void remember_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct virtual_socket *slot = virtual_claim(socket_inode(fd));
    if (slot == NULL)
        return;
    virtual_set(&slot->local, addr, len);
    struct sockaddr_storage real;
    socklen_t real_len = sizeof real;
    bool inet = addr->sa_family == AF_INET || addr->sa_family == AF_INET6;
    struct sockaddr_in *local = (struct sockaddr_in *)&slot->local.addr; /* port: same offset */
    if (inet && local->sin_port == 0 &&                                     /* in sockaddr_in6 */
        real_getsockname(fd, (struct sockaddr *)&real, &real_len) == 0)
        local->sin_port = ((struct sockaddr_in *)&real)->sin_port;
}

static void remember_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct virtual_socket *slot = virtual_claim(socket_inode(fd));
    if (slot != NULL)
        virtual_set(&slot->peer, addr, len);
}

/* An accepted connection's local address is its listener's virtual one. */
static void remember_accept(int listener, int fd)
{
    struct virtual_socket *from = virtual_find(socket_inode(listener));
    if (from == NULL || from->local.len == 0)
        return;
    struct virtual_socket *slot = virtual_claim(socket_inode(fd));
    if (slot != NULL)
        slot->local = from->local;
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
    bool connecting = !is_bind && reply.result < 0 && reply.error == EINPROGRESS;
    if (reply.result == 0 || connecting) {
        if (is_bind)
            remember_bind(fd, addr, len);
        else
            remember_connect(fd, addr, len);
    }
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

LCF_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    int ret = real_getsockname(fd, addr.__sockaddr__, len);
    if (ret < 0 || lcf_in_real)
        return ret;
    struct virtual_socket *slot = virtual_find(socket_inode(fd));
    if (slot == NULL || slot->local.len == 0)
        return ret;
    return virtual_get(&slot->local, addr.__sockaddr__, len);
}

LCF_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    int ret = real_getpeername(fd, addr.__sockaddr__, len);
    if (ret < 0 || lcf_in_real)
        return ret;
    struct virtual_socket *slot = virtual_find(socket_inode(fd));
    if (slot == NULL || slot->peer.len == 0)
        return ret;
    return virtual_get(&slot->peer, addr.__sockaddr__, len);
}

/* ============================================================================ accept ===== */

LCF_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
    LCF_REAL(accept4, int, int, __SOCKADDR_ARG, socklen_t *, int);
    int ret = libc_accept4(fd, addr, len, flags);
    if (ret >= 0 && !lcf_in_real) {
        int saved = errno;
        remember_accept(fd, ret);
        errno = saved;
    }
    return ret;
}

LCF_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    LCF_REAL(accept, int, int, __SOCKADDR_ARG, socklen_t *);
    int ret = libc_accept(fd, addr, len);
    if (ret >= 0 && !lcf_in_real) {
        int saved = errno;
        remember_accept(fd, ret);
        errno = saved;
    }
    return ret;
}
