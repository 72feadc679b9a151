/* A library preloaded before the shim (LIBCFAKE_PRELOAD_FIRST) that counts the process's
 * sched_yield calls and prints "sched_yield N" on stderr at exit. The shim yields only while it
 * spins for a reply, so the count tells a test whether a thread spun or slept. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>

static long yields;

int sched_yield(void)
{
    static int (*real)(void);
    if (real == NULL)
        real = (int (*)(void))dlsym(RTLD_NEXT, "sched_yield");
    __atomic_fetch_add(&yields, 1, __ATOMIC_RELAXED);
    return real();
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "sched_yield %ld\n", __atomic_load_n(&yields, __ATOMIC_RELAXED));
}
