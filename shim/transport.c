/* transport.c — packets to and from the master (see transport.h) and the memfds it sends. Every
 * packet goes through libc's own sendmsg and recvmsg (real.c), never the shim's wrappers. */

#include "transport.h"
#include "real.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct lcf_hello) == 56, "wire layout");
_Static_assert(sizeof(struct lcf_welcome) == 64, "wire layout");
_Static_assert(sizeof(struct lcf_ring) == 64, "wire layout");
_Static_assert(sizeof(struct lcf_call) == 152, "wire layout");
_Static_assert(sizeof(struct lcf_reply) == 40, "wire layout");
_Static_assert(sizeof(struct lcf_stat) == 120, "wire layout");
_Static_assert(sizeof(struct lcf_address) == 40, "wire layout");
_Static_assert(sizeof(struct lcf_note) == 72, "wire layout");
_Static_assert(sizeof(struct lcf_snapshot_slot) == 160, "wire layout");

long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

long long now_ms(void)
{
    return now_ns() / 1000000;
}

/* Waits until fd has events or the deadline passes; interruptions by signals are sat out.
 * Returns 1 (ready), 0 (timed out) or -1 (errno). */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0 || (n == 0 && left == 0))
            return n;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

void header_init(struct lcf_header *h, uint16_t kind, size_t length, uint32_t seq)
{
    h->magic = LCF_MAGIC;
    h->version = LCF_VERSION;
    h->kind = kind;
    h->length = (uint32_t)length;
    h->seq = seq;
}

int send_packet(int fd, struct iovec *iov, int iovcnt, const int *fds, int nfds,
                long long deadline, struct line *l)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * LCF_MAX_FDS)];
    } control;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    for (int waited = 0;;) {
        if (lcf_real_sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
            return waited;
        int err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN) {
            int ready = wait_fd(fd, POLLOUT, deadline);
            waited = 1;
            if (ready > 0)
                continue;
            if (ready == 0) {
                line_str(l, "the master did not take the call in time");
                return -1;
            }
            err = errno;
        }
        if (err == EPIPE || err == ECONNRESET) {
            line_str(l, "the master closed the connection");
        } else {
            line_str(l, "cannot send to the master");
            line_errno(l, err);
        }
        return -1;
    }
}

void close_fds(struct packet *p)
{
    for (int i = 0; i < p->nfds; i++)
        close(p->fds[i]);
    p->nfds = 0;
}

static void take_fds(struct msghdr *msg, struct packet *p)
{
    p->nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (p->nfds < LCF_MAX_FDS)
                p->fds[p->nfds++] = fd;
            else
                close(fd);
        }
    }
}

/* Tries recvmsg without waiting until a packet comes or spin_ns have passed, yielding the CPU
 * between tries (to the master, when it runs on this thread's CPU). recvmsg's result; EAGAIN
 * when the time ran out. */
static ssize_t recv_spinning(int fd, struct msghdr *msg, int flags, long long spin_ns)
{
    long long until = now_ns() + spin_ns;
    for (;;) {
        ssize_t n = lcf_real_recvmsg(fd, msg, flags | MSG_DONTWAIT);
        if (n >= 0 || errno != EAGAIN || now_ns() >= until)
            return n;
        sched_yield();
    }
}

/* Receives one packet into iov. Returns 0, or -1 with the reason in l; `what` names the awaited
 * message ("reply", "welcome") for the timeout line. `spin_ns`: how long to try first without
 * sleeping (see recv_spinning and SPIN_NS). `blocking`: the socket blocks, its SO_RCVTIMEO being
 * the whole time to the deadline (see conn_blocking), so the first wait is in recvmsg itself, one
 * system call where poll and recvmsg are two; a signal or that timeout lead to the poll loop,
 * which keeps to the deadline. */
int recv_packet(int fd, long long spin_ns, bool blocking, struct iovec *iov, int iovcnt,
                struct packet *p, long long deadline, uint32_t timeout_ms, const char *what,
                struct line *l)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * LCF_MAX_FDS)];
    } control;
    for (;;) {
        int ready = blocking || spin_ns > 0 ? 1 : wait_fd(fd, POLLIN, deadline);
        if (ready == 0) {
            line_str(l, "no ");
            line_str(l, what);
            line_str(l, " from the master within ");
            line_uint(l, timeout_ms);
            line_str(l, " ms");
            return -1;
        }
        struct msghdr msg = {.msg_iov = iov,
                             .msg_iovlen = (size_t)iovcnt,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf};
        int flags = MSG_CMSG_CLOEXEC | (blocking ? 0 : MSG_DONTWAIT);
        ssize_t n;
        if (spin_ns > 0) {
            n = recv_spinning(fd, &msg, flags, spin_ns);
            spin_ns = 0;
            if (n < 0 && errno == EAGAIN)
                continue; /* nothing yet: wait for it */
        } else {
            n = ready < 0 ? -1 : lcf_real_recvmsg(fd, &msg, flags);
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            blocking = false;
            continue;
        }
        if (n <= 0) {
            if (n == 0 || errno == ECONNRESET) {
                line_str(l, "the master closed the connection");
            } else {
                line_str(l, "cannot receive from the master");
                line_errno(l, errno);
            }
            return -1;
        }
        p->size = (size_t)n;
        p->flags = msg.msg_flags;
        take_fds(&msg, p);
        return 0;
    }
}


/* Maps `bytes` bytes of a memfd the master sent (shared, with prot), if it is a regular file that
 * large and bytes is at most max. MAP_FAILED if not. */
void *memfd_map(int fd, uint64_t bytes, uint64_t max, int prot)
{
    struct stat st;
    if (bytes > max || lcf_real_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < bytes)
        return MAP_FAILED;
    return mmap(NULL, (size_t)bytes, prot, MAP_SHARED, fd, 0);
}

/* Unmaps what memfd_map mapped (if anything) of a memfd found invalid and says so in l; -1. */
int memfd_refuse(void *map, uint64_t bytes, const char *what, struct line *l)
{
    if (map != MAP_FAILED)
        munmap(map, (size_t)bytes);
    line_str(l, "the master sent an invalid ");
    line_str(l, what);
    line_str(l, " (");
    line_uint(l, bytes);
    line_str(l, " bytes)");
    return -1;
}

