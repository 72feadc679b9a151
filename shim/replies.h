/* replies.h — the checks the shim applies to every reply before a wrapper uses it (replies.c),
 * and the kinds of call they tell apart. A reply the checks accept is one the callers can use as
 * they do; the reply fuzzer (fuzz/reply_fuzzer.c) links replies.c and holds them to that. */
#ifndef LIBCFAKE_REPLIES_H
#define LIBCFAKE_REPLIES_H

#include "errline.h"
#include "transport.h"

#include "calls.h"

static inline bool is_stat(uint32_t function)
{
    return lcf_reply_kind(function) == LCF_REPLY_STAT;
}

/* The calls whose successful answer is a descriptor the program gets as the result. */
static inline bool is_open(uint32_t function)
{
    return lcf_reply_kind(function) == LCF_REPLY_DESCRIPTOR;
}

/* The reply kinds whose successful answer is a text: readlink's target, res_query's DNS
 * message, getcwd's and realpath's path, getnameinfo's host name. (Each of these tests is one
 * range of enum lcf_reply_kind.) */
static inline bool kind_has_text(uint32_t kind)
{
    return kind - LCF_REPLY_LINK_TEXT <= LCF_REPLY_HOST_TEXT - LCF_REPLY_LINK_TEXT;
}

/* The reply kinds whose result is 0 or an EAI_* code rather than -1 with errno. */
static inline bool kind_is_eai(uint32_t kind)
{
    return kind - LCF_REPLY_HOST_TEXT <= LCF_REPLY_ADDRESSES - LCF_REPLY_HOST_TEXT;
}

/* The reply kinds that bring the program a descriptor on success: chdir's, open's. */
static inline bool kind_has_descriptor(uint32_t kind)
{
    return kind - LCF_REPLY_DIRECTORY <= LCF_REPLY_DESCRIPTOR - LCF_REPLY_DIRECTORY;
}

/* The reply kinds whose result is a count: open's descriptor, readlink's and res_query's
 * length. */
static inline bool kind_counts(uint32_t kind)
{
    return kind - LCF_REPLY_DESCRIPTOR <= LCF_REPLY_DNS_MESSAGE - LCF_REPLY_DESCRIPTOR;
}

/* Checks the reply r (with its payload, as received in p) to a call of `function` sent with
 * `seq`: header, action, payload sizes and contents, descriptors. Returns 0, or -1 with
 * `invalid reply (...)` in l. */
int check_reply(uint32_t function, uint32_t seq, const struct lcf_reply *r,
                const struct packet *p, const void *payload, struct line *l);

/* Whether a stat's mode has a file type. */
bool valid_stat(const struct lcf_stat *st);

/* Whether fd is a directory (libc's fstat). */
bool is_directory(int fd);

#endif
