/* Calls every filesystem entry point the shim wraps, once each, on paths under /v/.
 * Prints one line per call: "<entry point> <result> <errno> <detail>". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern int __openat64_2(int, const char *, int);
extern int eaccess(const char *, int);

typedef int xstat_fn(int, const char *, struct stat *);
typedef int fxstatat_fn(int, int, const char *, struct stat *, int);

static void report(const char *name, long result, const char *detail)
{
    printf("%s %ld %d %s\n", name, result, result < 0 ? errno : 0, detail);
}

/* Read what an opened descriptor holds (the handler puts the path in it). */
static void report_fd(const char *name, int fd)
{
    char buf[256] = "";
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    report(name, fd < 0 ? -1 : 0, buf);
}

static void report_file(const char *name, FILE *f)
{
    char buf[256] = "";
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = '\0';
        fclose(f);
    }
    report(name, f ? 0 : -1, buf);
}

static void report_stat(const char *name, int r, const struct stat *st)
{
    char detail[64];
    snprintf(detail, sizeof detail, "size=%lld mode=%o", (long long)st->st_size, st->st_mode);
    report(name, r, r == 0 ? detail : "");
}

int main(void)
{
    struct stat st;
    struct stat64 st64;
    struct statx stx;

    report_fd("open", open("/v/open", O_RDONLY));
    report_fd("open64", open64("/v/open64", O_RDONLY | O_CLOEXEC));
    report_fd("__open_2", __open_2("/v/__open_2", O_RDONLY));
    report_fd("__open64_2", __open64_2("/v/__open64_2", O_RDONLY));
    report_fd("creat", creat("/v/creat", 0640));
    report_fd("creat64", creat64("/v/creat64", 0600));
    report_file("fopen", fopen("/v/fopen", "r"));
    report_file("fopen64", fopen64("/v/fopen64", "re"));
    report_file("freopen", freopen("/v/freopen", "r", fopen("/v/fopen-for-freopen", "r")));
    report_file("freopen64", freopen64("/v/freopen64", "r", fopen("/v/fopen-for-freopen64", "r")));
    report_fd("openat", openat(AT_FDCWD, "/v/openat", O_RDWR | O_CREAT | O_EXCL, 0644));
    report_fd("openat64", openat64(AT_FDCWD, "/v/openat64", O_WRONLY | O_APPEND));
    report_fd("__openat_2", __openat_2(AT_FDCWD, "/v/__openat_2", O_RDONLY));
    report_fd("__openat64_2", __openat64_2(AT_FDCWD, "/v/__openat64_2", O_RDONLY | O_NOFOLLOW));

    report("unlink", unlink("/v/unlink"), "");
    report("unlinkat", unlinkat(AT_FDCWD, "/v/unlinkat", 0), "");
    report("unlinkat-dir", unlinkat(AT_FDCWD, "/v/unlinkat-dir", AT_REMOVEDIR), "");
    report("remove", remove("/v/remove"), "");
    report("rename", rename("/v/rename-from", "/v/rename-to"), "");
    report("renameat", renameat(AT_FDCWD, "/v/renameat-from", AT_FDCWD, "/v/renameat-to"), "");
    report("renameat2", renameat2(AT_FDCWD, "/v/renameat2-from", AT_FDCWD, "/v/renameat2-to",
                                  RENAME_NOREPLACE), "");

    report_stat("stat", stat("/v/stat", &st), &st);
    report_stat("lstat", lstat("/v/lstat", &st), &st);
    report_stat("fstatat", fstatat(AT_FDCWD, "/v/fstatat", &st, 0), &st);
    report_stat("fstatat-nofollow", fstatat(AT_FDCWD, "/v/fstatat-nofollow", &st,
                                            AT_SYMLINK_NOFOLLOW), &st);
    int r = stat64("/v/stat64", &st64);
    report("stat64", r, r == 0 && st64.st_size == (off64_t)strlen("/v/stat64") ? "ok" : "bad");
    r = lstat64("/v/lstat64", &st64);
    report("lstat64", r, r == 0 && st64.st_size == (off64_t)strlen("/v/lstat64") ? "ok" : "bad");
    r = fstatat64(AT_FDCWD, "/v/fstatat64", &st64, 0);
    report("fstatat64", r, r == 0 && st64.st_size == (off64_t)strlen("/v/fstatat64") ? "ok" : "bad");
    r = statx(AT_FDCWD, "/v/statx", 0, STATX_BASIC_STATS, &stx);
    char detail[64];
    snprintf(detail, sizeof detail, "size=%llu mode=%o", (unsigned long long)stx.stx_size,
             stx.stx_mode);
    report("statx", r, r == 0 ? detail : "");

    /* The pre-2.33 stat family exists only as compat symbols in libc: look them up at run time
     * the way an old binary's relocations would find them (the shim's come first). */
    const char *xstats[] = {"__xstat", "__xstat64", "__lxstat", "__lxstat64"};
    for (size_t i = 0; i < sizeof xstats / sizeof *xstats; i++) {
        xstat_fn *fn = (xstat_fn *)dlsym(RTLD_DEFAULT, xstats[i]);
        char path[64];
        snprintf(path, sizeof path, "/v/%s", xstats[i]);
        report_stat(xstats[i], fn ? fn(1, path, &st) : -2, &st);
    }
    const char *fxstats[] = {"__fxstatat", "__fxstatat64"};
    for (size_t i = 0; i < sizeof fxstats / sizeof *fxstats; i++) {
        fxstatat_fn *fn = (fxstatat_fn *)dlsym(RTLD_DEFAULT, fxstats[i]);
        char path[64];
        snprintf(path, sizeof path, "/v/%s", fxstats[i]);
        report_stat(fxstats[i], fn ? fn(1, AT_FDCWD, path, &st, 0) : -2, &st);
    }

    report("access", access("/v/access", R_OK | W_OK), "");
    report("faccessat", faccessat(AT_FDCWD, "/v/faccessat", F_OK, 0), "");
    report("faccessat-eaccess", faccessat(AT_FDCWD, "/v/faccessat-eaccess", X_OK, AT_EACCESS), "");
    report("eaccess", eaccess("/v/eaccess", R_OK), "");
    report("euidaccess", euidaccess("/v/euidaccess", W_OK), "");
    report("mkdir", mkdir("/v/mkdir", 0755), "");
    report("mkdirat", mkdirat(AT_FDCWD, "/v/mkdirat", 0700), "");
    report("rmdir", rmdir("/v/rmdir"), "");
    report("rmdir-fails", rmdir("/v/fail-rmdir"), "");
    return 0;
}
