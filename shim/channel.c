/* channel.c — the shim's end of the wire (see libcfake_wire.h): one connection per (process,
 * thread, nesting level), the hello/welcome handshake, one round trip per forwarded call with
 * strict checks on the reply, the passthrough table (with the paths found to stay under it), and
 * failing closed with one line on stderr.
 * Everything on the call path is async-signal-safe: no malloc, no stdio, no lock to wait on. */

#include "shim.h"
#include "errline.h"
#include "real.h"
#include "replies.h"
#include "transport.h"
#include "ring.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
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

#define LCF_LEVELS 4                /* connections per thread: nested calls beyond this fail */
#define LCF_HIGH_FD 900             /* our sockets move to this descriptor or above */
#define LCF_HELLO_TIMEOUT_MS 30000  /* how long to wait for the welcome */
#define LCF_TABLE_PREFIXES 64       /* the passthrough table holds at most this many prefixes */
#define LCF_TABLE_BYTES 4096        /* and at most this many bytes */
#define LCF_REAL_BYTES 8192         /* the prefixes' realpaths: at most this many bytes */
#define LCF_VERDICTS 256            /* paths known to resolve under the table: at most this many */
#define LCF_VERDICT_PATH 240        /* bytes of such a path; longer ones are checked every time */
#define LCF_SNAPSHOT_MAX (1ULL << 30) /* a larger snapshot is refused */
#define LCF_RING_MAX (1ULL << 24)     /* and a larger note ring */

/* ======================================================================== the socket ===== */

static char socket_path[LCF_MAX_PATH + 1]; /* $LIBCFAKE_SOCKET, copied by the constructor */
static bool socket_path_read;

const char *lcf_master_path(void)
{
    return socket_path_read ? socket_path : getenv("LIBCFAKE_SOCKET");
}

/* ======================================================================= connections ===== */

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

static __thread struct conn conns[LCF_LEVELS];
static __thread int depth;          /* round trips in progress on this thread */
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

/* Closes the connection (if the descriptor is still ours) and forgets it. */
static void conn_drop(struct conn *c)
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
        .exe_length = (int32_t)exe_length,
    };
    header_init(&hello.header, LCF_HELLO, sizeof hello + (size_t)exe_length, 0);
    struct iovec iov[2] = {{&hello, sizeof hello}, {exe, (size_t)exe_length}};
    return send_packet(fd, iov, 2, NULL, 0, deadline, l);
}

/* ================================================ passthrough table, master devices ===== */

/* Process-global and written once, from the first welcome: the first thread to move `table_state`
 * from EMPTY to FILLING stores the table and the master's devices and publishes READY; before that
 * every call is forwarded. */
enum { TABLE_EMPTY, TABLE_FILLING, TABLE_READY };
static int table_state;
static char table_bytes[LCF_TABLE_BYTES];
static uint16_t table_start[LCF_TABLE_PREFIXES]; /* offset of each prefix in table_bytes */
static uint16_t table_len[LCF_TABLE_PREFIXES];   /* its length without trailing slashes */
static uint32_t table_count;
static uint64_t master_devices[2];               /* struct lcf_welcome.devices */
/* Where each prefix really is (/bin -> /usr/bin): what a descriptor's /proc/self/fd link says. A
 * prefix whose realpath cannot be found or does not fit is left out: its files are forwarded. */
static char real_bytes[LCF_REAL_BYTES];
static uint16_t real_start[LCF_TABLE_PREFIXES];
static uint16_t real_len[LCF_TABLE_PREFIXES];
static uint32_t real_count;
/* The master's metadata snapshot, mapped read-only from the first welcome (see snapshot.h). */
static struct lcf_snapshot_view snapshot;
static bool snapshot_mapped;

/* Writes "/proc/self/fd/N" into buf. */
void lcf_proc_fd_path(char buf[32], int fd)
{
    char digits[24];
    size_t i = lcf_decimal(digits, (unsigned)fd); /* descriptors are never negative */
    memcpy(buf, "/proc/self/fd/", 14);
    memcpy(buf + 14, digits + i, sizeof digits - i);
    buf[14 + sizeof digits - i] = '\0';
}

/* The path the kernel gives an open descriptor (readlink of /proc/self/fd/N) into buf
 * (LCF_MAX_PATH + 1 bytes, NUL-terminated). Returns its length, or -1 (no /proc, too long, or
 * not a path: a pipe, a socket). */
static ssize_t fd_path(int fd, char *buf)
{
    char proc[32];
    lcf_proc_fd_path(proc, fd);
    ssize_t n = lcf_real_readlink(proc, buf, LCF_MAX_PATH + 1);
    if (n <= 0 || n > LCF_MAX_PATH || buf[0] != '/')
        return -1;
    buf[n] = '\0';
    return n;
}

/* Stores the realpath of each of the n prefixes of bytes (start, len) in real_*. */
static void real_load(const char *bytes, const uint16_t *start, const uint16_t *len, uint32_t n)
{
    size_t used = 0;
    real_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        char path[LCF_MAX_PATH + 1], real[LCF_MAX_PATH + 1];
        memcpy(path, bytes + start[i], len[i]);
        path[len[i]] = '\0';
        int fd = lcf_real_openat(AT_FDCWD, len[i] == 0 ? "/" : path, O_PATH | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = fd_path(fd, real);
        close(fd);
        if (k < 0)
            continue;
        while (k > 0 && real[k - 1] == '/')
            k--; /* "/" as "" */
        if (used + (size_t)k > sizeof real_bytes)
            continue;
        memcpy(real_bytes + used, real, (size_t)k);
        real_start[real_count] = (uint16_t)used;
        real_len[real_count] = (uint16_t)k;
        real_count++;
        used += (size_t)k;
    }
}

/* Maps the snapshot memfd (bytes long) read-only and checks its layout. Returns 0, or -1 with
 * the reason in l. */
static int snapshot_map(int fd, uint64_t bytes, struct line *l)
{
    void *map = memfd_map(fd, bytes, LCF_SNAPSHOT_MAX, PROT_READ);
    if (map != MAP_FAILED && lcf_snapshot_view_init(&snapshot, map, bytes) == 0) {
        snapshot_mapped = true;
        return 0;
    }
    return memfd_refuse(map, bytes, "snapshot", l);
}

/* Checks a welcome's table: `count` NUL-terminated absolute paths filling exactly `size` bytes.
 * Stores it, the devices and the snapshot (snapshot_fd, or -1) if no table is stored yet.
 * Returns 0, or -1 with the reason in l. */
static int table_load(const char *bytes, size_t size, uint32_t count, const uint64_t devices[2],
                      int snapshot_fd, uint64_t snapshot_bytes, struct line *l)
{
    uint16_t start[LCF_TABLE_PREFIXES], len[LCF_TABLE_PREFIXES];
    uint32_t n = 0;
    if (count > LCF_TABLE_PREFIXES || size > LCF_TABLE_BYTES)
        goto bad;
    for (size_t at = 0; at < size; n++) {
        const char *end = memchr(bytes + at, '\0', size - at);
        if (end == NULL || n == count || bytes[at] != '/')
            goto bad;
        size_t k = (size_t)(end - bytes) - at;
        while (k > 0 && bytes[at + k - 1] == '/')
            k--; /* "/usr/" matches as "/usr"; "/" as "", which matches every absolute path */
        start[n] = (uint16_t)at;
        len[n] = (uint16_t)k;
        at = (size_t)(end - bytes) + 1;
    }
    if (n != count)
        goto bad;
    int expected = TABLE_EMPTY;
    if (__atomic_compare_exchange_n(&table_state, &expected, TABLE_FILLING, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
        memcpy(table_bytes, bytes, size);
        memcpy(table_start, start, sizeof start[0] * n);
        memcpy(table_len, len, sizeof len[0] * n);
        table_count = n;
        memcpy(master_devices, devices, sizeof master_devices);
        real_load(table_bytes, table_start, table_len, n);
        int mapped = snapshot_fd >= 0 ? snapshot_map(snapshot_fd, snapshot_bytes, l) : 0;
        __atomic_store_n(&table_state, mapped == 0 ? TABLE_READY : TABLE_EMPTY, __ATOMIC_RELEASE);
        return mapped;
    }
    return 0;
bad:
    line_str(l, "the master sent an invalid passthrough table (");
    line_uint(l, count);
    line_str(l, " prefixes in ");
    line_uint(l, size);
    line_str(l, " bytes)");
    return -1;
}

static bool table_ready(void)
{
    return __atomic_load_n(&table_state, __ATOMIC_ACQUIRE) == TABLE_READY;
}

/* Whether the absolute path has a "." or ".." component. */
static bool has_dot_component(const char *path, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t k = j - i;
        if ((k == 1 && path[i] == '.') || (k == 2 && path[i] == '.' && path[i + 1] == '.'))
            return true;
        i = j + 1;
    }
    return false;
}

/* Whether path (n bytes) is one of the count prefixes of bytes (start, len) or lies under one. */
static bool under(const char *path, size_t n, const char *bytes, const uint16_t *start,
                  const uint16_t *len, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        size_t k = len[i];
        if (k <= n && memcmp(path, bytes + start[i], k) == 0 && (k == n || path[k] == '/'))
            return true;
    }
    return false;
}

/* Whether a read-only call on the path may be done locally as far as its text goes (the table
 * must be ready); resolves_under_table then checks where the kernel really goes. */
static bool passes_through(const struct lcf_request *req)
{
    const char *path = req->str1;
    size_t n = (size_t)req->call.length1;
    if (!req->readonly || req->call.length1 <= 0 || path[0] != '/' || has_dot_component(path, n))
        return false;
    return under(path, n, table_bytes, table_start, table_len, table_count);
}

/* Whether an open descriptor's file really lies under a prefix (as named or as its realpath). */
static bool fd_under_table(int fd)
{
    char real[LCF_MAX_PATH + 1];
    ssize_t n = fd_path(fd, real);
    return n > 0 && (under(real, (size_t)n, table_bytes, table_start, table_len, table_count) ||
                     under(real, (size_t)n, real_bytes, real_start, real_len, real_count));
}

/* Whether the calls on the path follow a symlink in its last component. */
static bool follows_last(const struct lcf_request *req)
{
    uint32_t f = req->call.function;
    if (f == LCF_LSTAT || f == LCF_READLINK)
        return false;
    return !((f == LCF_OPEN || f == LCF_OPENAT) && (req->call.flags & O_NOFOLLOW));
}

/* The paths known to resolve under the table. resolves_under_table costs two or three system calls
 * (an O_PATH open, a readlink of /proc/self/fd/N, a close), more than the passthrough call itself,
 * and programs check the same paths again and again (Python stats each directory of sys.path on
 * every import). So its positive verdicts are kept, keyed by the exact path text and whether the
 * last symlink is followed; a repeated check is then a hash and a compare. Negative verdicts are
 * never kept: those calls are forwarded, and the master decides.
 *
 * A kept verdict stays right because the prefixes are read-only to programs (the Sandbox refuses
 * every change under a mount with EROFS): only the host can change where a path under them leads.
 * If the host changes a symlink (or creates one where a path did not exist) under a prefix while
 * a program runs, that program may go on with the old verdict. A master that lets programs change
 * files under its own passthrough prefixes (use_slave_credentials on a write there) gives up that
 * premise: a symlink a program makes there may be followed out of the table by a later call.
 *
 * Process-global, in static storage, with no lock a signal handler could wait on: each slot has a
 * try-only spin flag, and a thread that finds it taken (another thread, or the call a signal
 * handler interrupted) skips the cache and does the full check. A slot holds one path: a new
 * verdict replaces the old one. A fork() child inherits the verdicts, which hold there too. */
struct verdict {
    int busy;                      /* the slot's flag: taken by whoever reads or writes it */
    uint16_t len;                  /* of path; 0 for an empty slot */
    bool follows;                  /* follows_last() of the calls it was checked for */
    char path[LCF_VERDICT_PATH];
};
static struct verdict verdicts[LCF_VERDICTS];

/* The slot of (path, follows), taken; NULL if the path is too long or the slot is busy. */
static struct verdict *verdict_take(const char *path, size_t n, bool follows)
{
    if (n > LCF_VERDICT_PATH)
        return NULL;
    uint64_t hash = (lcf_path_hash(path, n) >> 1) ^ follows; /* its low bit is always set */
    struct verdict *v = &verdicts[hash % LCF_VERDICTS];
    return __atomic_exchange_n(&v->busy, 1, __ATOMIC_ACQUIRE) ? NULL : v;
}

static void verdict_release(struct verdict *v)
{
    __atomic_store_n(&v->busy, 0, __ATOMIC_RELEASE);
}

/* Whether (path, follows) is known to resolve under the table. */
static bool verdict_known(const char *path, size_t n, bool follows)
{
    struct verdict *v = verdict_take(path, n, follows);
    if (v == NULL)
        return false;
    bool known = v->len == n && v->follows == follows && memcmp(v->path, path, n) == 0;
    verdict_release(v);
    return known;
}

/* Remembers that (path, follows) resolves under the table (if its slot is free). */
static void verdict_keep(const char *path, size_t n, bool follows)
{
    struct verdict *v = verdict_take(path, n, follows);
    if (v == NULL)
        return;
    memcpy(v->path, path, n);
    v->len = (uint16_t)n;
    v->follows = follows;
    verdict_release(v);
}

/* Whether the path, which passes_through, also leads under a prefix once the kernel follows its
 * symlinks: a symlink inside a mount may point out of every mount (/usr/lib/ssl/private ->
 * /etc/ssl/private), and the local call would then reach the host. The path is opened O_PATH
 * and its descriptor's /proc/self/fd link checked. A path that does not exist is the mount's
 * when its longest existing ancestor lies under a prefix and has no entry (not even a symlink)
 * of the next component's name. Anything else (EACCES, ENOTDIR, ELOOP, no /proc) is false:
 * the call is forwarded and the master decides. errno is left as it was. A path found to lead
 * under a prefix is kept (see struct verdict) and not checked again. */
static bool resolves_under_table(const struct lcf_request *req)
{
    bool follows = follows_last(req);
    if (verdict_known(req->str1, (size_t)req->call.length1, follows))
        return true;
    int saved = errno;
    bool ok = false;
    int fd = lcf_real_openat(AT_FDCWD, req->str1, O_PATH | O_CLOEXEC | (follows ? 0 : O_NOFOLLOW));
    if (fd >= 0) {
        ok = fd_under_table(fd);
        close(fd);
    } else if (errno == ENOENT) {
        char buf[LCF_MAX_PATH + 1];
        size_t n = (size_t)req->call.length1;
        memcpy(buf, req->str1, n);
        buf[n] = '\0';
        for (;;) {
            while (n > 1 && buf[n - 1] == '/')
                n--; /* the missing component: buf[cut + 1 .. n) */
            size_t cut = n;
            while (cut > 0 && buf[cut - 1] != '/')
                cut--;
            if (cut == 0 || cut == n)
                break;
            buf[n] = '\0';
            char parent[LCF_MAX_PATH + 1];
            size_t k = cut > 1 ? cut - 1 : 1; /* "/" for the root */
            memcpy(parent, buf, k);
            parent[k] = '\0';
            const char *name = buf + cut;
            int dir = lcf_real_openat(AT_FDCWD, parent, O_PATH | O_CLOEXEC | O_DIRECTORY);
            int err = errno;
            if (dir >= 0) {
                struct stat st;
                ok = fd_under_table(dir) && lcf_real_fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
                     errno == ENOENT;
                close(dir);
                break;
            }
            if (err != ENOENT)
                break;
            n = cut - 1; /* one component up */
        }
    }
    if (ok)
        verdict_keep(req->str1, (size_t)req->call.length1, follows);
    errno = saved;
    return ok;
}

/* The one passthrough decision of a call (see lcf_forward). errno is left as it was. */
enum passthrough_verdict {
    PASSTHROUGH_NO_TABLE,          /* no welcome yet: decide once it came (forwarded until then) */
    PASSTHROUGH_LOCAL,             /* the program makes the real call */
    PASSTHROUGH_FORWARD,           /* the master answers (or says to pass it through) */
};

static enum passthrough_verdict passthrough_decide(const struct lcf_request *req)
{
    if (!table_ready())
        return PASSTHROUGH_NO_TABLE;
    return passes_through(req) && resolves_under_table(req) ? PASSTHROUGH_LOCAL
                                                             : PASSTHROUGH_FORWARD;
}

/* ========================================================================== welcome ===== */

/* Checks a received welcome and stores its table and snapshot. Returns 0, or -1 (reason in l). */
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
}

static bool shares_parent_memory(pid_t pid)
{
    pid_t owner = __atomic_load_n(&owner_pid, __ATOMIC_RELAXED);
    return owner != 0 && owner != pid;
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

/* Returns the connection for this nesting level, opening it if needed; NULL with the reason in l.
 * In a vfork child it is a connection of its own, in *once, which the caller closes. */
static struct conn *conn_get(int level, struct conn *once, struct line *l)
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

/* Sends req's call on c, with the descriptors fds (req->nfds of them, in place of req->fds), and
 * receives its checked reply. Returns the action, or -1 (reason in l; the connection is dropped
 * as it may be out of step). The request is not changed: its header is made here. */
static int exchange(struct conn *c, const struct lcf_request *req, const int *fds,
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

/* ========================================================================= snapshot ===== */

/* Whether path (n bytes) is in the snapshot's form: absolute, without "." or ".." components, empty
 * components (a repeated slash) or a trailing slash, unless it is "/". */
static bool snapshot_form(const char *path, size_t n)
{
    if (n == 0 || path[0] != '/')
        return false;
    return n == 1 || (path[n - 1] != '/' && memmem(path, n, "//", 2) == NULL &&
                      !has_dot_component(path, n));
}

/* Whether path (n bytes) is the shadow tree's root or lies under it. */
static bool in_shadow_tree(const char *path, size_t n)
{
    size_t k = snapshot.root_length;
    return n >= k && memcmp(path, snapshot.root, k) == 0 && (n == k || path[k] == '/');
}

/* Writes into out (LCF_MAX_PATH + 1 bytes) the virtual path a stat-like call names: a path in the
 * shadow tree stands for the virtual path after the tree's root, a relative path is joined to
 * its directory descriptor's (which must be a shadow directory), any other absolute path is
 * itself; fstat names its descriptor's, which must be a shadow directory. Returns its length, or
 * -1 when the snapshot cannot name it. */
static ssize_t snapshot_path(const struct lcf_request *req, char *out)
{
    size_t root_len = snapshot.root_length, base = 0, n = 0;
    const char *rest = "";
    bool fstat = req->call.function == LCF_FSTAT;
    if (fstat || (req->call.fds & LCF_FD_DIR1)) {
        /* the descriptor's path: fstat's file, or the directory a relative path starts from */
        ssize_t k = !fstat || req->call.fds == LCF_FD_FILE ? fd_path(req->fds[0], out) : -1;
        if (k < 0 || !in_shadow_tree(out, (size_t)k))
            return -1;
        base = (size_t)k - root_len; /* its virtual path, "" for "/" */
        memmove(out, out + root_len, base);
        if (!fstat) {
            out[base++] = '/';
            rest = req->str1;
            n = (size_t)req->call.length1;
        }
    } else {
        rest = req->str1;
        n = (size_t)req->call.length1;
        if (in_shadow_tree(rest, n)) {
            rest += root_len;
            n -= root_len;
        }
    }
    if (base + n == 0) { /* the shadow tree's root: "/" */
        rest = "/";
        n = 1;
    }
    if (base + n > LCF_MAX_PATH)
        return -1;
    memcpy(out + base, rest, n);
    out[base + n] = '\0';
    return snapshot_form(out, base + n) ? (ssize_t)(base + n) : -1;
}

/* Tells the master about a call answered from the snapshot: appends a note to the connection's
 * ring. False when the ring is full: the call then makes its round trip, before which the master
 * takes the ring, so the notes keep their order and the ring is empty again. (Never a message:
 * the master would take notes appended after it before reading it.) */
static bool send_note(struct conn *c, const struct lcf_request *req, const struct lcf_stat *st,
                      const char *path, size_t n, const char *target, int32_t result)
{
    struct lcf_note note = {
        .function = req->call.function,
        .flags = req->call.flags,
        .result = result,
        .mode = st->mode,
        .size = st->size,
        .length = (int32_t)n,
        .error = result < 0 ? ENOENT : 0, /* the only failure answered from the snapshot */
    };
    memcpy(note.symbol, req->call.symbol, sizeof note.symbol);
    size_t text = req->call.function == LCF_READLINK && result > 0 ? (size_t)result : 0;
    header_init(&note.header, LCF_NOTE, sizeof note + n + text, ++c->seq);
    struct lcf_piece pieces[3] = {{&note, sizeof note}, {path, n}, {target, text}};
    return c->ring != NULL && lcf_ring_append(c->ring, c->ring_data, &c->ring_head, pieces, 3);
}

/* The open flags with which a listed directory is opened in the shim: read-only, and nothing the
 * shadow directory could answer differently from the master (O_NOATIME wants its owner). */
#define LISTED_OPEN_FLAGS (O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_LARGEFILE | O_NOCTTY)

/* What the snapshot says of the path a call names. */
enum snapshot_says {
    UNKNOWN,                       /* nothing: ask the master */
    FOUND,                         /* what lstat says of it */
    MISSING,                       /* no such entry: its directory is complete, and lacks it */
};

/* Looks up the entry the call names: its virtual path (n bytes) in path and, when FOUND, what the
 * snapshot says in *st (its flags moved to *flags) and, for a symlink, target. A name missing
 * from a complete directory (not fstat's: its descriptor names what exists) is MISSING. errno is
 * left as it was. */
static enum snapshot_says snapshot_entry(const struct lcf_request *req,
                                         char path[LCF_MAX_PATH + 1], size_t *n,
                                         struct lcf_stat *st, uint32_t *flags,
                                         char target[LCF_MAX_PATH + 1], int32_t *target_length)
{
    int saved = errno;
    ssize_t k = snapshot_path(req, path); /* (may readlink a descriptor's path) */
    errno = saved;
    if (k <= 0)
        return UNKNOWN;
    *n = (size_t)k;
    if (lcf_snapshot_get(&snapshot, path, *n, st, target, target_length)) {
        if (!valid_stat(st))
            return UNKNOWN;
        *flags = st->reserved;
        st->reserved = 0;
        return FOUND;
    }
    size_t slash = *n - 1; /* the snapshot's form: "/" or no trailing slash */
    while (slash > 0 && path[slash] != '/')
        slash--;
    if (*n == 1 || req->call.function == LCF_FSTAT || *n - slash - 1 > NAME_MAX)
        return UNKNOWN; /* (a name too long is ENAMETOOLONG: the master's) */
    struct lcf_stat parent; /* the directory the name would be in ("/" for "/name") */
    int32_t parent_target;
    bool complete = lcf_snapshot_get(&snapshot, path, slash > 0 ? slash : 1, &parent, target,
                                     &parent_target) &&
                    S_ISDIR(parent.mode) && (parent.reserved & LCF_SNAPSHOT_COMPLETE);
    return complete ? MISSING : UNKNOWN;
}

/* Fills *reply as the master's answer would be: result (-1 with error), no payload yet. */
static void snapshot_reply(struct lcf_reply *reply, int32_t result, int32_t error)
{
    memset(reply, 0, sizeof *reply);
    reply->action = LCF_ANSWER;
    reply->result = result;
    reply->error = error;
    reply->text_length = -1;
}

/* Answers the call with -1 ENOENT, after telling the master in a note. */
static bool snapshot_missing(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                             const char *path, size_t n)
{
    static const struct lcf_stat none;
    if (!send_note(c, req, &none, path, n, NULL, -1))
        return false;
    snapshot_reply(reply, -1, ENOENT);
    return true;
}

/* Answers an open of a name missing from a complete directory (unless it creates one) with
 * ENOENT, and opens a listed directory readable by everyone as the master would: its shadow
 * directory, which lists exactly its entries. Tells the master in a note; false (errno as it
 * was) when the master must answer. */
static bool snapshot_open(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                          int *fd)
{
    int open_flags = req->call.flags;
    bool creates = (open_flags & O_CREAT) || (open_flags & O_TMPFILE) == O_TMPFILE;
    if (creates || req->call.length1 <= 0)
        return false;
    char path[LCF_MAX_PATH + 1], target[LCF_MAX_PATH + 1];
    char real[sizeof snapshot.root + LCF_MAX_PATH];
    size_t n;
    struct lcf_stat st;
    uint32_t flags;
    int32_t target_length;
    enum snapshot_says says = snapshot_entry(req, path, &n, &st, &flags, target, &target_length);
    if (says == MISSING)
        return snapshot_missing(c, req, reply, path, n);
    if (says != FOUND || (open_flags & ~LISTED_OPEN_FLAGS) != 0 || /* (O_RDONLY is 0) */
        !(flags & LCF_SNAPSHOT_LISTED) || !S_ISDIR(st.mode) || (st.mode & 0444) != 0444)
        return false;
    size_t k = snapshot.root_length;
    memcpy(real, snapshot.root, k);
    if (n > 1) { /* "/" is the root itself */
        memcpy(real + k, path, n);
        k += n;
    }
    real[k] = '\0';
    int saved = errno;
    int dir = lcf_real_openat(AT_FDCWD, real, open_flags | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0 && !send_note(c, req, &st, path, n, target, 0)) {
        close(dir);
        dir = -1;
    }
    errno = saved; /* a shadow a program may not enter (it runs as another user): the master's */
    if (dir < 0)
        return false;
    snapshot_reply(reply, 0, 0);
    *fd = dir; /* with FD_CLOEXEC, as a descriptor from the master arrives */
    return true;
}

/* Answers stat, lstat, access(F_OK) and readlink of a published entry, fstat of a listed
 * directory, and opening one, as the master would, and these calls and access(any mode) with
 * ENOENT for a name missing from a complete directory: fills *reply and the payload (or *fd),
 * tells the master in a note, and returns true. False: ask the master (not published, a symlink
 * to follow, or no snapshot). errno is left as it was. */
static bool snapshot_answer(struct conn *c, const struct lcf_request *req, struct lcf_reply *reply,
                            int *fd, void *payload, size_t payload_size)
{
    uint32_t f = req->call.function;
    if (snapshot_mapped && is_open(f))
        return snapshot_open(c, req, reply, fd);
    bool stat = is_stat(f);
    bool access = f == LCF_ACCESS || f == LCF_EACCESS;
    if (!snapshot_mapped || !(stat || access || f == LCF_READLINK) ||
        (f == LCF_FSTAT ? !req->directory : req->call.length1 <= 0))
        return false; /* (a file's descriptor is a memfd: never published under its name) */
    char path[LCF_MAX_PATH + 1], target[LCF_MAX_PATH + 1];
    struct lcf_stat st;
    uint32_t flags;
    int32_t target_length;
    size_t n;
    enum snapshot_says says = snapshot_entry(req, path, &n, &st, &flags, target, &target_length);
    if (says == MISSING)
        return snapshot_missing(c, req, reply, path, n);
    if (says != FOUND || (access && req->call.flags != F_OK))
        return false; /* (other modes are checked against the caller: the master's) */
    bool link = S_ISLNK(st.mode);
    bool follows = f == LCF_STAT || access;
    if (f == LCF_READLINK ? !link || (size_t)target_length > payload_size : link && follows)
        return false; /* the last symlink is followed: the master resolves it */
    if (stat && payload_size < sizeof st)
        return false;
    int32_t result = f == LCF_READLINK ? target_length : 0;
    if (!send_note(c, req, &st, path, n, target, result))
        return false;
    snapshot_reply(reply, result, 0);
    if (stat) {
        reply->count = 1;
        memcpy(payload, &st, sizeof st);
    } else if (f == LCF_READLINK) {
        reply->text_length = target_length;
        memcpy(payload, target, (size_t)target_length);
    }
    return true;
}

/* ======================================================================== forwarding ===== */

/* Writes into fds the descriptors to send for req: duplicates of the call's directory
 * descriptors instead of the program's, kept where req->pins says: the master decides on the
 * directory the duplicate refers to, and a real call the master lets through is made on that
 * same duplicate (see struct fs_path), whatever the program's descriptor refers to by then. (With
 * its descriptor table full, the program's own descriptor is sent.) */
static void pin_directories(const struct lcf_request *req, int fds[LCF_MAX_FDS])
{
    int saved = errno;
    memcpy(fds, req->fds, sizeof(int) * (size_t)req->nfds);
    int at = 0;
    for (int i = 0; i < 2; i++) {
        uint32_t bit = i == 0 ? LCF_FD_DIR1 : LCF_FD_DIR2;
        if (!(req->call.fds & bit))
            continue;
        if (req->pins[i] != NULL && *req->pins[i] < 0) {
            *req->pins[i] = fcntl(req->fds[at], F_DUPFD_CLOEXEC, 0);
        }
        if (req->pins[i] != NULL && *req->pins[i] >= 0)
            fds[at] = *req->pins[i];
        at++;
    }
    errno = saved;
}

/* The call's trip at this nesting level: the passthrough decision if it is still to be made
 * (`decided` false: no table before this connection's welcome), else the snapshot or the master. */
static int round_trip(int level, bool decided, const struct lcf_request *req,
                      struct lcf_reply *reply, int *fd, void *payload, size_t payload_size)
{
    struct line l; /* why the call fails, if it does */
    l.len = 0;
    struct conn once = {.pid = 0};
    struct conn *c = conn_get(level, &once, &l);
    if (c == NULL)
        return line_fail_call(req, &l);
    int action;
    if (!decided && passthrough_decide(req) == PASSTHROUGH_LOCAL) { /* the welcome brought it */
        action = LCF_PASSTHROUGH;
    } else if (c != &once && snapshot_answer(c, req, reply, fd, payload, payload_size)) {
        action = LCF_ANSWER;
    } else {
        int fds[LCF_MAX_FDS];
        pin_directories(req, fds);
        action = exchange(c, req, fds, reply, fd, payload, payload_size, &l);
    }
    if (c == &once)
        conn_drop(&once);
    return action < 0 ? line_fail_call(req, &l) : action;
}

int lcf_forward(const struct lcf_request *req, struct lcf_reply *reply, int *fd, void *payload,
                size_t payload_size)
{
    int saved = errno;
    *fd = -1;
    /* One passthrough decision per call: here when the table is known, which saves a passthrough
     * call its connection; else after the welcome brought it (round_trip). A path that passes
     * as written but whose symlinks lead out of the prefixes is forwarded: the master decides. */
    enum passthrough_verdict verdict = passthrough_decide(req);
    if (verdict == PASSTHROUGH_LOCAL)
        return LCF_PASSTHROUGH;
    if (depth >= LCF_LEVELS) {
        struct line l;
        line_begin(&l, req);
        line_str(&l, "calls nested more than 4 deep (signal handlers interrupting calls)");
        return line_fail(&l);
    }
    int level = depth++;
    int action = round_trip(level, verdict != PASSTHROUGH_NO_TABLE, req, reply, fd, payload,
                            payload_size);
    depth--;
    if (action > 0)
        errno = saved;
    return action;
}

/* ================================================================ master descriptors ===== */

/* Whether this process has received a welcome (and so the master's devices); connects to get one
 * if not. Quietly false when the master cannot be reached: there is no master file to ask about. */
static bool welcomed(void)
{
    if (table_ready())
        return true;
    if (depth >= LCF_LEVELS)
        return false;
    int saved = errno;
    struct line l;
    l.len = 0;
    int level = depth++;
    struct conn once = {.pid = 0};
    if (conn_get(level, &once, &l) == &once)
        conn_drop(&once);
    depth--;
    errno = saved;
    return table_ready();
}

bool lcf_in_passthrough(const char *path)
{
    struct lcf_request req = {.str1 = path, .readonly = true};
    req.call.length1 = (int32_t)strnlen(path, LCF_MAX_PATH + 1);
    return req.call.length1 <= LCF_MAX_PATH && welcomed() && passes_through(&req) &&
           resolves_under_table(&req);
}

bool lcf_is_master_dev(uint64_t dev)
{
    return dev != 0 && welcomed() && (dev == master_devices[0] || dev == master_devices[1]);
}

bool lcf_is_master_fd(int fd)
{
    int saved = errno;
    struct stat st;
    bool ours = lcf_real_fstat(fd, &st) == 0 && lcf_is_master_dev(st.st_dev);
    errno = saved;
    return ours;
}

/* ========================================================================== requests ===== */

void lcf_request_init(struct lcf_request *req, uint32_t function, const char *symbol)
{
    memset(req, 0, sizeof *req);
    req->call.function = function;
    memcpy(req->call.symbol, symbol, strnlen(symbol, LCF_SYMBOL_SIZE));
    req->call.length1 = -1;
    req->call.length2 = -1;
}

void lcf_request_fd(struct lcf_request *req, uint32_t bit, int fd)
{
    req->call.fds |= bit;
    req->fds[req->nfds++] = fd;
}

/* ============================================================================= paths ===== */

int lcf_resolve_cwd(char *buf, const char *relative, size_t len)
{
    if (lcf_real_getcwd(buf, LCF_MAX_PATH + 1) == NULL) {
        if (errno == ERANGE)
            errno = ENAMETOOLONG;
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] != '/')
        buf[n++] = '/';
    if (n + len > LCF_MAX_PATH) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf + n, relative, len);
    buf[n + len] = '\0';
    return (int)(n + len);
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
