/* errline.h — the one line on stderr with which a call fails closed (errline.c), built without
 * stdio or malloc: `libcfake: SYMBOL(ARGUMENTS): REASON; failing the call with EIO`. Each step
 * of the channel appends its reason to a struct line; the call's description is formatted only
 * when the call fails. */
#ifndef LIBCFAKE_ERRLINE_H
#define LIBCFAKE_ERRLINE_H

#include "shim.h"

#define LCF_LINE_SIZE 512           /* one error line on stderr */

/* One line for stderr, built without stdio. */
struct line {
    char buf[LCF_LINE_SIZE];
    size_t len;
};

/* Append to the line; what does not fit is cut (one byte is kept for the newline). */
void line_mem(struct line *l, const char *s, size_t n);
void line_str(struct line *l, const char *s);
void line_uint(struct line *l, unsigned long long v);
void line_int(struct line *l, long long v);
/* The errno's name ("ECONNREFUSED") in parentheses. */
void line_errno(struct line *l, int err);

/* Writes v in decimal at the end of digits; returns where it starts. */
size_t lcf_decimal(char digits[24], unsigned long long v);

/* Starts `libcfake: SYMBOL(ARGUMENTS): `, the arguments being the call's strings or address. */
void line_begin(struct line *l, const struct lcf_request *req);

/* Ends the line, writes it to stderr and fails the call: returns -1 with errno EIO. */
int line_fail(struct line *l);

/* line_fail for req's call, reason holding why: `libcfake: SYMBOL(ARGUMENTS): REASON`. */
int line_fail_call(const struct lcf_request *req, const struct line *reason);

#endif
