/* signals.c — the program's signal handlers run behind a trampoline. While the shim runs a real
 * libc function that may call wrapped functions back (lcf_in_real: getaddrinfo loading NSS
 * modules, realpath, freopen), those wrappers go straight to libc; a signal handler interrupting
 * that window is the program's own code, and its calls must be served (or refused) like any
 * other, never passed to libc. So every handler the program installs (sigaction, signal,
 * bsd_signal, sysv_signal, ssignal, sigset) is kept here and the kernel gets the trampoline,
 * which clears lcf_in_real for the handler's run and restores it after. Queries and the old
 * action report the program's own handler, never the trampoline.
 *
 * The trampoline is installed with SA_SIGINFO and calls the program's handler with three
 * arguments; a one-argument handler ignores the other two (the x86-64 calling convention passes
 * them in registers). A handler that leaves with siglongjmp leaves lcf_in_real at 0: the real
 * call it interrupted is abandoned with it. Async-signal-safe: one atomic load per delivery. */

#include "shim.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

typedef void (*lcf_handler)(int, siginfo_t *, void *);

/* The program's handler of each signal (NULL: none of ours installed) and whether it asked for
 * SA_SIGINFO, for the old actions reported back. */
static lcf_handler handlers[_NSIG];
static int siginfo_flags[_NSIG];

static int real_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    LCF_REAL(sigaction, int, int, const struct sigaction *, struct sigaction *);
    return libc_sigaction(sig, act, old);
}

static void trampoline(int sig, siginfo_t *info, void *context)
{
    int saved = lcf_in_real;
    lcf_in_real = 0; /* the handler's calls are the program's */
    lcf_handler handler = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    if (handler != NULL)
        handler(sig, info, context);
    lcf_in_real = saved;
}

static bool valid(int sig)
{
    return sig > 0 && sig < _NSIG;
}

/* Whether the action runs a function (not SIG_DFL, SIG_IGN or SIG_HOLD). */
static bool runs_function(const struct sigaction *act)
{
    return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN &&
           act->sa_handler != SIG_HOLD && act->sa_handler != SIG_ERR;
}

/* An old action as the program installed it: the trampoline replaced by `previous`. */
static void report(struct sigaction *old, lcf_handler previous, int previous_siginfo)
{
    if (old == NULL || old->sa_sigaction != trampoline)
        return;
    old->sa_sigaction = previous;
    old->sa_flags = (old->sa_flags & ~SA_SIGINFO) | previous_siginfo;
}

LCF_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!valid(sig))
        return real_sigaction(sig, act, old);
    lcf_handler previous = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);
    int previous_siginfo = siginfo_flags[sig];
    struct sigaction mine;
    if (act != NULL) {
        mine = *act;
        if (runs_function(&mine)) {
            siginfo_flags[sig] = mine.sa_flags & SA_SIGINFO;
            __atomic_store_n(&handlers[sig], mine.sa_sigaction, __ATOMIC_RELEASE);
            mine.sa_sigaction = trampoline;
            mine.sa_flags |= SA_SIGINFO;
        }
    }
    int ret = real_sigaction(sig, act != NULL ? &mine : NULL, old);
    if (ret < 0 && act != NULL) { /* nothing changed */
        int err = errno;
        siginfo_flags[sig] = previous_siginfo;
        __atomic_store_n(&handlers[sig], previous, __ATOMIC_RELEASE);
        errno = err;
    }
    if (ret == 0)
        report(old, previous, previous_siginfo);
    return ret;
}

LCF_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(sig, act, old);
}

/* After libc's signal() & co. installed a handler directly (with the flags and mask they chose):
 * the same action with the trampoline in its place. The handler ran bare for the instant between;
 * the shim is not in a real call then (this thread is here). */
static void adopt(int sig)
{
    int saved = errno;
    struct sigaction now;
    if (real_sigaction(sig, NULL, &now) == 0 && runs_function(&now) &&
        now.sa_sigaction != trampoline) {
        siginfo_flags[sig] = now.sa_flags & SA_SIGINFO;
        __atomic_store_n(&handlers[sig], now.sa_sigaction, __ATOMIC_RELEASE);
        now.sa_sigaction = trampoline;
        now.sa_flags |= SA_SIGINFO;
        real_sigaction(sig, &now, NULL);
    }
    errno = saved;
}

/* The program's handler when libc reports the trampoline as the old one. (The casts go through
 * void (*)(void), the type GCC lets any function pointer be cast to and from.) */
static sighandler_t reported(sighandler_t old, lcf_handler previous)
{
    if ((void (*)(void))old != (void (*)(void))trampoline)
        return old;
    return (sighandler_t)(void (*)(void))previous;
}

/* signal, bsd_signal, sysv_signal, ssignal and sigset: libc's own, then adopted. */
#define SIGNAL_WRAPPER(name)                                                                    \
    LCF_EXPORT sighandler_t name(int sig, sighandler_t handler)                                  \
    {                                                                                            \
        LCF_REAL(name, sighandler_t, int, sighandler_t);                                         \
        if (!valid(sig))                                                                         \
            return libc_##name(sig, handler);                                                    \
        lcf_handler previous = __atomic_load_n(&handlers[sig], __ATOMIC_ACQUIRE);                \
        sighandler_t old = libc_##name(sig, handler);                                            \
        if (old == SIG_ERR)                                                                      \
            return old;                                                                          \
        adopt(sig);                                                                              \
        return reported(old, previous);                                                          \
    }

SIGNAL_WRAPPER(signal)
SIGNAL_WRAPPER(bsd_signal)
SIGNAL_WRAPPER(sysv_signal)
SIGNAL_WRAPPER(__sysv_signal)
SIGNAL_WRAPPER(ssignal)
SIGNAL_WRAPPER(sigset)
