/* net.c — the socket wrappers: connect and bind on AF_UNIX, AF_INET and AF_INET6 sockets, and
 * sendto, sendmsg and sendmmsg with a destination address. The program's socket travels with the
 * call; the master connects or binds it in place, answers with an errno, may send a replacement
 * socket (which takes the original's descriptor number), or lets the program do the real call.
 * Other families, unix autobind and malformed addresses go to libc, whose kernel answer is the
 * right one.
 *
 * A send with a destination is asked about as a connect to it (connect_unix, connect_inet or
 * connect_inet6, with the symbol the program called), never as a new kind of call:
 * - a datagram socket (UDP, unix SOCK_DGRAM; and any other inet socket but TCP, which the master
 *   refuses) stays as it is: the master answers -1 with an errno (unrouted: a violation, and the
 *   datagram never leaves), or 0 with a probe socket connected to the real loopback (or unix)
 *   endpoint. The shim reads the probe's peer address, closes it, checks that it is loopback or
 *   unix, and sends the datagram there from the program's own socket. 0 without a socket drops
 *   the datagram (the send reports it sent);
 * - MSG_FASTOPEN on a stream socket is a connect and a send: the master connects the socket in
 *   place as for connect, then the shim sends without the address;
 * - TCP without MSG_FASTOPEN, and unix stream and seqpacket sockets, ignore or refuse the address:
 *   the call goes to libc.
 * sendmmsg with any destination is sent one message at a time, each asked about.
 *
 * The master connects and binds on loopback, so the kernel knows only the real addresses. The shim
 * remembers the virtual ones (the address the program gave to a connect or bind the master
 * answered), per socket, and getsockname, getpeername and accept report those. */

#include "shim.h"
#include "real.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ==================================================================== real functions ===== */
/* libc's own functions: for lcf_in_real, and for the calls the shim hands to libc undecided
 * (families it does not model, malformed addresses: under libcfake-launch they trap, and the
 * master decides). A call the master let through (PASSED), or one whose destination it gave
 * (SEND_TO, SEND_CONNECTED), goes through the gate (lcf_real_*, real.h). */

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

static ssize_t real_sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t len)
{
    LCF_REAL(sendto, ssize_t, int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    return libc_sendto(fd, buf, n, flags, addr, len);
}

static ssize_t real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    LCF_REAL(sendmsg, ssize_t, int, const struct msghdr *, int);
    return libc_sendmsg(fd, msg, flags);
}

static int real_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    LCF_REAL(sendmmsg, int, int, struct mmsghdr *, unsigned int, int);
    return libc_sendmmsg(fd, vec, vlen, flags);
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
    uint64_t ino = lcf_real_fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_ino : 0;
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

static bool unbound_inet(int fd);

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
static int describe(struct lcf_request *req, bool is_bind, const char *symbol,
                    const struct sockaddr *addr, socklen_t len, char path[LCF_MAX_PATH + 1])
{
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

/* Reads the socket's domain, type and protocol into sock. Returns 0, or -1 if fd is no socket. */
static int query_socket(int fd, int sock[3])
{
    static const int options[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
    for (int i = 0; i < 3; i++) {
        socklen_t size = sizeof sock[i];
        if (getsockopt(fd, SOL_SOCKET, options[i], &sock[i], &size) < 0)
            return -1;
    }
    return 0;
}

/* Fills the socket's domain, type and protocol and adds it to the request. */
static void describe_socket(struct lcf_request *req, int fd, const int sock[3])
{
    req->call.family = sock[0];
    req->call.socktype = sock[1];
    req->call.protocol = sock[2];
    lcf_request_fd(req, LCF_FD_SOCKET, fd);
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

/* What net_forward returns besides the program's result (0, or -1 with errno). */
#define UNDECIDED 1                /* libc makes the call: the shim does not model it */
#define PASSED 2                   /* the master let the call through: made through the gate */

/* Forwards a connect or bind of fd to addr, made through symbol, and applies the answer. Returns
 * the program's result (0, or -1 with errno), UNDECIDED or PASSED. */
static int net_forward(bool is_bind, const char *symbol, int fd, const struct sockaddr *addr,
                       socklen_t len)
{
    struct lcf_request req;
    char path[LCF_MAX_PATH + 1];
    int sock[3];
    int described = describe(&req, is_bind, symbol, addr, len, path);
    if (described <= 0)
        return described < 0 ? -1 : UNDECIDED;
    int saved = errno;
    if (query_socket(fd, sock) < 0) {
        errno = saved;
        return UNDECIDED;
    }
    int fd_flags = fcntl(fd, F_GETFD);
    int status_flags = fcntl(fd, F_GETFL);
    describe_socket(&req, fd, sock);
    struct lcf_reply reply;
    int newfd;
    int action = lcf_forward(&req, &reply, &newfd, NULL, 0);
    if (action == LCF_PASSTHROUGH)
        return PASSED;
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
    return 0;
}

/* The kernel's reading of bind's AF_UNSPEC on an AF_INET socket: the wildcard address (which the
 * kernel accepts as AF_INET, to all interfaces) becomes AF_INET in the copy, so that the network
 * model decides it; any other AF_UNSPEC address stays (the kernel refuses it). */
static void bind_unspec(int fd, struct sockaddr_storage *copy, socklen_t len)
{
    int saved = errno;
    int domain;
    socklen_t size = sizeof domain;
    struct sockaddr_in *in = (struct sockaddr_in *)copy;
    if (copy->ss_family == AF_UNSPEC && len >= sizeof *in && in->sin_addr.s_addr == INADDR_ANY &&
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) == 0 && domain == AF_INET)
        copy->ss_family = AF_INET;
    errno = saved;
}

/* connect and bind. The address is copied into the shim's memory first, and only the copy is
 * decided on and handed to libc: a second thread rewriting the program's buffer after the check
 * changes nothing. */
static int net_call(bool is_bind, int fd, const struct sockaddr *addr, socklen_t len)
{
    if (lcf_in_real || addr == NULL || len < sizeof(sa_family_t) ||
        len > sizeof(struct sockaddr_storage)) /* the kernel refuses it before reading it */
        return real_call(is_bind, fd, addr, len);
    struct sockaddr_storage copy;
    memcpy(&copy, addr, len);
    if (is_bind)
        bind_unspec(fd, &copy, len);
    const struct sockaddr *own = (const struct sockaddr *)&copy;
    int ret = net_forward(is_bind, is_bind ? "bind" : "connect", fd, own, len);
    if (ret == PASSED)
        return is_bind ? lcf_real_bind(fd, own, len) : lcf_real_connect(fd, own, len);
    return ret == UNDECIDED ? real_call(is_bind, fd, own, len) : ret;
}

LCF_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return net_call(false, fd, addr.__sockaddr__, len);
}

LCF_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return net_call(true, fd, addr.__sockaddr__, len);
}

/* ============================================================================ listen ===== */

/* Whether an inet socket has no address yet (its port is 0). */
static bool unbound_inet(int fd)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (real_getsockname(fd, (struct sockaddr *)&local, &len) < 0)
        return false;
    if (local.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return ((struct sockaddr_in *)&local)->sin_port == 0;
    if (local.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        return ((struct sockaddr_in6 *)&local)->sin6_port == 0;
    return false;
}

/* listen on an unbound inet stream (or SCTP seqpacket) socket binds it first, to a port of every
 * interface: asked of the network model as the bind of the wildcard address and port 0 that it
 * is. Returns 0 (the master bound it), PASSED (the listen binds it), UNDECIDED (nothing the
 * network model decides), or -1 with errno (refused). */
static int listen_bind(int fd)
{
    int saved = errno;
    int sock[3];
    if (query_socket(fd, sock) < 0 || (sock[1] != SOCK_STREAM && sock[1] != SOCK_SEQPACKET) ||
        (sock[0] != AF_INET && sock[0] != AF_INET6) || !unbound_inet(fd)) {
        errno = saved;
        return UNDECIDED;
    }
    struct sockaddr_storage any;
    memset(&any, 0, sizeof any);
    any.ss_family = (sa_family_t)sock[0];
    socklen_t len = sock[0] == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return net_forward(true, "listen", fd, (const struct sockaddr *)&any, len);
}

/* The listen goes through the gate when the network model decided the bind it makes (the master
 * bound the socket, or let the listen bind it); otherwise it is libc's. */
LCF_EXPORT int listen(int fd, int backlog)
{
    LCF_REAL(listen, int, int, int);
    if (lcf_in_real)
        return libc_listen(fd, backlog);
    int bound = listen_bind(fd);
    if (bound < 0)
        return -1;
    return bound == UNDECIDED ? libc_listen(fd, backlog) : lcf_real_listen(fd, backlog);
}

/* ============================================================================== send ===== */

/* What becomes of a send with a destination address. */
enum send_plan {
    SEND_AS_IS,                    /* libc makes the call as the program asked */
    SEND_PASSED,                   /* the master let it through: as asked, through the gate */
    SEND_TO,                       /* send to the real destination the master gave */
    SEND_CONNECTED,                /* MSG_FASTOPEN: the master connected the socket; send without
                                    * the address (and the flag) */
    SEND_DROPPED,                  /* the master swallowed the datagram: report it sent */
    SEND_FAILED                    /* -1 with errno */
};

/* The kernel's cap on sendmmsg's vlen (UIO_MAXIOV). */
#define SENDMMSG_MAX 1024u

/* The destination a datagram socket (sock: domain, type, protocol) sends to, as the kernel reads
 * addr, copied to *dest: an IPv4 address on an IPv6 socket as its v4-mapped form, AF_UNSPEC as the
 * family UDP and raw sockets take it for. Returns its length, or 0 when the kernel ignores or
 * refuses the address (libc then makes the call: nothing can leave). */
static socklen_t datagram_destination(const int sock[3], const struct sockaddr *addr,
                                      socklen_t len, struct sockaddr_storage *dest)
{
    int domain = sock[0];
    int family = addr->sa_family;
    if (family == AF_UNSPEC) /* UDP and raw IPv4 read it as AF_INET, raw IPv6 as AF_INET6 */
        family = domain == AF_INET || (domain == AF_INET6 && sock[1] == SOCK_RAW) ? domain : -1;
    memset(dest, 0, sizeof *dest);
    memcpy(dest, addr, len);
    dest->ss_family = (sa_family_t)family;
    if (family == AF_INET && domain == AF_INET6) {
        struct sockaddr_in in;
        if (len < sizeof in)
            return 0;
        memcpy(&in, addr, sizeof in);
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)dest;
        memset(dest, 0, sizeof *dest);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = in.sin_port;
        in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&in6->sin6_addr.s6_addr[12], &in.sin_addr, sizeof in.sin_addr);
        return sizeof *in6;
    }
    return family == domain ? len : 0;
}

/* Whether a destination the master gave stays on this machine: a unix address, 127.0.0.0/8,
 * ::1, or ::ffff:127.0.0.0/104. */
static bool is_local(const struct sockaddr_storage *a, socklen_t len)
{
    if (a->ss_family == AF_UNIX)
        return len > offsetof(struct sockaddr_un, sun_path);
    if (a->ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss_family != AF_INET6 || len < sizeof(struct sockaddr_in6))
        return false;
    const struct in6_addr *ip = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(ip) || (IN6_IS_ADDR_V4MAPPED(ip) && ip->s6_addr[12] == 127);
}

/* Before a routed datagram leaves an unbound inet socket: binds it to the loopback address of the
 * destination's kind, so that the send does not bind it to a port of every interface (the kernel's
 * autobind), where anyone could send to it. Returns 0, or -1 with errno. */
static int bind_loopback(int fd, const int sock[3], const struct sockaddr_storage *real)
{
    if ((sock[0] != AF_INET && sock[0] != AF_INET6) || !unbound_inet(fd))
        return 0;
    struct sockaddr_storage local;
    memset(&local, 0, sizeof local);
    socklen_t len = sizeof(struct sockaddr_in);
    if (sock[0] == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&local;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
        in6->sin6_family = AF_INET6;
        if (real->ss_family == AF_INET6 &&
            IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)real)->sin6_addr)) {
            in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
            in6->sin6_addr.s6_addr[12] = 127;
            in6->sin6_addr.s6_addr[15] = 1;
        } else {
            in6->sin6_addr = in6addr_loopback;
        }
        len = sizeof *in6;
    }
    int saved = errno;
    if (lcf_real_bind(fd, (struct sockaddr *)&local, len) == 0 || !unbound_inet(fd)) {
        errno = saved; /* (or another thread bound it meanwhile) */
        return 0;
    }
    return -1;
}

/* Asks the master where a datagram from fd to dest goes; SEND_TO with *real the probe's peer. */
static enum send_plan ask_datagram(const char *symbol, int fd, const int sock[3],
                                   const struct sockaddr *dest, socklen_t len,
                                   struct sockaddr_storage *real, socklen_t *real_len)
{
    struct lcf_request req;
    char path[LCF_MAX_PATH + 1];
    int described = describe(&req, false, symbol, dest, len, path);
    if (described <= 0)
        return described < 0 ? SEND_FAILED : SEND_AS_IS;
    describe_socket(&req, fd, sock);
    struct lcf_reply reply;
    int probe;
    int action = lcf_forward(&req, &reply, &probe, NULL, 0);
    if (action == LCF_PASSTHROUGH)
        return SEND_PASSED;
    if (action < 0)
        return SEND_FAILED;
    if (reply.result < 0) {
        if (probe >= 0)
            close(probe);
        errno = reply.error;
        return SEND_FAILED;
    }
    if (probe < 0)
        return SEND_DROPPED;
    *real_len = sizeof *real;
    int got = real_getpeername(probe, (struct sockaddr *)real, real_len);
    close(probe);
    if (got < 0 || *real_len > sizeof *real || !is_local(real, *real_len)) {
        static const char message[] = "libcfake: a send's destination from the master is not "
                                      "on loopback: not sent\n";
        ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
        (void)ignored;
        errno = EIO;
        return SEND_FAILED;
    }
    return bind_loopback(fd, sock, real) < 0 ? SEND_FAILED : SEND_TO;
}

/* Decides a send from fd to addr (len bytes, at most a sockaddr_storage) made through symbol. */
static enum send_plan plan_send(const char *symbol, int fd, const struct sockaddr *addr,
                                socklen_t len, int flags, struct sockaddr_storage *real,
                                socklen_t *real_len)
{
    int sock[3];
    if (len < sizeof(sa_family_t) || query_socket(fd, sock) < 0)
        return SEND_AS_IS;
    int domain = sock[0], type = sock[1], protocol = sock[2];
    if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6)
        return SEND_AS_IS;
    if (domain != AF_UNIX && type == SOCK_STREAM) {
        bool tcp = protocol == IPPROTO_TCP || protocol == IPPROTO_MPTCP;
        if (tcp && !(flags & MSG_FASTOPEN)) /* the kernel ignores the address */
            return SEND_AS_IS;
        int ret = net_forward(false, symbol, fd, addr, len); /* connect, then send */
        return ret == UNDECIDED ? SEND_AS_IS
               : ret == PASSED  ? SEND_PASSED
               : ret == 0       ? SEND_CONNECTED
                                : SEND_FAILED;
    }
    if (domain == AF_UNIX && type != SOCK_DGRAM) /* stream: refused; seqpacket: ignored */
        return SEND_AS_IS;
    struct sockaddr_storage dest;
    socklen_t dest_len = datagram_destination(sock, addr, len, &dest);
    if (dest_len == 0)
        return SEND_AS_IS;
    return ask_datagram(symbol, fd, sock, (struct sockaddr *)&dest, dest_len, real, real_len);
}

LCF_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG to,
                          socklen_t len)
{
    const struct sockaddr *given = to.__sockaddr__;
    if (lcf_in_real || given == NULL || len < sizeof(sa_family_t) ||
        len > sizeof(struct sockaddr_storage)) /* EINVAL */
        return real_sendto(fd, buf, n, flags, given, len);
    int saved = errno;
    struct sockaddr_storage copy, real; /* only the copy is decided on and sent to */
    memcpy(&copy, given, len);
    const struct sockaddr *addr = (const struct sockaddr *)&copy;
    socklen_t real_len = 0;
    switch (plan_send("sendto", fd, addr, len, flags, &real, &real_len)) {
    case SEND_FAILED:
        return -1;
    case SEND_DROPPED:
        errno = saved;
        return (ssize_t)n;
    case SEND_CONNECTED:
        errno = saved;
        return lcf_real_sendto(fd, buf, n, flags & ~MSG_FASTOPEN, NULL, 0);
    case SEND_TO:
        errno = saved;
        return lcf_real_sendto(fd, buf, n, flags, (const struct sockaddr *)&real, real_len);
    case SEND_PASSED:
        errno = saved;
        return lcf_real_sendto(fd, buf, n, flags, addr, len);
    case SEND_AS_IS:
        break;
    }
    errno = saved;
    return real_sendto(fd, buf, n, flags, addr, len);
}

/* The bytes a message carries. */
static ssize_t message_size(const struct msghdr *msg)
{
    size_t total = 0;
    for (size_t i = 0; msg->msg_iov != NULL && i < msg->msg_iovlen; i++)
        total += msg->msg_iov[i].iov_len;
    return total > SSIZE_MAX ? SSIZE_MAX : (ssize_t)total;
}

static ssize_t send_message(const char *symbol, int fd, const struct msghdr *msg, int flags)
{
    /* the kernel takes no address for a NULL name or a zero length, refuses a negative one and
     * reads at most a sockaddr_storage */
    if (lcf_in_real || msg == NULL)
        return real_sendmsg(fd, msg, flags);
    struct msghdr copy = *msg; /* read once: the name is decided on and sent from the copy */
    if (copy.msg_name == NULL || (int)copy.msg_namelen <= 0) /* no destination: send(2) */
        return lcf_real_sendmsg(fd, &copy, flags);
    socklen_t len = copy.msg_namelen;
    if (len > sizeof(struct sockaddr_storage))
        len = sizeof(struct sockaddr_storage);
    int saved = errno;
    struct sockaddr_storage name, real;
    socklen_t real_len = 0;
    memcpy(&name, copy.msg_name, len);
    copy.msg_name = &name;
    copy.msg_namelen = len;
    switch (plan_send(symbol, fd, (const struct sockaddr *)&name, len, flags, &real, &real_len)) {
    case SEND_FAILED:
        return -1;
    case SEND_DROPPED:
        errno = saved;
        return message_size(&copy);
    case SEND_CONNECTED:
        copy.msg_name = NULL;
        copy.msg_namelen = 0;
        flags &= ~MSG_FASTOPEN;
        break;
    case SEND_TO:
        copy.msg_name = &real;
        copy.msg_namelen = real_len;
        break;
    case SEND_PASSED:
        break;
    case SEND_AS_IS:
        errno = saved;
        return real_sendmsg(fd, &copy, flags);
    }
    errno = saved;
    return lcf_real_sendmsg(fd, &copy, flags);
}

LCF_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return send_message("sendmsg", fd, msg, flags);
}

/* sendmmsg with a destination in any message: sent one message at a time, as the kernel counts
 * them (the number sent; -1 with errno only when the first fails). */
LCF_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    if (vlen > SENDMMSG_MAX)
        vlen = SENDMMSG_MAX;
    bool named = false;
    for (unsigned int i = 0; !lcf_in_real && vec != NULL && i < vlen && !named; i++)
        named = vec[i].msg_hdr.msg_name != NULL && (int)vec[i].msg_hdr.msg_namelen > 0;
    if (!named)
        return real_sendmmsg(fd, vec, vlen, flags);
    int saved = errno;
    unsigned int sent = 0;
    for (; sent < vlen; sent++) {
        ssize_t n = send_message("sendmmsg", fd, &vec[sent].msg_hdr, flags);
        if (n < 0)
            break;
        vec[sent].msg_len = (unsigned int)n;
    }
    if (sent == 0)
        return -1;
    errno = saved;
    return (int)sent;
}

LCF_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    socklen_t capacity = len != NULL ? *len : 0; /* the real call overwrites it */
    int ret = real_getsockname(fd, addr.__sockaddr__, len);
    if (ret < 0 || lcf_in_real)
        return ret;
    struct virtual_socket *slot = virtual_find(socket_inode(fd));
    if (slot == NULL || slot->local.len == 0)
        return ret;
    *len = capacity; /* the virtual name may be longer than the real one */
    return virtual_get(&slot->local, addr.__sockaddr__, len);
}

LCF_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    socklen_t capacity = len != NULL ? *len : 0; /* the real call overwrites it */
    int ret = real_getpeername(fd, addr.__sockaddr__, len);
    if (ret < 0 || lcf_in_real)
        return ret;
    struct virtual_socket *slot = virtual_find(socket_inode(fd));
    if (slot == NULL || slot->peer.len == 0)
        return ret;
    *len = capacity; /* the virtual name may be longer than the real one */
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
