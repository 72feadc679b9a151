/* libcfake-launch: put a program, and every process it will ever start, under a seccomp filter
 * whose user-notification listener the master holds. Built static, so it needs nothing.
 *
 *     LIBCFAKE_SUPERVISOR_FD=N libcfake-launch PROGRAM [ARGS...]
 *     LIBCFAKE_SUPERVISOR_FD=N libcfake-launch --probe
 *     libcfake-launch --filter | --allowed
 *
 * Descriptor N is a socket to the master. The launcher sets no_new_privs (so it works for any
 * user), installs the filter with SECCOMP_FILTER_FLAG_NEW_LISTENER, writes the listener's number
 * and whether signals leave a waiting call alone (two int32: the number, and 1 if the kernel
 * took SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) on N, waits for the byte 'T' (the master took a
 * copy with pidfd_getfd), closes both, and executes PROGRAM (looked up on PATH), or the file
 * LIBCFAKE_LAUNCH_EXECUTABLE names if set (PROGRAM is then only argv[0]; Popen's executable=);
 * a path it executes through the shim's gate (gate.c), as the master would only let it go on.
 * With --probe it exits 0 instead: the master learns whether this kernel, under whatever
 * filters this process already has, can give it a listener (a second listener in one filter
 * chain fails with EBUSY). --filter writes the filter's instructions (struct sock_filter, in
 * the machine's byte order) to standard output and --allowed the numbers of the allow list, one
 * a line, for tests/test_filter.py, which runs the filter on every number. Filters
 * are inherited across fork and exec and cannot be removed, so a static binary, a Go program, a
 * child started without LD_PRELOAD, or libc reached through dlsym are all under it. When the
 * listener closes (the master is gone), every trapped call fails with ENOSYS: fail closed.
 *
 * The filter, for x86_64:
 *   - a system call of another ABI (i386 through int 0x80, x32) fails with ENOSYS;
 *   - the calls in the allow list below, which name no path, no address and no other process,
 *     are allowed (first, by their number alone: the kernel then skips the filter for them),
 *     found by a binary search: every other call runs a few instructions of it, not one for
 *     each number of the list, and the kernel works out which calls it may skip quicker too
 *     (installing the filter took 0.4-0.6 ms of every program's start with a linear list);
 *   - a system call made from the shim's gate (an instruction at a fixed address that the shim
 *     maps, LCF_GATE_ADDRESS) is allowed: the shim's own real calls cost no trap;
 *   - a few calls are allowed only with harmless arguments (socket of a family the network model
 *     serves, sendto without an address, recvfrom without a source buffer, ioctl other than
 *     changing inode flags...);
 *   - the calls that change a thread's ids or the process's umask (set*id, setgroups, umask)
 *     trap, so that the master knows when what it keeps of a caller's credentials is stale;
 *     it lets them go on (their outcome is the kernel's to decide);
 *   - clone3 fails with ENOSYS (its flags are in memory the filter cannot read; libc falls
 *     back to clone, whose flags it can);
 *   - everything else traps to the master, which answers it (from the models), lets it go on
 *     (where nothing in the program's memory matters), or refuses it as a violation. A system
 *     call this file has never heard of traps too.
 *
 * Exit status 127 with a line on stderr when it cannot set itself up (126 if PROGRAM cannot be
 * executed). It writes nothing else. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../gate.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_RET_USER_NOTIF
#error "this kernel's headers lack seccomp user notification (Linux 5.0)"
#endif

#define ARCH_NR offsetof(struct seccomp_data, arch)
#define SYSCALL_NR offsetof(struct seccomp_data, nr)
#define IP_LOW offsetof(struct seccomp_data, instruction_pointer)
#define IP_HIGH (offsetof(struct seccomp_data, instruction_pointer) + 4)
#define ARG_LOW(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define ARG_HIGH(n) (offsetof(struct seccomp_data, args) + 8 * (n) + 4)

#define ALLOW SECCOMP_RET_ALLOW
#define TRAP SECCOMP_RET_USER_NOTIF
#define FAIL(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/* System calls that name no path, no socket address and no other process, and change nothing
 * outside the process but through descriptors it already holds. The most frequent first. */
static const int allowed[] = {
    SYS_read, SYS_write, SYS_close, SYS_futex, SYS_fstat, SYS_lseek, SYS_mmap, SYS_munmap,
    SYS_mprotect, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_pread64,
    SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev, SYS_preadv2, SYS_pwritev2,
    SYS_getdents64, SYS_getdents, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6, SYS_epoll_wait,
    SYS_epoll_pwait, SYS_epoll_pwait2, SYS_epoll_ctl, SYS_epoll_create, SYS_epoll_create1,
    SYS_fcntl, SYS_dup, SYS_dup2, SYS_dup3, SYS_pipe, SYS_pipe2, SYS_close_range,
    SYS_sched_yield, SYS_mremap, SYS_msync, SYS_mincore, SYS_madvise, SYS_nanosleep,
    SYS_clock_nanosleep, SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_time,
    SYS_getitimer, SYS_setitimer, SYS_alarm, SYS_pause, SYS_getpid, SYS_gettid, SYS_getppid,
    SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getresuid, SYS_getresgid,
    SYS_getgroups, SYS_getpgid, SYS_setpgid,
    SYS_getpgrp, SYS_setsid, SYS_getsid, SYS_capget, SYS_capset, SYS_uname,
    SYS_getrlimit, SYS_setrlimit, SYS_getrusage, SYS_sysinfo, SYS_times, SYS_getcpu,
    SYS_getrandom, SYS_getcwd, SYS_fchdir, SYS_flock, SYS_fsync, SYS_fdatasync, SYS_ftruncate,
    SYS_fallocate, SYS_fadvise64, SYS_readahead, SYS_sync_file_range, SYS_syncfs, SYS_sync,
    SYS_fstatfs, SYS_sendfile, SYS_copy_file_range, SYS_splice, SYS_tee, SYS_vmsplice,
    SYS_accept, SYS_accept4, SYS_recvmsg, SYS_recvmmsg, SYS_shutdown,
    SYS_getsockname, SYS_getpeername, SYS_socketpair, SYS_setsockopt, SYS_getsockopt,
    SYS_fork, SYS_vfork, SYS_exit, SYS_exit_group, SYS_wait4, SYS_waitid, SYS_set_tid_address, SYS_set_robust_list,
    SYS_get_robust_list, SYS_rseq, SYS_arch_prctl, SYS_prctl, SYS_sigaltstack,
    SYS_rt_sigpending, SYS_rt_sigtimedwait, SYS_rt_sigsuspend, SYS_restart_syscall,
    SYS_personality, SYS_getpriority, SYS_sched_getaffinity, SYS_sched_setaffinity,
    SYS_sched_getparam, SYS_sched_getscheduler, SYS_sched_get_priority_max,
    SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_mlock, SYS_mlock2, SYS_munlock,
    SYS_mlockall, SYS_munlockall, SYS_membarrier, SYS_memfd_create, SYS_eventfd, SYS_eventfd2,
    SYS_signalfd, SYS_signalfd4, SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime,
    SYS_timer_create, SYS_timer_settime, SYS_timer_gettime, SYS_timer_getoverrun,
    SYS_timer_delete, SYS_inotify_init, SYS_inotify_init1, SYS_inotify_rm_watch,
    SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_cancel, SYS_io_getevents,
    SYS_io_pgetevents, SYS_mbind, SYS_get_mempolicy, SYS_set_mempolicy, SYS_pkey_alloc,
    SYS_pkey_free, SYS_pkey_mprotect, SYS_seccomp, SYS_landlock_create_ruleset,
    SYS_landlock_add_rule, SYS_landlock_restrict_self, SYS_futex_waitv, SYS_fgetxattr,
    SYS_flistxattr,
};

struct program {
    struct sock_filter code[BPF_MAXINSNS];
    unsigned short length;
};

static int emit(struct program *p, struct sock_filter instruction) {
    if (p->length >= BPF_MAXINSNS)
        return -1;
    p->code[p->length++] = instruction;
    return 0;
}

#define STMT(code, k) emit(p, (struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) emit(p, (struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))
#define LOAD(offset) STMT(BPF_LD | BPF_W | BPF_ABS, (offset))
#define RETURN(action) STMT(BPF_RET | BPF_K, (action))
/* if A == value: next instruction, else skip `skip` instructions */
#define IF_EQUAL(value, skip) JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), 0, (skip))

/* A call whose outcome depends on one argument: `matched` when its low word is one of `values`,
 * else `otherwise`. With `whole`, the argument is a 64-bit value and a nonzero high word counts
 * as not matched; without, only the low word counts (the kernel reads an int there). */
static int by_argument(struct program *p, int nr, int arg, const unsigned *values, int count,
                       unsigned matched, unsigned otherwise, int whole) {
    int failed = 0;
    failed |= LOAD(SYSCALL_NR);
    failed |= IF_EQUAL((unsigned)nr, (unsigned char)(count + (whole ? 5 : 3)));
    if (whole) {
        failed |= LOAD(ARG_HIGH(arg));
        failed |= IF_EQUAL(0, (unsigned char)(count + 1));
    }
    failed |= LOAD(ARG_LOW(arg));
    for (int i = 0; i < count; i++)
        failed |= JUMP(BPF_JMP | BPF_JEQ | BPF_K, values[i], (unsigned char)(count - i), 0);
    failed |= RETURN(otherwise);
    failed |= RETURN(matched);
    return failed;
}

/* The allow list's numbers in ascending order, each once: what emit_search searches. */
static unsigned sorted_allowed[sizeof allowed / sizeof allowed[0]];
static size_t allowed_count;

static int by_number(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

static void sort_allowed(void) {
    size_t n = sizeof allowed / sizeof allowed[0];
    for (size_t i = 0; i < n; i++)
        sorted_allowed[i] = (unsigned)allowed[i];
    qsort(sorted_allowed, n, sizeof sorted_allowed[0], by_number);
    allowed_count = 0;
    for (size_t i = 0; i < n; i++)
        if (allowed_count == 0 || sorted_allowed[allowed_count - 1] != sorted_allowed[i])
            sorted_allowed[allowed_count++] = sorted_allowed[i];
}

#define LEAF 4 /* numbers a search compares one by one, at the bottom */

/* Instructions emit_search takes for n numbers. */
static unsigned search_size(size_t n) {
    if (n <= LEAF)
        return (unsigned)n + 2;
    size_t left = n / 2;
    return 2 + search_size(left) + search_size(n - left);
}

/* A binary search of the n ascending numbers at v for A (a system call's number): ALLOW when A
 * is one of them, else on at the instruction `after` instructions past the search's end. A node
 * is "A >= middle: jump to the right half" (a BPF_JA: a half may be longer than the 255
 * instructions a conditional jump reaches); a leaf compares A with each of its numbers. */
static int emit_search(struct program *p, const unsigned *v, size_t n, unsigned after) {
    int failed = 0;
    if (n <= LEAF) {
        for (size_t i = 0; i < n; i++) /* found: on to the RET below */
            failed |= JUMP(BPF_JMP | BPF_JEQ | BPF_K, v[i], (unsigned char)(n - i), 0);
        failed |= STMT(BPF_JMP | BPF_JA, 1 + after);
        failed |= RETURN(ALLOW);
        return failed;
    }
    size_t left = n / 2;
    failed |= JUMP(BPF_JMP | BPF_JGE | BPF_K, v[left], 0, 1);
    failed |= STMT(BPF_JMP | BPF_JA, search_size(left));
    failed |= emit_search(p, v, left, after + search_size(n - left));
    failed |= emit_search(p, v + left, n - left, after);
    return failed;
}

static int build(struct program *p) {
    int failed = 0;
    p->length = 0;
    sort_allowed();
    /* another ABI: i386 (int 0x80) or x32 numbers */
    failed |= LOAD(ARCH_NR);
    failed |= JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    failed |= RETURN(FAIL(ENOSYS));
    failed |= LOAD(SYSCALL_NR);
    failed |= JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    failed |= RETURN(FAIL(ENOSYS));
    /* the allow list, before anything that reads the instruction pointer or an argument: the
     * kernel (Linux 5.11) then knows these calls are always allowed and skips the filter */
    failed |= emit_search(p, sorted_allowed, allowed_count, 0);
    /* the shim's gate: the instruction after its syscall instruction */
    failed |= LOAD(IP_HIGH);
    failed |= IF_EQUAL((unsigned)((LCF_GATE_ADDRESS + LCF_GATE_RETURN) >> 32), 3);
    failed |= LOAD(IP_LOW);
    failed |= IF_EQUAL((unsigned)((LCF_GATE_ADDRESS + LCF_GATE_RETURN) & 0xffffffffu), 1);
    failed |= RETURN(ALLOW);
    failed |= LOAD(SYSCALL_NR);
    /* thread and process creation: clone without new namespaces; clone3 falls back to it */
    failed |= IF_EQUAL(SYS_clone3, 1);
    failed |= RETURN(FAIL(ENOSYS));
    failed |= IF_EQUAL(SYS_clone, 4);
    failed |= LOAD(ARG_LOW(0));
    failed |= JUMP(BPF_JMP | BPF_JSET | BPF_K,
                   CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                       CLONE_NEWNET | CLONE_NEWCGROUP,
                   0, 1);
    failed |= RETURN(TRAP);
    failed |= RETURN(ALLOW);
    /* sockets of the families the network model serves; others (packet, netlink...) trap */
    static const unsigned families[] = {AF_UNIX, AF_INET, AF_INET6};
    failed |= by_argument(p, SYS_socket, 0, families, 3, ALLOW, TRAP, 0);
    /* sendto without a destination (send() on a connected socket); recvfrom without a source
     * buffer (recv()): with one, the master gives the datagram the source the program sent to */
    static const unsigned null[] = {0};
    failed |= by_argument(p, SYS_sendto, 4, null, 1, ALLOW, TRAP, 1);
    failed |= by_argument(p, SYS_recvfrom, 4, null, 1, ALLOW, TRAP, 1);
    /* prlimit64 of the process itself */
    failed |= by_argument(p, SYS_prlimit64, 0, null, 1, ALLOW, TRAP, 1);
    /* ioctl, but not the ones that change a file's inode flags or attributes (chattr) */
    static const unsigned inode_flags[] = {FS_IOC_SETFLAGS, FS_IOC_SETVERSION, FS_IOC_FSSETXATTR,
                                           FS_IOC32_SETFLAGS, FS_IOC32_SETVERSION};
    failed |= by_argument(p, SYS_ioctl, 1, inode_flags, 5, TRAP, ALLOW, 0);
    failed |= RETURN(TRAP);
    return failed ? -1 : 0;
}

static void die(const char *what) {
    fprintf(stderr, "libcfake-launch: %s: %s\n", what, strerror(errno));
    exit(127);
}

/* Tell the master the listener's number, and wait until it has taken a copy of it (with
 * pidfd_getfd: sending it with SCM_RIGHTS would take a sendmsg, which the filter now traps, to
 * a master that cannot answer it before it has the listener). Only read and write: allowed. */
static void hand_over(int channel, int listener, int killable) {
    int32_t message[2] = {listener, killable};
    if (write(channel, message, sizeof message) != (ssize_t)sizeof message)
        die("telling the master the listener's number");
    char taken = 0;
    if (read(channel, &taken, 1) != 1 || taken != 'T') {
        errno = EPROTO;
        die("waiting for the master to take the listener");
    }
}

/* --filter and --allowed (see the top of this file). */
static int dump(const char *what) {
    static struct program program;
    if (build(&program) != 0)
        return 1;
    if (strcmp(what, "--allowed") == 0) {
        for (size_t i = 0; i < allowed_count; i++)
            printf("%u\n", sorted_allowed[i]);
        return fflush(stdout) != 0;
    }
    size_t bytes = program.length * sizeof program.code[0];
    return fwrite(program.code, 1, bytes, stdout) != bytes || fflush(stdout) != 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--filter") == 0 || strcmp(argv[1], "--allowed") == 0))
        return dump(argv[1]);
    if (argc < 2) {
        fprintf(stderr, "usage: LIBCFAKE_SUPERVISOR_FD=N libcfake-launch PROGRAM [ARGS...]\n");
        return 127;
    }
    const char *channel_text = getenv("LIBCFAKE_SUPERVISOR_FD");
    char *end = NULL;
    long channel = channel_text != NULL ? strtol(channel_text, &end, 10) : -1;
    if (channel_text == NULL || *channel_text == '\0' || *end != '\0' || channel < 0 ||
        channel > 1 << 20) {
        errno = EINVAL;
        die("LIBCFAKE_SUPERVISOR_FD");
    }
    static struct program program;
    if (build(&program) != 0) {
        errno = E2BIG;
        die("building the filter");
    }
    struct sock_fprog filter = {.len = program.length, .filter = program.code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("prctl(PR_SET_NO_NEW_PRIVS)");
    unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &filter);
    if (listener < 0 && errno == EINVAL) { /* before Linux 5.19: signals may interrupt a wait */
        flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &filter);
    }
    if (listener < 0)
        die("installing the seccomp filter");
    int killable = (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) != 0;
    hand_over((int)channel, (int)listener, killable);
    close((int)listener);
    close((int)channel);
    unsetenv("LIBCFAKE_SUPERVISOR_FD");
    if (strcmp(argv[1], "--probe") == 0)
        return 0;
    const char *executable = getenv("LIBCFAKE_LAUNCH_EXECUTABLE");
    static char copy[4096];
    const char *file = argv[1];
    if (executable != NULL && *executable != '\0') {
        snprintf(copy, sizeof copy, "%s", executable);
        unsetenv("LIBCFAKE_LAUNCH_EXECUTABLE");
        file = copy;
    }
    /* The exec of the test's own command goes through the shim's gate, as the shim's decided
     * calls do: the master would only let it go on (a trap costs a program's start 0.2-0.5 ms).
     * Where that fails (no gate here; ENOEXEC, a script execvp gives to the shell) the calls
     * below make it again, trapped; so does a PATH search. */
    if (file == copy || strchr(file, '/') != NULL)
        lcf_gate_syscall(SYS_execve, (long)file, (long)(argv + 1), (long)environ, 0, 0, 0);
    if (file == copy)
        execv(copy, argv + 1);
    else
        execvp(argv[1], argv + 1);
    fprintf(stderr, "libcfake-launch: %s: %s\n", argv[1], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
