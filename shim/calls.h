/* calls.h — what the shim asks of the call table (LCF_CALLS in libcfake_wire.h): a call's reply
 * kind and whether the snapshot may answer it, as arrays the compiler makes from the table's
 * rows, indexed by function number. Nothing about a call is written here: a new row is known to every check at once. */
#ifndef LIBCFAKE_CALLS_H
#define LIBCFAKE_CALLS_H

#include "libcfake_wire.h"

#include <stdbool.h>

#define LCF_REPLY_ENTRY(NAME, number, name, family, subject, reply, effect, noted) \
    [number] = LCF_REPLY_##reply,
#define LCF_NOTED_ENTRY(NAME, number, name, family, subject, reply, effect, noted) [number] = noted,

/* Per function number: its enum lcf_reply_kind, and whether the snapshot answers it. */
static const uint8_t lcf_reply_kinds[] = {LCF_CALLS(LCF_REPLY_ENTRY)};
static const uint8_t lcf_noted_calls[] = {LCF_CALLS(LCF_NOTED_ENTRY)};

#undef LCF_REPLY_ENTRY
#undef LCF_NOTED_ENTRY

/* The enum lcf_reply_kind of a function; 0 for a number the table lacks. */
static inline uint32_t lcf_reply_kind(uint32_t function)
{
    return function < sizeof lcf_reply_kinds ? lcf_reply_kinds[function] : 0;
}

/* Whether the shim may answer the function from the metadata snapshot (and note it). */
static inline bool lcf_noted(uint32_t function)
{
    return function < sizeof lcf_noted_calls && lcf_noted_calls[function];
}

#endif
