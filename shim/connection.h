/* connection.h — the connections to the master (connection.c): one per (process, thread,
 * nesting level), opened with the hello/welcome handshake, dropped when the process forks, its
 * ids change or the program closes the descriptor; and the round trip of one call on one. */
#ifndef LIBCFAKE_CONNECTION_H
#define LIBCFAKE_CONNECTION_H

#include "errline.h"

#define LCF_LEVELS 4                /* connections per thread: nested calls beyond this fail */

/* One connection to the master; pid 0 means none. */
struct conn {
    pid_t pid;                     /* the process that opened it */
    int fd;
    dev_t dev;                     /* the socket's identity, to notice the program closing or */
    ino_t ino;                     /* dup2-ing over our descriptor */
    uint32_t timeout_ms;           /* from the welcome */
    uint32_t seq;                  /* of the last call sent */
    bool blocking;                 /* replies are waited for in recvmsg (see conn_blocking) */
    void *ring;                    /* the note ring from the welcome, mapped; or NULL */
    uint64_t ring_data;            /* its data_bytes, as checked when it was mapped */
    uint64_t ring_head;            /* the bytes this end appended to it */
    long long reply_ns;            /* how long replies take: a moving average (see SPIN_NS) */
    unsigned ids;                  /* ids_generation when the hello was sent */
};

/* Returns the connection for this nesting level, opening it if needed (the welcome then stores
 * the passthrough table, see passthrough.h); NULL with the reason in l. In a vfork child it is a
 * connection of its own, in *once, which the caller drops. */
struct conn *conn_get(int level, struct conn *once, struct line *l);

/* Closes the connection (if the descriptor is still ours) and forgets it. */
void conn_drop(struct conn *c);

/* Sends req's call on c, with the descriptors fds (req->nfds of them, in place of req->fds), and
 * receives its checked reply. Returns the action, or -1 (reason in l; the connection is dropped
 * as it may be out of step). The request is not changed: its header is made here. */
int conn_exchange(struct conn *c, const struct lcf_request *req, const int *fds,
                  struct lcf_reply *reply, int *fd, void *payload, size_t payload_size,
                  struct line *l);

#endif
