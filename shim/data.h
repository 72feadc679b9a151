/* data.h — watched descriptors (data.c): the model files whose reads, writes, syncs, truncations
 * or closes the master decides on (a fault rule on data calls, a disk of limited size). See
 * LCF_WATCH_* in libcfake_wire.h. */
#ifndef LIBCFAKE_DATA_H
#define LIBCFAKE_DATA_H

#include "shim.h"

/* Records the LCF_WATCH_* bits the master gave fd's open (0 clears a stale mark). */
void lcf_watch(int fd, uint32_t bits);

/* The LCF_WATCH_* bits of fd. */
unsigned lcf_watched(int fd);

/* fdopen for the shim's fopen: a stream whose every flush goes through the checked write when fd
 * is watched for writes or reads (fopencookie, with fileno() still fd); libc's fdopen otherwise.
 * On failure the descriptor is closed and errno kept, as lcf_fdopen. */
FILE *lcf_data_fdopen(int fd, const char *mode);

#endif
