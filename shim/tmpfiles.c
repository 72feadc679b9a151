/* tmpfiles.c — the mkstemp family, mkdtemp and tmpfile. glibc's own versions open and mkdir
 * through internal aliases (__open, __mkdir) that no wrapper sees, so they would create real files
 * on the host. These generate the name themselves, as glibc does (the template's trailing XXXXXX,
 * before a suffix of suffixlen bytes, become [A-Za-z0-9], retried on EEXIST), and create the file
 * or directory through the shim's own openat and mkdir, which forward to the master. tmpfile is an
 * O_TMPFILE open of P_tmpdir, or failing that a named file there that is unlinked at once.
 * Async-signal-safe like the rest of the call path, except tmpfile (stdio). */

#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_LETTERS 6      /* the XXXXXX */
#define TMP_ATTEMPTS 1000  /* names tried before giving up with EEXIST (glibc: 62^3) */

static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* ==================================================================== real functions ===== */
/* Used only while the shim itself runs real libc code (lcf_in_real). */

static int real_mkostemps(char *template, int suffixlen, int flags)
{
    LCF_REAL(mkostemps, int, char *, int, int);
    return libc_mkostemps(template, suffixlen, flags);
}

static char *real_mkdtemp(char *template)
{
    LCF_REAL(mkdtemp, char *, char *);
    return libc_mkdtemp(template);
}

static FILE *real_tmpfile(void)
{
    LCF_REAL(tmpfile, FILE *);
    return libc_tmpfile();
}

/* ========================================================================= the names ===== */

/* splitmix64: a small generator whose state is the caller's; async-signal-safe. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A fresh seed: getrandom, or (no entropy yet, an old kernel) the clock, the pid and a counter. */
static uint64_t seed(void)
{
    static uint64_t calls;
    uint64_t s = 0;
    int saved = errno;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        s ^= (uint64_t)getpid() << 32;
        s += __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) * 0x2545f4914f6cdd1dULL;
    }
    errno = saved;
    return s;
}

/* The XXXXXX of template, before suffixlen bytes; NULL with EINVAL when it has none (glibc). */
static char *placeholder(char *template, int suffixlen)
{
    if (template == NULL) {
        errno = EFAULT;
        return NULL;
    }
    size_t len = strlen(template);
    if (suffixlen < 0 || len < TMP_LETTERS + (size_t)suffixlen) {
        errno = EINVAL;
        return NULL;
    }
    char *x = template + len - (size_t)suffixlen - TMP_LETTERS;
    if (memcmp(x, "XXXXXX", TMP_LETTERS) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return x;
}

/* Fills the placeholder with a new name and calls create(template) until it does not fail with
 * EEXIST. Returns create's result (>= 0), or -1 with errno; on failure glibc leaves the template
 * with the last name tried, and so does this. */
static int generate(char *template, int suffixlen, int (*create)(const char *, int), int arg)
{
    char *x = placeholder(template, suffixlen);
    if (x == NULL)
        return -1;
    int saved = errno;
    uint64_t state = seed();
    for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        uint64_t v = next_random(&state);
        for (int i = 0; i < TMP_LETTERS; i++, v /= 62)
            x[i] = letters[v % 62];
        int ret = create(template, arg);
        if (ret >= 0) {
            errno = saved;
            return ret;
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* =========================================================================== creating ===== */

/* The shim's own openat and mkdir (fs.c): the call goes to the master or, for a host path the
 * master lets through, to libc. */
static int create_file(const char *name, int flags)
{
    return openat(AT_FDCWD, name, (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_EXCL,
                  S_IRUSR | S_IWUSR);
}

static int create_dir(const char *name, int unused)
{
    (void)unused;
    return mkdir(name, S_IRUSR | S_IWUSR | S_IXUSR);
}

static int tmp_mkostemps(char *template, int suffixlen, int flags)
{
    if (lcf_in_real)
        return real_mkostemps(template, suffixlen, flags);
    return generate(template, suffixlen, create_file, flags);
}

LCF_EXPORT int mkstemp(char *template)
{
    return tmp_mkostemps(template, 0, 0);
}

LCF_EXPORT int mkstemp64(char *template)
{
    return tmp_mkostemps(template, 0, 0);
}

LCF_EXPORT int mkostemp(char *template, int flags)
{
    return tmp_mkostemps(template, 0, flags);
}

LCF_EXPORT int mkostemp64(char *template, int flags)
{
    return tmp_mkostemps(template, 0, flags);
}

LCF_EXPORT int mkstemps(char *template, int suffixlen)
{
    return tmp_mkostemps(template, suffixlen, 0);
}

LCF_EXPORT int mkstemps64(char *template, int suffixlen)
{
    return tmp_mkostemps(template, suffixlen, 0);
}

LCF_EXPORT int mkostemps(char *template, int suffixlen, int flags)
{
    return tmp_mkostemps(template, suffixlen, flags);
}

LCF_EXPORT int mkostemps64(char *template, int suffixlen, int flags)
{
    return tmp_mkostemps(template, suffixlen, flags);
}

LCF_EXPORT char *mkdtemp(char *template)
{
    if (lcf_in_real)
        return real_mkdtemp(template);
    return generate(template, 0, create_dir, 0) < 0 ? NULL : template;
}

/* ============================================================================ tmpfile ===== */

/* Like glibc: an unnamed O_TMPFILE file in P_tmpdir; where that fails, a named one, unlinked. */
static FILE *tmp_tmpfile(void)
{
    if (lcf_in_real)
        return real_tmpfile();
    int saved = errno;
    int fd = openat(AT_FDCWD, P_tmpdir, O_RDWR | O_TMPFILE | O_EXCL, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        char name[] = P_tmpdir "/tmpfXXXXXX";
        fd = generate(name, 0, create_file, 0);
        if (fd < 0)
            return NULL;
        unlink(name);
    }
    FILE *f = lcf_fdopen(fd, "w+");
    if (f != NULL)
        errno = saved;
    return f;
}

LCF_EXPORT FILE *tmpfile(void)
{
    return tmp_tmpfile();
}

LCF_EXPORT FILE *tmpfile64(void)
{
    return tmp_tmpfile();
}
