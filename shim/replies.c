/* replies.c — the checks on a reply from the master (see replies.h): nothing a wrapper reads of
 * a reply (counts, lengths, texts, descriptors) is used before it is checked here against the
 * call it answers. */

#include "replies.h"
#include "snapshot.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* A DNS message: at least its header; at most what one reply carries. */
#define LCF_DNS_MIN 12
#define LCF_DNS_MAX ((int32_t)(LCF_MAX_MESSAGE - sizeof(struct lcf_reply)))
_Static_assert(LCF_MAX_BYTES <= LCF_DNS_MAX, "a BYTES reply fits in one packet");

/* Appends `invalid reply (WHAT)` to l and returns -1. */
static int invalid(struct line *l, const char *what)
{
    line_str(l, "invalid reply (");
    line_str(l, what);
    line_str(l, ")");
    return -1;
}

/* Appends `invalid reply (WHAT A, expected B)` to l and returns -1. */
static int invalid_value(struct line *l, const char *what, long long got, long long expected)
{
    line_str(l, "invalid reply (");
    line_str(l, what);
    line_str(l, " ");
    line_int(l, got);
    line_str(l, ", expected ");
    line_int(l, expected);
    line_str(l, ")");
    return -1;
}

/* Checks the header of a reply against its call. */
static int check_header(const struct lcf_reply *r, const struct packet *p, uint32_t seq,
                        struct line *l)
{
    if (p->flags & (MSG_TRUNC | MSG_CTRUNC))
        return invalid(l, "longer than the call allows");
    if (p->size < sizeof *r)
        return invalid_value(l, "size", (long long)p->size, sizeof *r);
    if (r->header.magic != LCF_MAGIC)
        return invalid(l, "bad magic");
    if (r->header.version != LCF_VERSION)
        return invalid_value(l, "version", r->header.version, LCF_VERSION);
    if (r->header.kind != LCF_REPLY)
        return invalid_value(l, "kind", r->header.kind, LCF_REPLY);
    if (r->header.length != p->size)
        return invalid_value(l, "length", r->header.length, (long long)p->size);
    if (r->header.seq != seq)
        return invalid_value(l, "seq", r->header.seq, seq);
    return 0;
}

bool valid_stat(const struct lcf_stat *st)
{
    return lcf_stat_typed(st->mode) != 0;
}

static bool valid_addresses(const struct lcf_address *a, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if ((a[i].family != AF_INET && a[i].family != AF_INET6) || a[i].port > 65535)
            return false;
    return true;
}

/* Checks text_length: getaddrinfo may carry a canonical name; a successful readlink, getcwd,
 * realpath or getnameinfo carries its text (at most a path's length), a successful res_query
 * its DNS message, a successful getxattr or listxattr its bytes (or none: a size asked);
 * everything else carries none. */
static int check_text_length(uint32_t kind, const struct lcf_reply *r, struct line *l)
{
    bool answer = r->action == LCF_ANSWER;
    int32_t n = r->text_length;
    if (answer && kind == LCF_REPLY_ADDRESSES)
        return n < -1 ? invalid_value(l, "text_length", n, -1) : 0;
    if (answer && kind_is_binary(kind) && r->result >= 0) {
        if (kind == LCF_REPLY_BYTES) /* -1: the program asked the size alone */
            return n < -1 || n > LCF_MAX_BYTES ? invalid_value(l, "text_length", n, LCF_MAX_BYTES)
                                               : 0;
        return n < LCF_DNS_MIN || n > LCF_DNS_MAX ? invalid_value(l, "text_length", n, LCF_DNS_MAX)
                                                  : 0;
    }
    if (answer && kind == LCF_REPLY_HOST_TEXT && r->result != 0)
        return n != -1 ? invalid_value(l, "text_length", n, -1) : 0;
    if (answer && kind_has_text(kind) && r->result >= 0)
        return n < 0 || n > LCF_MAX_PATH ? invalid_value(l, "text_length", n, LCF_MAX_PATH) : 0;
    return n < -1 || n > 0 ? invalid_value(l, "text_length", n, -1) : 0;
}

/* Checks a successful call's text (n bytes): res_query's DNS message and the attribute calls'
 * bytes are binary and their length is the result (or, bytes only, none came and the result is a
 * size asked, at most LCF_MAX_BYTES); the others have no NUL byte; readlink returns its length,
 * getnameinfo 0 with a host name, getcwd and realpath 0 with an absolute path. */
static int check_text(uint32_t kind, const struct lcf_reply *r, const char *text, size_t n,
                      struct line *l)
{
    if (kind_is_binary(kind)) {
        if (kind == LCF_REPLY_BYTES && r->text_length == -1)
            return r->result > LCF_MAX_BYTES ? invalid_value(l, "result", r->result, LCF_MAX_BYTES)
                                             : 0;
        return r->result != r->text_length ? invalid_value(l, "result", r->result, r->text_length)
                                           : 0;
    }
    if (memchr(text, '\0', n) != NULL)
        return invalid(l, "text with a NUL byte");
    if (kind == LCF_REPLY_HOST_TEXT)
        return n == 0 ? invalid(l, "empty host name") : 0;
    if (kind != LCF_REPLY_LINK_TEXT && (n == 0 || text[0] != '/'))
        return invalid(l, "path not absolute");
    if (kind == LCF_REPLY_LINK_TEXT && r->result != r->text_length)
        return invalid_value(l, "result", r->result, r->text_length);
    return 0;
}

/* Checks the payload sizes and contents of a reply for a call of this reply kind. */
static int check_payload(uint32_t kind, const struct lcf_reply *r, size_t payload_size,
                         const void *payload, struct line *l)
{
    bool answer = r->action == LCF_ANSWER;
    bool gai = answer && kind == LCF_REPLY_ADDRESSES;
    uint32_t count = 0; /* entries this reply must carry */
    size_t entry = 0;
    if (answer && kind == LCF_REPLY_STAT) {
        count = r->result == 0;
        entry = sizeof(struct lcf_stat);
    } else if (answer && kind == LCF_REPLY_STATFS) {
        count = r->result == 0;
        entry = sizeof(struct lcf_statfs);
    } else if (gai) {
        count = r->result == 0 ? r->count : 0;
        entry = sizeof(struct lcf_address);
    }
    if (r->count != count)
        return invalid_value(l, "count", r->count, count);
    if (check_text_length(kind, r, l) < 0)
        return -1;
    size_t text = r->text_length > 0 ? (size_t)r->text_length : 0;
    uint64_t expected = (uint64_t)count * entry + text;
    if (payload_size != expected)
        return invalid_value(l, "payload bytes", (long long)payload_size, (long long)expected);
    if (count > 0 && entry == sizeof(struct lcf_stat) && !valid_stat(payload))
        return invalid(l, "stat mode without a file type");
    if (count > 0 && gai && !valid_addresses(payload, count))
        return invalid(l, "address with an unknown family or port");
    bool has_answer_text = answer && kind_has_text(kind) && r->result >= 0;
    if (has_answer_text && check_text(kind, r, payload, text, l) < 0)
        return -1;
    if (answer && !kind_is_eai(kind) && r->result < 0 && r->error <= 0)
        return invalid_value(l, "error", r->error, EIO);
    /* open returns its descriptor, readlink, res_query and the attribute reads a count (checked
     * above), read and write the bytes they may move; getaddrinfo and getnameinfo 0 or an EAI_*
     * code; every other call 0 or -1 */
    bool counts = kind_counts(kind) || kind == LCF_REPLY_COUNT;
    if (answer && !kind_is_eai(kind) && !counts && r->result != 0 && r->result != -1)
        return invalid_value(l, "result", r->result, 0);
    if (answer && counts && r->result < -1)
        return invalid_value(l, "result", r->result, -1);
    if (answer && kind == LCF_REPLY_HOST_TEXT && r->result > 0)
        return invalid_value(l, "result", r->result, 0);
    if (answer && kind_is_eai(kind) && r->result == EAI_SYSTEM && r->error <= 0)
        return invalid_value(l, "error", r->error, EIO);
    /* a failed res_query's error is the resolver's h_errno */
    if (answer && kind == LCF_REPLY_DNS_MESSAGE && r->result == -1 && r->error > NO_DATA)
        return invalid_value(l, "h_errno", r->error, HOST_NOT_FOUND);
    return 0;
}

bool is_directory(int fd)
{
    struct stat st;
    return lcf_real_fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_regular(int fd)
{
    struct stat st;
    return lcf_real_fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Checks the descriptors a reply carries: a successful open brings exactly one, a successful
 * chdir exactly one directory, connect and bind may bring a replacement socket, a successful
 * exec may bring the regular file to run, nothing else brings any. */
static int check_fds(uint32_t kind, const struct lcf_reply *r, const struct packet *p,
                     struct line *l)
{
    bool answer = r->action == LCF_ANSWER;
    int least = 0, most = 0;
    if (answer && kind_has_descriptor(kind) && r->result >= 0)
        least = most = 1;
    else if (answer && kind == LCF_REPLY_SOCKET)
        most = 1;
    else if (answer && kind == LCF_REPLY_PROGRAM && r->result == 0)
        most = 1;
    if (p->nfds < least || p->nfds > most)
        return invalid_value(l, "descriptors", p->nfds, least);
    if (kind == LCF_REPLY_DIRECTORY && p->nfds == 1 && !is_directory(p->fds[0]))
        return invalid(l, "chdir descriptor is not a directory");
    if (kind == LCF_REPLY_PROGRAM && p->nfds == 1 && !is_regular(p->fds[0]))
        return invalid(l, "exec descriptor is not a regular file");
    return 0;
}

int check_reply(uint32_t function, uint32_t seq, const struct lcf_reply *r,
                const struct packet *p, const void *payload, struct line *l)
{
    if (check_header(r, p, seq, l) < 0)
        return -1;
    if (r->action != LCF_ANSWER && r->action != LCF_PASSTHROUGH)
        return invalid_value(l, "action", r->action, LCF_ANSWER);
    uint32_t kind = lcf_reply_kind(function); /* (0 for a function of no row: no payload) */
    /* LCF_WATCH_* bits come with a successful open only */
    bool opened = r->action == LCF_ANSWER && kind == LCF_REPLY_DESCRIPTOR && r->result >= 0;
    if (r->flags != 0 && (!opened || (r->flags & ~(uint32_t)LCF_WATCH_ALL) != 0))
        return invalid_value(l, "flags", r->flags, 0);
    if (check_payload(kind, r, p->size - sizeof *r, payload, l) < 0)
        return -1;
    return check_fds(kind, r, p, l);
}
