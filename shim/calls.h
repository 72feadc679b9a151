/* calls.h — what the shim asks of the call table (LCF_CALLS in libcfake_wire.h): a call's reply
 * kind and whether the snapshot may answer it, as switches the compiler makes from the table's
 * rows. Nothing about a call is written here: a new row is known to every check at once. */
#ifndef LIBCFAKE_CALLS_H
#define LIBCFAKE_CALLS_H

#include "libcfake_wire.h"

#include <stdbool.h>

#define LCF_REPLY_CASE(NAME, number, name, family, subject, reply, effect, noted) \
    case LCF_##NAME:                                                              \
        return LCF_REPLY_##reply;
#define LCF_NOTED_CASE(NAME, number, name, family, subject, reply, effect, noted) \
    case LCF_##NAME:                                                              \
        return noted;

/* The enum lcf_reply_kind of a function; 0 for a number the table lacks. */
static inline uint32_t lcf_reply_kind(uint32_t function)
{
    switch (function) {
        LCF_CALLS(LCF_REPLY_CASE)
    default:
        return 0;
    }
}

/* Whether the shim may answer the function from the metadata snapshot (and note it). */
static inline bool lcf_noted(uint32_t function)
{
    switch (function) {
        LCF_CALLS(LCF_NOTED_CASE)
    default:
        return false;
    }
}

#undef LCF_REPLY_CASE
#undef LCF_NOTED_CASE

#endif
