/* A library preloaded before the shim (LIBCFAKE_PRELOAD_FIRST) that counts sched_yield calls, each
 * thread its own, and prints "sched_yield N" on stderr at exit: the count of the thread that
 * exits the process (the main thread, for the tests' programs). The shim yields only while it
 * spins for a reply, so the count tells a test whether that thread spun or slept. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>

static __thread long yields;

int sched_yield(void)
{
    static int (*real)(void);
    if (real == NULL)
        real = (int (*)(void))dlsym(RTLD_NEXT, "sched_yield");
    yields++;
    return real();
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "sched_yield %ld\n", yields);
}
