/* transport.h — packets on the master's SOCK_SEQPACKET socket and the memfds it sends
 * (transport.c): one message per packet, its descriptors with it, every wait bounded by a
 * deadline, failures explained in a struct line. */
#ifndef LIBCFAKE_TRANSPORT_H
#define LIBCFAKE_TRANSPORT_H

#include "errline.h"

#include <sys/uio.h>

/* How long a thread tries for its reply before it sleeps: while replies on its connection take
 * about that long or less (their moving average, so a slow master costs it no spinning) and no
 * other thread of the process waits for one (theirs would come no sooner, and they would take
 * the CPU the master needs). A thread that sleeps pays for its wake-up, which on this project's
 * machines cost more than a quick master's own work: a forwarded stat took 24-32 us without the
 * spin and 16-17 with it (best of 5, benchmarks/roundtrip.py; the Python echo: 16-20). Between
 * tries it yields the CPU, so that a master on the same CPU runs. */
#define SPIN_NS 50000

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds. */
long long now_ns(void);
long long now_ms(void);

/* Fills a message header: this protocol's magic and version, kind, length and seq. */
void header_init(struct lcf_header *h, uint16_t kind, size_t length, uint32_t seq);

/* Sends one packet with its descriptors, never blocking in sendmsg (the socket itself may block,
 * see conn_blocking): a full queue is waited out with poll until the deadline. Returns 0, 1 if it
 * had to wait, or -1 with the reason in l. */
int send_packet(int fd, struct iovec *iov, int iovcnt, const int *fds, int nfds,
                long long deadline, struct line *l);

/* A received packet: its size, recvmsg's flags and the descriptors that came with it. */
struct packet {
    size_t size;
    int flags;
    int fds[LCF_MAX_FDS];
    int nfds;
};

/* Closes the descriptors that came with p. */
void close_fds(struct packet *p);

/* Receives one packet into iov. Returns 0, or -1 with the reason in l; `what` names the awaited
 * message ("reply", "welcome") for the timeout line. `spin_ns`: how long to try first without
 * sleeping (see SPIN_NS). `blocking`: the socket blocks, its SO_RCVTIMEO being the whole time to
 * the deadline (see conn_blocking), so the first wait is in recvmsg itself, one system call where
 * poll and recvmsg are two; a signal or that timeout lead to the poll loop, which keeps to the
 * deadline. */
int recv_packet(int fd, long long spin_ns, bool blocking, struct iovec *iov, int iovcnt,
                struct packet *p, long long deadline, uint32_t timeout_ms, const char *what,
                struct line *l);

/* Maps `bytes` bytes of a memfd the master sent (shared, with prot), if it is a regular file that
 * large and bytes is at most max. MAP_FAILED if not. */
void *memfd_map(int fd, uint64_t bytes, uint64_t max, int prot);

/* Unmaps what memfd_map mapped (if anything) of a memfd found invalid and says so in l; -1. */
int memfd_refuse(void *map, uint64_t bytes, const char *what, struct line *l);

#endif
