/* passthrough_probe: each read-only system call the supervisor's fast path answers, made raw on
 * each path given (no libc wrapper decides which call is made), one line of results per call:
 *
 *     passthrough_probe PATH...
 *
 * A stat prints the fields that do not change between runs; an open prints what the descriptor
 * reads (its first bytes, or a directory's entry count) and its fstat; a readlink the text. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void result(const char *call, const char *path, long rc)
{
    if (rc < 0)
        printf("%s %s: -1 %s", call, path, strerrorname_np(errno));
    else
        printf("%s %s: %ld", call, path, rc);
}

static void stat_fields(const struct stat *st)
{
    printf(" mode=%o size=%lld nlink=%lu ino=%llu\n", st->st_mode, (long long)st->st_size,
           (unsigned long)st->st_nlink, (unsigned long long)st->st_ino);
}

static void opened(const char *call, const char *path, long fd)
{
    result(call, path, fd < 0 ? -1 : 0);
    if (fd < 0) {
        printf("\n");
        return;
    }
    struct stat st;
    char buf[33];
    /* glibc's fstat: newfstatat(fd, "", AT_EMPTY_PATH) */
    if (syscall(SYS_newfstatat, (int)fd, "", &st, AT_EMPTY_PATH) != 0) {
        printf(" fstat -1 %s\n", strerrorname_np(errno));
    } else if (S_ISDIR(st.st_mode)) {
        char entries[4096];
        long n = syscall(SYS_getdents64, (int)fd, entries, sizeof entries);
        printf(" directory getdents=%s", n > 0 ? "some" : "none");
        stat_fields(&st);
    } else {
        ssize_t n = read((int)fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        for (char *c = buf; *c; c++)
            if (*c == '\n')
                *c = '|';
        printf(" read=\"%s\"", buf);
        stat_fields(&st);
    }
    close((int)fd);
}

static void stated(const char *call, const char *path, long rc, const struct stat *st)
{
    result(call, path, rc);
    if (rc == 0)
        stat_fields(st);
    else
        printf("\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *p = argv[i];
        struct stat st;
        struct statx stx;
        char text[256];
        opened("open", p, syscall(SYS_open, p, O_RDONLY | O_CLOEXEC));
        opened("openat", p, syscall(SYS_openat, AT_FDCWD, p, O_RDONLY));
        opened("openat-nofollow", p, syscall(SYS_openat, AT_FDCWD, p, O_RDONLY | O_NOFOLLOW));
        opened("openat-directory", p, syscall(SYS_openat, AT_FDCWD, p, O_RDONLY | O_DIRECTORY));
        stated("stat", p, syscall(SYS_stat, p, &st), &st);
        stated("lstat", p, syscall(SYS_lstat, p, &st), &st);
        stated("newfstatat", p, syscall(SYS_newfstatat, AT_FDCWD, p, &st, 0), &st);
        stated("newfstatat-nofollow", p,
               syscall(SYS_newfstatat, AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW), &st);
        long rc = syscall(SYS_statx, AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx);
        result("statx-nofollow", p, rc);
        if (rc == 0)
            printf(" mode=%o size=%llu nlink=%u ino=%llu", stx.stx_mode,
                   (unsigned long long)stx.stx_size, stx.stx_nlink,
                   (unsigned long long)stx.stx_ino);
        printf("\n");
        result("access-r", p, syscall(SYS_access, p, R_OK));
        printf("\n");
        result("faccessat-x", p, syscall(SYS_faccessat, AT_FDCWD, p, X_OK));
        printf("\n");
        result("faccessat2-w-eaccess", p, syscall(SYS_faccessat2, AT_FDCWD, p, W_OK, AT_EACCESS));
        printf("\n");
        rc = syscall(SYS_readlink, p, text, 4);
        result("readlink-4", p, rc);
        printf(rc >= 0 ? " \"%.*s\"\n" : "\n", (int)(rc > 0 ? rc : 0), text);
        rc = syscall(SYS_readlinkat, AT_FDCWD, p, text, sizeof text);
        result("readlinkat", p, rc);
        printf(rc >= 0 ? " \"%.*s\"\n" : "\n", (int)(rc > 0 ? rc : 0), text);
    }
    return 0;
}
