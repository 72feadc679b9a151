/* umask.c — the program's umask, known to the shim so that every call says it (struct
 * lcf_call.umask, and the hello) and the master never reads /proc/PID/status to create a file.
 *
 * The umask is the process's (the kernel keeps it in the fs_struct its threads share), so the
 * shim keeps one word per process, umask_state: the value every call copies (LCF_UMASK_KNOWN |
 * umask, or 0 when it must be read), a count of umask() calls in progress and a generation. It
 * is read from /proc/thread-self/status, which changes nothing (a umask(0)/umask(old) pair would
 * give another thread's create a umask of 0 in between), when the value is 0: at the process's
 * first call, after an exec (the kernel keeps the umask; the new image reads it), and after two
 * umask() calls overlapped. umask() itself sets the value, which is all it takes when calls to it
 * do not overlap: it clears the value first (no call in between trusts or stores the old one),
 * makes the change, and sets the new value only if no other umask() ran meanwhile; else it leaves
 * it 0 and the next call reads what the kernel kept. Lock-free, async-signal-safe.
 *
 * A fork child inherits the word with the umask it describes (lcf_umask_forked repairs a count
 * that a thread left behind in the parent). A vfork child shares its parent's memory but not its
 * umask: its umask() leaves the value 0, so the parent, resumed, reads its own, and its calls read
 * the child's without storing it. Unseen: a raw syscall(SYS_umask), and a thread that unshared
 * its fs_struct (CLONE_FS) and so has a umask of its own. */

#include "shim.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VALUE 0xffffffffULL         /* what calls copy: LCF_UMASK_KNOWN | umask, or 0 */
#define BUSY_ONE (1ULL << 32)       /* umask() calls in progress, 16 bits */
#define BUSY (0xffffULL << 32)
#define GEN_ONE (1ULL << 48)        /* umask() calls begun, modulo 2^16 */
#define GEN (0xffffULL << 48)

uint64_t lcf_umask_state;

/* The Umask line of a status file of /proc: LCF_UMASK_KNOWN | umask, or 0. */
static uint32_t umask_of(const char *path)
{
    int fd = lcf_real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char text[1024]; /* Umask is the second line, after a Name of at most 64 bytes */
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0)
        return 0;
    text[got] = '\0';
    const char *line = strstr(text, "\nUmask:");
    if (line == NULL)
        return 0;
    uint32_t mask = 0;
    int digits = 0;
    for (const char *c = line + 7; *c != '\n'; c++) {
        if (*c >= '0' && *c <= '7' && digits < 4) {
            mask = mask * 8 + (uint32_t)(*c - '0');
            digits++;
        } else if (*c != '\t' && *c != ' ') {
            return 0;
        }
    }
    return digits > 0 && mask <= 0777 ? LCF_UMASK_KNOWN | mask : 0;
}

uint32_t lcf_umask_read(uint64_t seen)
{
    int saved = errno;
    /* this thread's own fs_struct; /proc/self is the main thread's, which may have exited */
    uint32_t word = umask_of("/proc/thread-self/status");
    if (word == 0)
        word = umask_of("/proc/self/status");
    /* stored only if no umask() began or is running since `seen` (the compare fails then) */
    if (word != 0 && (seen & BUSY) == 0 && !lcf_shares_parent_memory())
        __atomic_compare_exchange_n(&lcf_umask_state, &seen, (seen & ~VALUE) | word, false,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    errno = saved;
    return word;
}

void lcf_umask_forked(void)
{
    /* the threads that were in umask() did not come along; the value they left is read again */
    uint64_t s = __atomic_load_n(&lcf_umask_state, __ATOMIC_RELAXED);
    if ((s & BUSY) != 0)
        __atomic_store_n(&lcf_umask_state, s & GEN, __ATOMIC_RELAXED);
}

/* The system call itself, as glibc's umask makes it: no dlsym on first use, which takes the
 * loader's lock that a fork child of a threaded program may find held (subprocess's umask= runs
 * umask() in the child, before exec). */
LCF_EXPORT mode_t umask(mode_t mask)
{
    uint64_t s = __atomic_load_n(&lcf_umask_state, __ATOMIC_RELAXED);
    uint64_t begun;
    do { /* one more in progress, a new generation, the value to be read */
        begun = (s & ~VALUE) + BUSY_ONE + GEN_ONE;
    } while (!__atomic_compare_exchange_n(&lcf_umask_state, &s, begun, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    bool alone = (s & BUSY) == 0;
    mode_t old = (mode_t)syscall(SYS_umask, mask);
    uint32_t word = alone && !lcf_shares_parent_memory() ? LCF_UMASK_KNOWN | (mask & 0777) : 0;
    uint64_t now = __atomic_load_n(&lcf_umask_state, __ATOMIC_RELAXED);
    uint64_t done;
    do { /* ours is the kernel's value if no other umask() overlapped ours: alone, and none since */
        bool last = ((now ^ begun) & GEN) == 0;
        uint64_t left = (now & BUSY) != 0 ? now - BUSY_ONE : now; /* 0 after a fork's repair */
        done = (left & ~VALUE) | (last ? word : 0);
    } while (!__atomic_compare_exchange_n(&lcf_umask_state, &now, done, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return old;
}
