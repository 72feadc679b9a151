/* connection.c — the connections to the master (see connection.h): the socket's path, dialing,
 * the hello and the checked welcome (which hands the passthrough table and the snapshot to
 * passthrough.c and maps the note ring), the ids and fork/vfork rules that decide when a
 * connection can no longer be used, one round trip of a call, and the constructor. */

#include "connection.h"
#include "passthrough.h"
#include "real.h"
#include "replies.h"
#include "ring.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LCF_HIGH_FD 900             /* our sockets move to this descriptor or above */
#define LCF_HELLO_TIMEOUT_MS 30000  /* how long to wait for the welcome */
#define LCF_RING_MAX (1ULL << 24)   /* a larger note ring is refused */

/* ======================================================================== the socket ===== */

static char socket_path[LCF_MAX_PATH + 1]; /* $LIBCFAKE_SOCKET, copied by the constructor */
static bool socket_path_read;

const char *lcf_master_path(void)
{
    return socket_path_read ? socket_path : getenv("LIBCFAKE_SOCKET");
}

/* ======================================================================= connections ===== */

static __thread struct conn conns[LCF_LEVELS];
static int waiting;                 /* threads of this process waiting for a reply */
static __thread int waits_here;     /* of them, this thread's waits (see close_thread_conns) */

/* Counts the changes of the process's user and group ids (lcf_ids_changed). The master checks
 * permissions with the ids of each connection's hello, so a connection made before a change is
 * dropped at its next call, which says hello again. */
static unsigned ids_generation;

void lcf_ids_changed(void)
{
    __atomic_fetch_add(&ids_generation, 1, __ATOMIC_RELAXED);
}

static pthread_key_t exit_key;      /* its destructor closes a finished thread's connections */
static bool exit_key_ready;

static bool conn_is_ours(const struct conn *c)
{
    struct stat st;
    return lcf_real_fstat(c->fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == c->dev &&
           st.st_ino == c->ino;
}

/* Unmaps the connection's note ring, if it has one. */
static void ring_unmap(struct conn *c)
{
    if (c->ring != NULL)
        munmap(c->ring, sizeof(struct lcf_ring) + c->ring_data);
    c->ring = NULL;
}

void conn_drop(struct conn *c)
{
    if (c->pid != 0 && conn_is_ours(c))
        close(c->fd);
    ring_unmap(c);
    c->pid = 0;
}

/* Whether c can carry a call in process pid; forgets it if it belongs to a parent process or
 * says hello with ids the process no longer has, or if the program closed or replaced its
 * descriptor (then leaving that descriptor alone). */
static bool conn_usable(struct conn *c, pid_t pid)
{
    if (c->pid == 0)
        return false;
    if (c->pid != pid || c->ids != __atomic_load_n(&ids_generation, __ATOMIC_RELAXED)) {
        conn_drop(c);
        return false;
    }
    if (!conn_is_ours(c)) {
        ring_unmap(c);
        c->pid = 0;
        return false;
    }
    return true;
}

/* Runs when a thread ends, also when it was cancelled while waiting for a reply (recvmsg is a
 * cancellation point): then it must stop counting as waiting, or no thread would spin again. */
static void close_thread_conns(void *unused)
{
    (void)unused;
    __atomic_fetch_sub(&waiting, waits_here, __ATOMIC_RELAXED);
    waits_here = 0;
    for (int i = 0; i < LCF_LEVELS; i++)
        if (conns[i].pid == getpid())
            conn_drop(&conns[i]);
}

/* Moves fd to LCF_HIGH_FD or above, out of the program's way; keeps it where it is if that fails. */
static int move_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, LCF_HIGH_FD);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

/* Connects a SOCK_SEQPACKET socket to the master. Returns the fd, or -1 with the reason in l. */
static int dial(long long deadline, struct line *l)
{
    const char *path = lcf_master_path();
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (path == NULL || path[0] == '\0') {
        line_str(l, "LIBCFAKE_SOCKET is not set, so there is no master to ask");
        return -1;
    }
    if (strlen(path) >= sizeof addr.sun_path) {
        line_str(l, "LIBCFAKE_SOCKET is too long for a unix socket address");
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        line_str(l, "cannot create a socket");
        line_errno(l, errno);
        return -1;
    }
    fd = move_high(fd);
    for (;;) {
        if (lcf_real_connect(fd, (const struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        int err = errno;
        if (err == EINTR || (err == EAGAIN && now_ms() < deadline)) {
            struct timespec pause = {.tv_nsec = 1000000}; /* the listen queue is full */
            nanosleep(&pause, NULL);
            continue;
        }
        close(fd);
        line_str(l, "cannot connect to the master at ");
        line_str(l, path);
        line_errno(l, err);
        return -1;
    }
}

static int send_hello(int fd, int level, long long deadline, struct line *l)
{
    char exe[LCF_MAX_PATH + 1];
    ssize_t exe_length = lcf_real_readlink("/proc/self/exe", exe, sizeof exe);
    if (exe_length < 0 || exe_length > LCF_MAX_PATH)
        exe_length = 0;
    struct lcf_hello hello = {
        .pid = getpid(),
        .ppid = getppid(),
        .tid = gettid(),
        .uid = getuid(),
        .gid = getgid(),
        .euid = geteuid(),
        .egid = getegid(),
        .level = level,
        .umask = lcf_umask(),
        .exe_length = (int32_t)exe_length,
    };
    header_init(&hello.header, LCF_HELLO, sizeof hello + (size_t)exe_length, 0);
    struct iovec iov[2] = {{&hello, sizeof hello}, {exe, (size_t)exe_length}};
    return send_packet(fd, iov, 2, NULL, 0, deadline, l);
}

/* ========================================================================== welcome ===== */

/* Checks a received welcome and has its table and snapshot stored (table_load). Returns 0, or -1
 * (reason in l). */
static int welcome_check(const struct lcf_welcome *w, const struct packet *p, const char *payload,
                         struct line *l)
{
    if (p->size < sizeof *w || w->header.magic != LCF_MAGIC || w->header.version != LCF_VERSION ||
        w->header.kind != LCF_WELCOME) {
        line_str(l, "the master does not speak libcfake protocol version ");
        line_uint(l, LCF_VERSION);
        return -1;
    }
    size_t got = p->size - sizeof *w;
    if (w->status != 0) {
        line_str(l, "the master refused the connection");
        line_errno(l, w->status);
        line_str(l, ": ");
        line_mem(l, payload, got);
        return -1;
    }
    if ((p->flags & (MSG_TRUNC | MSG_CTRUNC)) || w->header.length != p->size ||
        w->payload_length < 0 || (size_t)w->payload_length != got) {
        line_str(l, "invalid welcome (length ");
        line_uint(l, w->header.length);
        line_str(l, ", payload ");
        line_int(l, w->payload_length);
        line_str(l, ", received ");
        line_uint(l, p->size);
        line_str(l, " bytes)");
        return -1;
    }
    if (p->nfds != (w->snapshot_bytes > 0 ? 1 : 0) + (w->ring_bytes > 0 ? 1 : 0)) {
        line_str(l, "invalid welcome (");
        line_uint(l, (unsigned long long)p->nfds);
        line_str(l, " descriptors for a snapshot of ");
        line_uint(l, w->snapshot_bytes);
        line_str(l, " bytes and a note ring of ");
        line_uint(l, w->ring_bytes);
        line_str(l, " bytes)");
        return -1;
    }
    int snapshot_fd = w->snapshot_bytes > 0 ? p->fds[0] : -1;
    return table_load(payload, got, w->passthrough_count, w->devices, snapshot_fd,
                      w->snapshot_bytes, l);
}

/* Maps the connection's note ring (a memfd of `bytes` bytes) and checks its layout. Returns 0,
 * or -1 with the reason in l. */
static int ring_map(struct conn *c, int fd, uint64_t bytes, struct line *l)
{
    void *map = memfd_map(fd, bytes, LCF_RING_MAX, PROT_READ | PROT_WRITE);
    uint64_t data = map != MAP_FAILED ? lcf_ring_check(map, bytes) : 0;
    if (data == 0)
        return memfd_refuse(map, bytes, "note ring", l);
    c->ring = map;
    c->ring_data = data;
    c->ring_head = 0;
    return 0;
}

/* Receives and checks the welcome, stores the table and the snapshot, maps the note ring.
 * Returns 0, or -1 with the reason in l. */
static int recv_welcome(struct conn *c, long long deadline, struct line *l)
{
    struct lcf_welcome w;
    char payload[LCF_TABLE_BYTES + 1]; /* one byte more, so a larger table shows as MSG_TRUNC */
    struct iovec iov[2] = {{&w, sizeof w}, {payload, sizeof payload}};
    struct packet p;
    int got = recv_packet(c->fd, 0, false, iov, 2, &p, deadline, LCF_HELLO_TIMEOUT_MS,
                          "welcome", l);
    if (got < 0)
        return -1;
    int ret = welcome_check(&w, &p, payload, l);
    if (ret == 0 && w.ring_bytes > 0)
        ret = ring_map(c, p.fds[p.nfds - 1], w.ring_bytes, l);
    close_fds(&p);
    if (ret == 0)
        c->timeout_ms = w.timeout_ms;
    return ret;
}

/* The process this memory belongs to: set at load and, through pthread_atfork, in every fork()
 * child. A vfork child shares its parent's memory (this thread's conns[] included) and sees its
 * parent's pid here: its calls must not touch conns[], or the parent, resumed, would find the
 * child's socket in its slot and leak its own. */
static pid_t owner_pid;

static void forked(void)
{
    __atomic_store_n(&owner_pid, getpid(), __ATOMIC_RELAXED);
    /* of the threads waiting for a reply, only this one came along (if fork ran in a signal
     * handler that interrupted its wait) */
    __atomic_store_n(&waiting, waits_here, __ATOMIC_RELAXED);
    lcf_umask_forked();
}

static bool shares_parent_memory(pid_t pid)
{
    pid_t owner = __atomic_load_n(&owner_pid, __ATOMIC_RELAXED);
    return owner != 0 && owner != pid;
}

bool lcf_shares_parent_memory(void)
{
    return shares_parent_memory(getpid());
}

/* Lets recvmsg itself wait for the replies on c (see recv_packet): clears O_NONBLOCK, which dial
 * set for connect and which sends do without (MSG_DONTWAIT), and bounds each wait by the reply
 * timeout. SO_RCVTIMEO cannot say 0 ms (0 is "forever"): a connection with that timeout, or one
 * where either step fails, waits in poll. */
static void conn_blocking(struct conn *c)
{
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = c->timeout_ms % 1000 * 1000};
    c->blocking = c->timeout_ms > 0 &&
                  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
                  fcntl(c->fd, F_SETFL, 0) == 0; /* O_NONBLOCK was its only status flag */
}

/* Dials the master into *c and says hello. Returns c, or NULL with the reason in l. */
static struct conn *conn_open(struct conn *c, int level, struct line *l)
{
    long long deadline = now_ms() + LCF_HELLO_TIMEOUT_MS;
    int fd = dial(deadline, l);
    if (fd < 0)
        return NULL;
    struct stat st;
    lcf_real_fstat(fd, &st);
    /* (the generation before the ids: a change while the hello is made shows at the next call) */
    *c = (struct conn){.pid = getpid(), .fd = fd, .dev = st.st_dev, .ino = st.st_ino,
                       .ids = __atomic_load_n(&ids_generation, __ATOMIC_RELAXED)};
    if (send_hello(fd, level, deadline, l) < 0 || recv_welcome(c, deadline, l) < 0) {
        conn_drop(c);
        return NULL;
    }
    return c;
}

struct conn *conn_get(int level, struct conn *once, struct line *l)
{
    pid_t pid = getpid(); /* a system call (glibc keeps no copy): once per round trip */
    if (shares_parent_memory(pid))
        return conn_open(once, level, l);
    struct conn *c = &conns[level];
    if (conn_usable(c, pid))
        return c;
    if (conn_open(c, level, l) == NULL)
        return NULL;
    conn_blocking(c); /* not worth its two system calls for a vfork child's single call */
    if (exit_key_ready)
        pthread_setspecific(exit_key, conns);
    return c;
}

/* ======================================================================== round trip ===== */

int conn_exchange(struct conn *c, const struct lcf_request *req, const int *fds,
                  struct lcf_reply *reply, int *fd, void *payload, size_t payload_size,
                  struct line *l)
{
    /* the header, then the rest of the call as the wrapper filled it (never copied) */
    struct lcf_header header;
    size_t size = sizeof req->call;
    struct iovec out[4] = {{&header, sizeof header},
                           {(char *)&req->call + sizeof header, sizeof req->call - sizeof header}};
    int n = 2;
    if (req->call.length1 > 0) {
        out[n++] = (struct iovec){(void *)req->str1, (size_t)req->call.length1};
        size += (size_t)req->call.length1;
    }
    if (req->call.length2 > 0) {
        out[n++] = (struct iovec){(void *)req->str2, (size_t)req->call.length2};
        size += (size_t)req->call.length2;
    }
    if (size > LCF_MAX_MESSAGE) {
        line_str(l, "the call does not fit in one message");
        return -1; /* nothing was sent: the connection stays in step */
    }
    header_init(&header, LCF_CALL, size, ++c->seq);
    long long start = now_ns();
    long long deadline = start / 1000000 + c->timeout_ms;
    struct packet p;
    struct iovec in[2] = {{reply, sizeof *reply}, {payload, payload_size}};
    /* a send that had to wait used up time that SO_RCVTIMEO would not count */
    int sent = send_packet(c->fd, out, n, fds, req->nfds, deadline, l);
    /* alone: no other thread of this process waits for a reply (others would take the CPU that
     * the master needs to answer them; their replies are not quicker for spinning) */
    bool alone = __atomic_fetch_add(&waiting, 1, __ATOMIC_RELAXED) == 0;
    long long spin_ns = alone && c->reply_ns <= SPIN_NS ? SPIN_NS : 0;
    waits_here++;
    int received = sent < 0 ? -1
                            : recv_packet(c->fd, spin_ns, c->blocking && sent == 0, in, 2, &p,
                                          deadline, c->timeout_ms, "reply", l);
    waits_here--;
    __atomic_fetch_sub(&waiting, 1, __ATOMIC_RELAXED);
    if (received < 0) {
        conn_drop(c);
        return -1;
    }
    c->reply_ns = (3 * c->reply_ns + now_ns() - start) / 4;
    if (check_reply(req->call.function, header.seq, reply, &p, payload, l) < 0) {
        close_fds(&p);
        conn_drop(c);
        return -1;
    }
    *fd = p.nfds == 1 ? p.fds[0] : -1;
    return (int)reply->action;
}

/* ====================================================================== constructor ===== */

__attribute__((constructor)) static void lcf_init(void)
{
    const char *path = getenv("LIBCFAKE_SOCKET");
    if (path != NULL) /* a longer path is cut, and still too long for dial() */
        memcpy(socket_path, path, strnlen(path, LCF_MAX_PATH));
    socket_path_read = true;
    exit_key_ready = pthread_key_create(&exit_key, close_thread_conns) == 0;
    owner_pid = getpid();
    pthread_atfork(NULL, NULL, forked);
}
