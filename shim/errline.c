/* errline.c — the error line (see errline.h): how a call that fails closed says why, on stderr,
 * async-signal-safely (no stdio, no malloc). */

#include "errline.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LCF_QUOTE_MAX 160           /* bytes of a path quoted in an error line */

void line_mem(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 1 - l->len; /* keep one byte for the newline */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

void line_str(struct line *l, const char *s)
{
    line_mem(l, s, strlen(s));
}

size_t lcf_decimal(char digits[24], unsigned long long v)
{
    size_t i = 24;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return i;
}

void line_uint(struct line *l, unsigned long long v)
{
    char digits[24];
    size_t i = lcf_decimal(digits, v);
    line_mem(l, digits + i, sizeof digits - i);
}

void line_int(struct line *l, long long v)
{
    if (v < 0) {
        line_str(l, "-");
        line_uint(l, 0ULL - (unsigned long long)v);
    } else {
        line_uint(l, (unsigned long long)v);
    }
}

void line_errno(struct line *l, int err)
{
    const char *name = strerrorname_np(err);
    line_str(l, " (");
    if (name != NULL)
        line_str(l, name);
    else
        line_int(l, err);
    line_str(l, ")");
}

/* n bytes in double quotes, non-printable bytes as \xNN, cut at LCF_QUOTE_MAX bytes. */
static void line_quoted(struct line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    line_str(l, "\"");
    for (size_t i = 0; i < n && i < LCF_QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            line_mem(l, (const char *)&c, 1);
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            line_mem(l, esc, sizeof esc);
        }
    }
    line_str(l, n > LCF_QUOTE_MAX ? "\"..." : "\"");
}

/* An inet or inet6 address and port, as "10.0.0.5:80" or "[2001:db8:0:0:0:0:0:1]:80". */
static void line_inet(struct line *l, const struct lcf_call *call, bool inet6)
{
    static const char hex[] = "0123456789abcdef";
    line_str(l, inet6 ? "[" : "");
    for (int i = 0; i < (inet6 ? 8 : 4); i++) {
        line_str(l, i == 0 ? "" : inet6 ? ":" : ".");
        if (!inet6) {
            line_uint(l, call->address[i]);
            continue;
        }
        unsigned group = (unsigned)call->address[2 * i] << 8 | call->address[2 * i + 1];
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            started |= (group >> shift) != 0 || shift == 0;
            if (started)
                line_mem(l, &hex[(group >> shift) & 15], 1);
        }
    }
    line_str(l, inet6 ? "]:" : ":");
    line_uint(l, call->port);
}

void line_begin(struct line *l, const struct lcf_request *req)
{
    const struct lcf_call *call = &req->call;
    l->len = 0;
    line_str(l, "libcfake: ");
    line_mem(l, call->symbol, strnlen(call->symbol, LCF_SYMBOL_SIZE));
    line_str(l, "(");
    if (call->function == LCF_CONNECT_INET || call->function == LCF_BIND_INET)
        line_inet(l, call, false);
    else if (call->function == LCF_GETNAMEINFO)
        line_inet(l, call, call->family == AF_INET6);
    else if (call->function == LCF_CONNECT_INET6 || call->function == LCF_BIND_INET6)
        line_inet(l, call, true);
    else if (call->length1 >= 0)
        line_quoted(l, req->str1, (size_t)call->length1);
    else if (call->length2 >= 0)
        line_str(l, "NULL");
    else if (call->fds & LCF_FD_FILE) /* fstat & co.: the descriptor, the last one sent */
        line_int(l, req->fds[req->nfds - 1]);
    if (call->length2 >= 0) {
        line_str(l, ", ");
        line_quoted(l, req->str2, (size_t)call->length2);
    }
    line_str(l, "): ");
}

int line_fail(struct line *l)
{
    line_str(l, "; failing the call with EIO");
    l->buf[l->len++] = '\n';
    (void)!write(STDERR_FILENO, l->buf, l->len);
    errno = EIO;
    return -1;
}

/* line_fail for req's call, reason holding why: `libcfake: SYMBOL(ARGUMENTS): REASON`. The call's
 * description is formatted only here, so that a round trip that goes well never spends on it. */
int line_fail_call(const struct lcf_request *req, const struct line *reason)
{
    struct line l;
    line_begin(&l, req);
    line_mem(&l, reason->buf, reason->len);
    return line_fail(&l);
}

