/* channel.c — the router of a forwarded call: the wrappers build a struct lcf_request and call
 * lcf_forward, which makes the one passthrough decision of the call (passthrough.c), else gets
 * the thread's connection (connection.c), answers from the snapshot when it can
 * (snapshot_answers.c) or makes the round trip, and fails closed with one line on stderr
 * (errline.c). Also the questions the wrappers ask about paths and descriptors, which may
 * connect to get the first welcome.
 * Everything on the call path is async-signal-safe: no malloc, no stdio, no lock to wait on. */

#include "shim.h"
#include "connection.h"
#include "errline.h"
#include "passthrough.h"
#include "real.h"
#include "snapshot_answers.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static __thread int depth;          /* round trips in progress on this thread */

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
        action = conn_exchange(c, req, fds, reply, fd, payload, payload_size, &l);
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

/* Whether this process has received a welcome (and so the table and the master's devices);
 * connects to get one if not. Quietly false when the master cannot be reached: there is no
 * master file to ask about. (A process that has not called the master yet may hold the master's
 * descriptors, inherited: only a welcome names their devices.) */
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
    size_t n = strnlen(path, LCF_MAX_PATH + 1);
    return n <= LCF_MAX_PATH && welcomed() && passthrough_path(path, n);
}

bool lcf_is_master_dev(uint64_t dev)
{
    return dev != 0 && welcomed() && table_master_dev(dev);
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
    req->call.umask = lcf_umask();
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

