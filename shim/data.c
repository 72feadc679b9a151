/* data.c — the data calls on watched descriptors: read, write and their p/v/2 forms, fsync,
 * fdatasync, ftruncate, close, copy_file_range and sendfile into a watched file, and stdio's
 * flushes. A descriptor is watched when the master's open answer says so (LCF_WATCH_* in
 * libcfake_wire.h): a fault rule on data calls covers its file, or the model's disk has a size.
 *
 * Speed: every other descriptor pays one byte load from the table below and a compare, then the
 * real call. A watched one asks the master first (one round trip) and then makes the real call
 * with what the master allowed: all of it (passthrough), fewer bytes (a short write), or none
 * (-1 with errno). The table is per process: dup, dup2, dup3 and fcntl(F_DUPFD) copy a mark,
 * close clears it, fork keeps it. Across exec, the master's O_NOATIME on a watched descriptor
 * says it (checked on the standard descriptors at start: a shell's "> file"). A stale mark (a
 * descriptor closed behind the shim's back, its number reused) costs one fstat, and is cleared:
 * the slow path asks the master only about the master's own files, and the master decides from
 * the file the descriptor is now.
 *
 * stdio: glibc's streams write through its internal __write, which no wrapper sees. A stream
 * fopen or fdopen opens on a watched descriptor is made with fopencookie (fileno() still gives
 * the descriptor), so each of its flushes, those at exit included, is a checked write. A stream
 * libc made on a descriptor that became watched (stdout after a shell's redirection, freopen)
 * is checked at fflush, fclose and exit: its pending bytes are written through the checked write
 * first, and an error is the stream's (ferror, EOF) as libc's own would be; the flushes libc
 * makes by itself when such a stream's buffer fills are not seen. */

#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ============================================================================ the table ===== */

/* One byte of LCF_WATCH_* bits per descriptor number (zero pages until a mark is written).
 * Descriptors past it are never watched: their data calls are the real ones. */
#define WATCH_TABLE (1 << 20)
static uint8_t watch_table[WATCH_TABLE];

static inline unsigned watched(int fd)
{
    return (unsigned)fd < WATCH_TABLE ? __atomic_load_n(&watch_table[fd], __ATOMIC_RELAXED) : 0;
}

void lcf_watch(int fd, uint32_t bits)
{
    if ((unsigned)fd < WATCH_TABLE)
        __atomic_store_n(&watch_table[fd], (uint8_t)(bits & LCF_WATCH_ALL), __ATOMIC_RELAXED);
}

static void stdout_follows(unsigned bits);

/* The mark of a new descriptor that refers to what `from` does (0 clears a stale one). */
static void copy_watch(int from, int to, unsigned mask)
{
    unsigned bits = watched(from) & mask;
    lcf_watch(to, bits);
    if (UNLIKELY(to == STDOUT_FILENO))
        stdout_follows(bits);
}

/* ===================================================================== asking the master ===== */

static __thread int asking; /* a data call of the shim's own while it asks: the real one */

/* Whether a marked descriptor's call goes to the master: not from inside the shim, and only
 * for the master's own files (a stale mark is cleared). errno is left as it was. */
static bool ask_about(int fd)
{
    if (lcf_in_real || asking)
        return false;
    if (lcf_is_master_fd(fd))
        return true;
    lcf_watch(fd, 0);
    return false;
}

/* Asks the master about a data call on fd. Returns 1 and *n (for read and write: the bytes the
 * call may move, at most *n) when the real call is to be made, or -1 with errno. */
static int ask(uint32_t function, const char *symbol, int fd, int64_t value, size_t *n)
{
    struct lcf_request req;
    lcf_request_init(&req, function, symbol);
    lcf_request_fd(&req, LCF_FD_FILE, fd);
    req.call.values[0] = value;
    req.call.values[1] = (int64_t)(*n > INT64_MAX ? INT64_MAX : *n);
    struct lcf_reply reply;
    int got;
    asking++;
    int action = lcf_forward(&req, &reply, &got, NULL, 0);
    asking--;
    if (action == LCF_PASSTHROUGH)
        return 1;
    if (action < 0)
        return -1; /* failed closed: EIO, one line on stderr */
    if (reply.result < 0)
        return fs_fail(reply.error);
    if ((size_t)reply.result < *n)
        *n = (size_t)reply.result;
    return 1;
}

/* The bytes of an iovec array, capped at SSIZE_MAX as the kernel's count. */
static size_t iov_bytes(const struct iovec *iov, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return (size_t)SSIZE_MAX;
        total += iov[i].iov_len;
    }
    return total;
}

/* The first `allowed` bytes of iov, in short (at most SHORT_IOV entries: a vectored call may
 * move fewer bytes than it could, so a shorter one is still a right answer). */
#define SHORT_IOV 64
static int iov_prefix(const struct iovec *iov, int count, size_t allowed,
                      struct iovec out[SHORT_IOV])
{
    int n = 0;
    for (int i = 0; i < count && n < SHORT_IOV && allowed > 0; i++) {
        out[n] = iov[i];
        if (out[n].iov_len > allowed)
            out[n].iov_len = allowed;
        allowed -= out[n].iov_len;
        n++;
    }
    return n;
}

/* ============================================================================== write ===== */

/* The checked path of a write-like call: 1 with *n the bytes to write, or -1 with errno. A
 * write of nothing asks nothing. */
static int check_write(const char *symbol, int fd, int64_t offset, size_t *n)
{
    if (*n == 0 || !ask_about(fd))
        return 1;
    return ask(LCF_WRITE, symbol, fd, offset, n);
}

static int check_read(const char *symbol, int fd, int64_t offset, size_t *n)
{
    if (*n == 0 || !ask_about(fd))
        return 1;
    return ask(LCF_READ, symbol, fd, offset, n);
}

/* The common path of the busiest wrappers: libc's function (once it is known: the checked path
 * looks it up) and one table byte, then a tail call. Everything else is a function of its own,
 * so that this path saves no register and makes no frame. */
#define FAST_REAL(name, rettype, ...) static rettype (*fast_##name)(__VA_ARGS__)
#define FAST_CALL(name, fd, bit, slow, ...)                                                      \
    do {                                                                                         \
        __typeof__(fast_##name) real = __atomic_load_n(&fast_##name, __ATOMIC_ACQUIRE);          \
        if (UNLIKELY(real == NULL || (watched(fd) & (bit))))                                     \
            return slow(__VA_ARGS__);                                                            \
        return real(__VA_ARGS__);                                                                \
    } while (0)
#define FAST_KNOWN(name)                                                                         \
    if (fast_##name == NULL)                                                                     \
    __atomic_store_n(&fast_##name, libc_##name, __ATOMIC_RELEASE)

FAST_REAL(write, ssize_t, int, const void *, size_t);

static __attribute__((noinline)) ssize_t write_slow(int fd, const void *buf, size_t n)
{
    LCF_REAL(write, ssize_t, int, const void *, size_t);
    FAST_KNOWN(write);
    if ((watched(fd) & LCF_WATCH_WRITES) && check_write("write", fd, -1, &n) < 0)
        return -1;
    return libc_write(fd, buf, n);
}

LCF_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    FAST_CALL(write, fd, LCF_WATCH_WRITES, write_slow, fd, buf, n);
}

#define PWRITE_WRAPPER(name)                                                                     \
    static __attribute__((noinline)) ssize_t name##_watched(int fd, const void *buf, size_t n,   \
                                                            off_t offset)                        \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, const void *, size_t, off_t);                               \
        if (check_write(#name, fd, offset, &n) < 0)                                              \
            return -1;                                                                           \
        return libc_##name(fd, buf, n, offset);                                                  \
    }                                                                                            \
    LCF_EXPORT ssize_t name(int fd, const void *buf, size_t n, off_t offset)                     \
    {                                                                                            \
        if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES))                                            \
            return name##_watched(fd, buf, n, offset);                                           \
        LCF_REAL(name, ssize_t, int, const void *, size_t, off_t);                               \
        return libc_##name(fd, buf, n, offset);                                                  \
    }

PWRITE_WRAPPER(pwrite)
PWRITE_WRAPPER(pwrite64)

/* writev and the pwritev family: offset -1 is the descriptor's position (writev; pwritev2's). */
static ssize_t writev_checked(const char *symbol, int fd, const struct iovec *iov, int count,
                              int64_t offset, const struct iovec **use, int *use_count,
                              struct iovec prefix[SHORT_IOV])
{
    *use = iov;
    *use_count = count;
    if (count <= 0 || iov == NULL)
        return 1;
    size_t total = iov_bytes(iov, count), n = total;
    if (check_write(symbol, fd, offset, &n) < 0)
        return -1;
    if (n < total) {
        *use = prefix;
        *use_count = iov_prefix(iov, count, n, prefix);
    }
    return 1;
}

LCF_EXPORT ssize_t writev(int fd, const struct iovec *iov, int count)
{
    LCF_REAL(writev, ssize_t, int, const struct iovec *, int);
    if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES)) {
        struct iovec prefix[SHORT_IOV];
        if (writev_checked("writev", fd, iov, count, -1, &iov, &count, prefix) < 0)
            return -1;
        return libc_writev(fd, iov, count);
    }
    return libc_writev(fd, iov, count);
}

#define PWRITEV_WRAPPER(name)                                                                    \
    LCF_EXPORT ssize_t name(int fd, const struct iovec *iov, int count, off_t offset)            \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, const struct iovec *, int, off_t);                          \
        if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES)) {                                          \
            struct iovec prefix[SHORT_IOV];                                                      \
            if (writev_checked(#name, fd, iov, count, offset, &iov, &count, prefix) < 0)         \
                return -1;                                                                       \
        }                                                                                        \
        return libc_##name(fd, iov, count, offset);                                              \
    }

#define PWRITEV2_WRAPPER(name)                                                                   \
    LCF_EXPORT ssize_t name(int fd, const struct iovec *iov, int count, off_t offset, int flags) \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, const struct iovec *, int, off_t, int);                     \
        if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES)) {                                          \
            struct iovec prefix[SHORT_IOV];                                                      \
            if (writev_checked(#name, fd, iov, count, offset, &iov, &count, prefix) < 0)         \
                return -1;                                                                       \
        }                                                                                        \
        return libc_##name(fd, iov, count, offset, flags);                                       \
    }

PWRITEV_WRAPPER(pwritev)
PWRITEV_WRAPPER(pwritev64)
PWRITEV2_WRAPPER(pwritev2)
PWRITEV2_WRAPPER(pwritev64v2)

/* copy_file_range and sendfile into a watched file (cp copies with copy_file_range): asked as
 * a write of len bytes at the output's offset; out of a watched file, as a read. */
LCF_EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                                   unsigned int flags)
{
    LCF_REAL(copy_file_range, ssize_t, int, off_t *, int, off_t *, size_t, unsigned int);
    if (UNLIKELY((watched(in) & LCF_WATCH_READS) | (watched(out) & LCF_WATCH_WRITES))) {
        if ((watched(in) & LCF_WATCH_READS) &&
            check_read("copy_file_range", in, in_off ? *in_off : -1, &len) < 0)
            return -1;
        if ((watched(out) & LCF_WATCH_WRITES) &&
            check_write("copy_file_range", out, out_off ? *out_off : -1, &len) < 0)
            return -1;
    }
    return libc_copy_file_range(in, in_off, out, out_off, len, flags);
}

#define SENDFILE_WRAPPER(name, off_type)                                                         \
    LCF_EXPORT ssize_t name(int out, int in, off_type *offset, size_t len)                       \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, int, off_type *, size_t);                                   \
        if (UNLIKELY((watched(in) & LCF_WATCH_READS) | (watched(out) & LCF_WATCH_WRITES))) {     \
            if ((watched(in) & LCF_WATCH_READS) &&                                               \
                check_read(#name, in, offset ? *offset : -1, &len) < 0)                          \
                return -1;                                                                       \
            if ((watched(out) & LCF_WATCH_WRITES) && check_write(#name, out, -1, &len) < 0)      \
                return -1;                                                                       \
        }                                                                                        \
        return libc_##name(out, in, offset, len);                                                \
    }

SENDFILE_WRAPPER(sendfile, off_t)
SENDFILE_WRAPPER(sendfile64, off64_t)

/* =============================================================================== read ===== */

FAST_REAL(read, ssize_t, int, void *, size_t);

static __attribute__((noinline)) ssize_t read_slow(int fd, void *buf, size_t n)
{
    LCF_REAL(read, ssize_t, int, void *, size_t);
    FAST_KNOWN(read);
    if ((watched(fd) & LCF_WATCH_READS) && check_read("read", fd, -1, &n) < 0)
        return -1;
    return libc_read(fd, buf, n);
}

LCF_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    FAST_CALL(read, fd, LCF_WATCH_READS, read_slow, fd, buf, n);
}

/* The fortified read (_FORTIFY_SOURCE with a buffer of known size): libc's checks it still. */
LCF_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    LCF_REAL(__read_chk, ssize_t, int, void *, size_t, size_t);
    if (UNLIKELY(watched(fd) & LCF_WATCH_READS) && n <= buflen &&
        check_read("__read_chk", fd, -1, &n) < 0)
        return -1;
    return libc___read_chk(fd, buf, n, buflen);
}

#define PREAD_WRAPPER(name)                                                                      \
    static __attribute__((noinline)) ssize_t name##_watched(int fd, void *buf, size_t n,         \
                                                            off_t offset)                        \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, void *, size_t, off_t);                                     \
        if (check_read(#name, fd, offset, &n) < 0)                                               \
            return -1;                                                                           \
        return libc_##name(fd, buf, n, offset);                                                  \
    }                                                                                            \
    LCF_EXPORT ssize_t name(int fd, void *buf, size_t n, off_t offset)                           \
    {                                                                                            \
        if (UNLIKELY(watched(fd) & LCF_WATCH_READS))                                             \
            return name##_watched(fd, buf, n, offset);                                           \
        LCF_REAL(name, ssize_t, int, void *, size_t, off_t);                                     \
        return libc_##name(fd, buf, n, offset);                                                  \
    }

#define PREAD_CHK_WRAPPER(name)                                                                  \
    LCF_EXPORT ssize_t name(int fd, void *buf, size_t n, off_t offset, size_t buflen)            \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, void *, size_t, off_t, size_t);                             \
        if (UNLIKELY(watched(fd) & LCF_WATCH_READS) && n <= buflen &&                            \
            check_read(#name, fd, offset, &n) < 0)                                               \
            return -1;                                                                           \
        return libc_##name(fd, buf, n, offset, buflen);                                          \
    }

PREAD_WRAPPER(pread)
PREAD_WRAPPER(pread64)
PREAD_CHK_WRAPPER(__pread_chk)
PREAD_CHK_WRAPPER(__pread64_chk)

static int readv_checked(const char *symbol, int fd, const struct iovec *iov, int count,
                         int64_t offset, const struct iovec **use, int *use_count,
                         struct iovec prefix[SHORT_IOV])
{
    *use = iov;
    *use_count = count;
    if (count <= 0 || iov == NULL)
        return 1;
    size_t total = iov_bytes(iov, count), n = total;
    if (check_read(symbol, fd, offset, &n) < 0)
        return -1;
    if (n < total) {
        *use = prefix;
        *use_count = iov_prefix(iov, count, n, prefix);
    }
    return 1;
}

LCF_EXPORT ssize_t readv(int fd, const struct iovec *iov, int count)
{
    LCF_REAL(readv, ssize_t, int, const struct iovec *, int);
    if (UNLIKELY(watched(fd) & LCF_WATCH_READS)) {
        struct iovec prefix[SHORT_IOV];
        if (readv_checked("readv", fd, iov, count, -1, &iov, &count, prefix) < 0)
            return -1;
        return libc_readv(fd, iov, count);
    }
    return libc_readv(fd, iov, count);
}

#define PREADV_WRAPPER(name)                                                                     \
    LCF_EXPORT ssize_t name(int fd, const struct iovec *iov, int count, off_t offset)            \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, const struct iovec *, int, off_t);                          \
        if (UNLIKELY(watched(fd) & LCF_WATCH_READS)) {                                           \
            struct iovec prefix[SHORT_IOV];                                                      \
            if (readv_checked(#name, fd, iov, count, offset, &iov, &count, prefix) < 0)          \
                return -1;                                                                       \
        }                                                                                        \
        return libc_##name(fd, iov, count, offset);                                              \
    }

#define PREADV2_WRAPPER(name)                                                                    \
    LCF_EXPORT ssize_t name(int fd, const struct iovec *iov, int count, off_t offset, int flags) \
    {                                                                                            \
        LCF_REAL(name, ssize_t, int, const struct iovec *, int, off_t, int);                     \
        if (UNLIKELY(watched(fd) & LCF_WATCH_READS)) {                                           \
            struct iovec prefix[SHORT_IOV];                                                      \
            if (readv_checked(#name, fd, iov, count, offset, &iov, &count, prefix) < 0)          \
                return -1;                                                                       \
        }                                                                                        \
        return libc_##name(fd, iov, count, offset, flags);                                       \
    }

PREADV_WRAPPER(preadv)
PREADV_WRAPPER(preadv64)
PREADV2_WRAPPER(preadv2)
PREADV2_WRAPPER(preadv64v2)

/* ================================================================ fsync, ftruncate, close ===== */

/* The checked path of a call whose answer is a status: 1 to make the real call, or -1. */
static int check_status(uint32_t function, const char *symbol, int fd, int64_t value)
{
    if (!ask_about(fd))
        return 1;
    size_t none = 0;
    return ask(function, symbol, fd, value, &none);
}

LCF_EXPORT int fsync(int fd)
{
    LCF_REAL(fsync, int, int);
    if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES) && check_status(LCF_FSYNC, "fsync", fd, 0) < 0)
        return -1;
    return libc_fsync(fd);
}

LCF_EXPORT int fdatasync(int fd)
{
    LCF_REAL(fdatasync, int, int);
    if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES) &&
        check_status(LCF_FDATASYNC, "fdatasync", fd, 0) < 0)
        return -1;
    return libc_fdatasync(fd);
}

#define FTRUNCATE_WRAPPER(name)                                                                  \
    LCF_EXPORT int name(int fd, off_t length)                                                    \
    {                                                                                            \
        LCF_REAL(name, int, int, off_t);                                                         \
        if (UNLIKELY(watched(fd) & LCF_WATCH_WRITES) && length >= 0 &&                           \
            check_status(LCF_FTRUNCATE, #name, fd, length) < 0)                                  \
            return -1;                                                                           \
        return libc_##name(fd, length);                                                          \
    }

FTRUNCATE_WRAPPER(ftruncate)
FTRUNCATE_WRAPPER(ftruncate64)

static int real_close(int fd)
{
    LCF_REAL(close, int, int);
    return libc_close(fd);
}

/* Closes a marked descriptor: the master's error, if it gives one, comes after the close (the
 * descriptor is gone either way, as after a close that reports EIO). */
static __attribute__((noinline)) int close_watched(const char *symbol, int fd, unsigned bits)
{
    int err = 0;
    if ((bits & LCF_WATCH_CLOSE) && check_status(LCF_CLOSE, symbol, fd, 0) < 0)
        err = errno;
    lcf_watch(fd, 0); /* before the number can be reused */
    int ret = real_close(fd);
    if (ret == 0 && err != 0)
        return fs_fail(err);
    return ret;
}

FAST_REAL(close, int, int);

static __attribute__((noinline)) int close_slow(int fd)
{
    LCF_REAL(close, int, int);
    FAST_KNOWN(close);
    unsigned bits = watched(fd);
    return bits ? close_watched("close", fd, bits) : libc_close(fd);
}

LCF_EXPORT int close(int fd)
{
    FAST_CALL(close, fd, LCF_WATCH_ALL, close_slow, fd);
}

LCF_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    LCF_REAL(close_range, int, unsigned int, unsigned int, int);
    int ret = libc_close_range(first, last, flags);
    if (ret == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        for (unsigned int fd = first; fd <= last && fd < WATCH_TABLE; fd++)
            lcf_watch((int)fd, 0);
    return ret;
}

/* ========================================================================= duplicates ===== */

LCF_EXPORT int dup(int fd)
{
    LCF_REAL(dup, int, int);
    int copy = libc_dup(fd);
    if (copy >= 0)
        copy_watch(fd, copy, LCF_WATCH_ALL);
    return copy;
}

LCF_EXPORT int dup2(int fd, int to)
{
    LCF_REAL(dup2, int, int, int);
    int ret = libc_dup2(fd, to);
    if (ret >= 0 && fd != to)
        copy_watch(fd, to, LCF_WATCH_ALL);
    return ret;
}

LCF_EXPORT int dup3(int fd, int to, int flags)
{
    LCF_REAL(dup3, int, int, int, int);
    int ret = libc_dup3(fd, to, flags);
    if (ret >= 0)
        copy_watch(fd, to, LCF_WATCH_ALL);
    return ret;
}

/* fcntl's F_DUPFD copies carry the data marks, not the close one: the shim's own short-lived
 * duplicates (fs_pin) are made so, and their close is no close of the program's. */
#define FCNTL_WRAPPER(name)                                                                      \
    LCF_EXPORT int name(int fd, int cmd, ...)                                                    \
    {                                                                                            \
        LCF_REAL(name, int, int, int, ...);                                                      \
        va_list ap;                                                                              \
        va_start(ap, cmd);                                                                       \
        void *arg = va_arg(ap, void *); /* as glibc's own fcntl reads it */                      \
        va_end(ap);                                                                              \
        int ret = libc_##name(fd, cmd, arg);                                                     \
        if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))                              \
            copy_watch(fd, ret, LCF_WATCH_READS | LCF_WATCH_WRITES);                             \
        return ret;                                                                              \
    }

FCNTL_WRAPPER(fcntl)
FCNTL_WRAPPER(fcntl64)

/* ============================================================================== stdio ===== */

/* glibc's stream flags (libio.h; stable since glibc 2.1) that the public struct lacks. */
#define LIBIO_UNBUFFERED 0x0002
#define LIBIO_LINE_BUF 0x0200
#define LIBIO_CURRENTLY_PUTTING 0x0800
#define LIBIO_IS_APPENDING 0x1000

/* Writes a stream's pending output through the checked write, then leaves its buffer empty as
 * libc's own flush does (and its cached offset unknown, for libc to ask again). Returns 0, or
 * EOF with errno and the stream's error flag set. Only the plain case is taken over: a byte
 * stream that is writing, with no read-ahead to seek back over; libc flushes the rest. The
 * caller holds the stream's lock. */
static int flush_pending(FILE *f)
{
    char *base = f->_IO_write_base, *end = f->_IO_write_ptr;
    if (!(f->_flags & LIBIO_CURRENTLY_PUTTING) || base == NULL || end <= base || f->_mode > 0)
        return 0;
    if (!(f->_flags & LIBIO_IS_APPENDING) && f->_IO_read_end != base)
        return 0;
    int fd = f->_fileno, err = 0;
    for (const char *p = base; p < end;) {
        ssize_t n = write(fd, p, (size_t)(end - p));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? errno : EIO;
            break;
        }
        p += n;
    }
    f->_IO_read_base = f->_IO_read_ptr = f->_IO_read_end = f->_IO_buf_base;
    f->_IO_write_base = f->_IO_write_ptr = f->_IO_buf_base;
    f->_IO_write_end = (f->_flags & (LIBIO_LINE_BUF | LIBIO_UNBUFFERED)) ? f->_IO_buf_base
                                                                         : f->_IO_buf_end;
    f->_offset = -1; /* _IO_pos_BAD */
    if (err != 0) {
        f->_flags |= _IO_ERR_SEEN;
        errno = err;
        return EOF;
    }
    return 0;
}

static bool stream_watched(FILE *f)
{
    return f != NULL && (watched(f->_fileno) & LCF_WATCH_WRITES) && !lcf_in_real && !asking;
}

static int flush_locked(FILE *f)
{
    flockfile(f);
    int ret = flush_pending(f);
    funlockfile(f);
    return ret;
}

LCF_EXPORT int fflush(FILE *f)
{
    LCF_REAL(fflush, int, FILE *);
    if (f == NULL) {
        if (stream_watched(stdout))
            flush_locked(stdout);
    } else if (UNLIKELY(stream_watched(f)) && flush_locked(f) != 0) {
        return EOF;
    }
    return libc_fflush(f);
}

LCF_EXPORT int fflush_unlocked(FILE *f)
{
    LCF_REAL(fflush_unlocked, int, FILE *);
    if (UNLIKELY(stream_watched(f)) && flush_pending(f) != 0)
        return EOF;
    return libc_fflush_unlocked(f);
}

/* fclose: the pending bytes through the checked write, the close asked about (libc closes the
 * descriptor with its internal close), then libc's fclose. */
LCF_EXPORT int fclose(FILE *f)
{
    LCF_REAL(fclose, int, FILE *);
    int fd = f != NULL ? f->_fileno : -1;
    unsigned bits = watched(fd);
    if (!bits || lcf_in_real || asking)
        return libc_fclose(f);
    int err = 0;
    if ((bits & LCF_WATCH_WRITES) && flush_locked(f) != 0)
        err = errno;
    if ((bits & LCF_WATCH_CLOSE) && check_status(LCF_CLOSE, "fclose", fd, 0) < 0 && err == 0)
        err = errno;
    lcf_watch(fd, 0);
    int ret = libc_fclose(f);
    if (ret == 0 && err != 0) {
        errno = err;
        return EOF;
    }
    return ret;
}

/* A shell's "> file" for a builtin (bash: dup2 of the file onto 1, echo, fflush, dup2 back):
 * a line-buffered stdout (bash makes it so) would write each line with libc's internal write.
 * While descriptor 1 is watched for writes, stdout is fully buffered, so its bytes wait for
 * the fflush, which is checked; its line buffering comes back with an unwatched descriptor. */
static bool stdout_was_line_buffered;

static void stdout_follows(unsigned bits)
{
    if (lcf_in_real || asking)
        return;
    if ((bits & LCF_WATCH_WRITES) && !stdout_was_line_buffered &&
        (stdout->_flags & LIBIO_LINE_BUF)) {
        stdout_was_line_buffered = true;
        setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    } else if (!(bits & LCF_WATCH_WRITES) && stdout_was_line_buffered) {
        stdout_was_line_buffered = false;
        setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
    }
}

/* At exit, before libc's own last flush: stdout's pending bytes through the checked write (an
 * error there is lost, as libc's would be). */
__attribute__((destructor)) static void data_fini(void)
{
    if (stream_watched(stdout))
        flush_locked(stdout);
}

/* ------------------------------------------------- streams made on watched descriptors ----- */

static ssize_t cookie_read(void *cookie, char *buf, size_t n)
{
    return read((int)(intptr_t)cookie, buf, n);
}

/* libc's file streams write until all is written or an error: the same here. */
static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write((int)(intptr_t)cookie, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return done > 0 ? (ssize_t)done : -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int cookie_seek(void *cookie, off64_t *offset, int whence)
{
    off64_t at = lseek64((int)(intptr_t)cookie, *offset, whence);
    if (at < 0)
        return -1;
    *offset = at;
    return 0;
}

/* (fclose asked about the close already) */
static int cookie_close(void *cookie)
{
    int fd = (int)(intptr_t)cookie;
    lcf_watch(fd, 0);
    return real_close(fd);
}

/* A stream on fd whose reads and writes go through the wrappers; NULL with errno. */
static FILE *cookie_stream(int fd, const char *mode)
{
    char plain[4]; /* "r", "w+", "a"...: what fopencookie reads */
    size_t n = 0;
    for (const char *c = mode; *c != '\0' && n < sizeof plain - 1; c++)
        if (strchr("rwa+", *c) != NULL)
            plain[n++] = *c;
    plain[n] = '\0';
    cookie_io_functions_t io = {cookie_read, cookie_write, cookie_seek, cookie_close};
    FILE *f = fopencookie((void *)(intptr_t)fd, plain, io);
    if (f != NULL)
        f->_fileno = fd; /* fileno() works (a cookie stream's is -2); libc writes through io only */
    return f;
}

FILE *lcf_data_fdopen(int fd, const char *mode)
{
    if (!(watched(fd) & (LCF_WATCH_READS | LCF_WATCH_WRITES)))
        return lcf_fdopen(fd, mode);
    FILE *f = cookie_stream(fd, mode);
    if (f == NULL) {
        int err = errno;
        lcf_watch(fd, 0);
        real_close(fd);
        errno = err;
    }
    return f;
}

unsigned lcf_watched(int fd)
{
    return watched(fd);
}

LCF_EXPORT FILE *fdopen(int fd, const char *mode)
{
    LCF_REAL(fdopen, FILE *, int, const char *);
    if (!(watched(fd) & (LCF_WATCH_READS | LCF_WATCH_WRITES)) || lcf_in_real || mode == NULL ||
        fcntl(fd, F_GETFL) < 0)
        return libc_fdopen(fd, mode);
    return cookie_stream(fd, mode);
}

/* ===================================================================== start of a program ===== */

/* A watched descriptor inherited across exec (a shell opened it for "> file" and ran us): the
 * master opened it with O_NOATIME. Its kind of watch is not known here: all of them; the master
 * answers passthrough for what no rule covers. */
__attribute__((constructor)) static void data_init(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0 && (flags & O_NOATIME))
            lcf_watch(fd, LCF_WATCH_ALL);
    }
}
