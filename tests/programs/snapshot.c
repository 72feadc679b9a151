/* Steps on the virtual filesystem, one per argument group, each printing one line, so a test can
 * script what a program does around the metadata snapshot:
 *   list DIR           opendir + readdir: prints the number of entries (the master publishes them)
 *   stat P | lstat P   prints "<octal mode> <size>" or the errno's name
 *   access P           access(P, F_OK): "ok" or the errno's name
 *   readlink P         the target or the errno's name
 *   at DIR NAME        fstatat(dirfd of opendir(DIR), NAME, AT_SYMLINK_NOFOLLOW), like stat
 *   fstat DIR          fstat(dirfd of opendir(DIR)), like stat
 *   chmod P MODE       MODE in octal: "ok" or the errno's name
 *   create P           creates P (O_CREAT | O_EXCL, mode 0644) and closes it: "ok" or the errno's name
 *   append P N         opens P for appending and writes N bytes, keeping it open: "ok"
 *   chdir DIR          "ok" or the errno's name
 *   wait               reads one line from stdin (the test changes something meanwhile)
 *   race DIR NAME N    N times: list DIR, stat DIR/NAME, which must be missing or one of the
 *                      two states the test swaps it between (0644 with 10 bytes, 0600 with
 *                      20000): prints "consistent" or the first answer that is neither
 *   open P r|w|a|p|n   opens P read-only, write-only, for appending, O_PATH (with O_RDWR) or
 *                      read-only with O_NOATIME, keeping the descriptor as the current one: "ok"
 *                      or the errno's name
 *   reopen r|w|a       opens /dev/fd/N of the current descriptor N so: it becomes the current one
 *   read               reads the current descriptor to its end: the number of bytes
 *   write N            writes N bytes to the current descriptor: "ok" or the errno's name
 *   full P | ffull     stat P, or fstat of the current descriptor: "<octal mode> <size> <nlink>
 *                      <atime> <mtime> <ctime>", each time as seconds.nanoseconds
 *   fxfull             statx of the current descriptor (AT_EMPTY_PATH), printed as ffull
 *   fchmod MODE        of the current descriptor: "ok" or the errno's name
 *   rename P Q | link P Q | unlink P    "ok" or the errno's name */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show_stat(int ret, const struct stat *st)
{
    if (ret != 0)
        printf("%s\n", strerrorname_np(errno));
    else
        printf("%o %lld\n", (unsigned)st->st_mode, (long long)st->st_size);
}

static void show_full(int ret, const struct stat *st)
{
    if (ret != 0)
        printf("%s\n", strerrorname_np(errno));
    else
        printf("%o %lld %llu %lld.%09ld %lld.%09ld %lld.%09ld\n", (unsigned)st->st_mode,
               (long long)st->st_size, (unsigned long long)st->st_nlink,
               (long long)st->st_atim.tv_sec, st->st_atim.tv_nsec, (long long)st->st_mtim.tv_sec,
               st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static int open_flags(const char *mode)
{
    if (mode[0] == 'p')
        return O_PATH | O_RDWR; /* the kernel ignores the access mode of an O_PATH open */
    if (mode[0] == 'n')
        return O_RDONLY | O_NOATIME;
    return mode[0] == 'w' ? O_WRONLY : mode[0] == 'a' ? O_WRONLY | O_APPEND : O_RDONLY;
}

static void ok_or_errno(int ret)
{
    if (ret == 0)
        printf("ok\n");
    else
        printf("%s\n", strerrorname_np(errno));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int current = -1; /* the descriptor of the last open or reopen */
    for (int i = 1; i < argc; i++) {
        const char *step = argv[i];
        struct stat st;
        if (strcmp(step, "list") == 0 && i + 1 < argc) {
            DIR *d = opendir(argv[++i]);
            int n = 0;
            if (d == NULL) {
                printf("%s\n", strerrorname_np(errno));
                continue;
            }
            while (readdir(d) != NULL)
                n++;
            closedir(d);
            printf("%d\n", n);
        } else if (strcmp(step, "stat") == 0 && i + 1 < argc) {
            int ret = stat(argv[++i], &st);
            show_stat(ret, &st);
        } else if (strcmp(step, "lstat") == 0 && i + 1 < argc) {
            int ret = lstat(argv[++i], &st);
            show_stat(ret, &st);
        } else if (strcmp(step, "access") == 0 && i + 1 < argc) {
            ok_or_errno(access(argv[++i], F_OK));
        } else if (strcmp(step, "readlink") == 0 && i + 1 < argc) {
            char buf[4096];
            ssize_t n = readlink(argv[++i], buf, sizeof buf - 1);
            if (n < 0)
                printf("%s\n", strerrorname_np(errno));
            else
                printf("%.*s\n", (int)n, buf);
        } else if (strcmp(step, "at") == 0 && i + 2 < argc) {
            DIR *d = opendir(argv[++i]);
            const char *name = argv[++i];
            if (d == NULL) {
                printf("%s\n", strerrorname_np(errno));
                continue;
            }
            int ret = fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW);
            show_stat(ret, &st);
            closedir(d);
        } else if (strcmp(step, "fstat") == 0 && i + 1 < argc) {
            DIR *d = opendir(argv[++i]);
            if (d == NULL) {
                printf("%s\n", strerrorname_np(errno));
                continue;
            }
            int ret = fstat(dirfd(d), &st);
            show_stat(ret, &st);
            closedir(d);
        } else if (strcmp(step, "chmod") == 0 && i + 2 < argc) {
            const char *path = argv[++i];
            ok_or_errno(chmod(path, (mode_t)strtol(argv[++i], NULL, 8)));
        } else if (strcmp(step, "create") == 0 && i + 1 < argc) {
            int fd = open(argv[++i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
            ok_or_errno(fd < 0 ? -1 : close(fd));
        } else if (strcmp(step, "append") == 0 && i + 2 < argc) {
            int fd = open(argv[++i], O_WRONLY | O_APPEND);
            long n = atol(argv[++i]);
            char byte = 'x';
            int ret = fd < 0 ? -1 : 0;
            for (long k = 0; ret == 0 && k < n; k++)
                ret = write(fd, &byte, 1) == 1 ? 0 : -1;
            ok_or_errno(ret); /* fd stays open: the file keeps changing under the master */
        } else if (strcmp(step, "chdir") == 0 && i + 1 < argc) {
            ok_or_errno(chdir(argv[++i]));
        } else if (strcmp(step, "wait") == 0) {
            char line[64];
            if (fgets(line, sizeof line, stdin) == NULL)
                return 3;
        } else if (strcmp(step, "race") == 0 && i + 3 < argc) {
            const char *dir = argv[++i];
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, argv[++i]);
            long n = atol(argv[++i]);
            const char *torn = NULL;
            for (long k = 0; k < n && torn == NULL; k++) {
                DIR *d = opendir(dir);
                while (d != NULL && readdir(d) != NULL)
                    ;
                if (d != NULL)
                    closedir(d);
                if (stat(path, &st) != 0) {
                    if (errno != ENOENT)
                        torn = strerrorname_np(errno);
                    continue;
                }
                mode_t mode = st.st_mode & 07777;
                if (!(mode == 0644 && st.st_size == 10) && !(mode == 0600 && st.st_size == 20000))
                    torn = "a mode and size the file never had";
            }
            printf("%s\n", torn ? torn : "consistent");
        } else if (strcmp(step, "open") == 0 && i + 2 < argc) {
            const char *path = argv[++i];
            current = open(path, open_flags(argv[++i]));
            ok_or_errno(current < 0 ? -1 : 0);
        } else if (strcmp(step, "reopen") == 0 && i + 1 < argc) {
            char path[64];
            snprintf(path, sizeof path, "/dev/fd/%d", current);
            current = open(path, open_flags(argv[++i]));
            ok_or_errno(current < 0 ? -1 : 0);
        } else if (strcmp(step, "read") == 0) {
            char buf[4096];
            long total = 0;
            ssize_t n;
            while ((n = read(current, buf, sizeof buf)) > 0)
                total += n;
            if (n < 0)
                printf("%s\n", strerrorname_np(errno));
            else
                printf("%ld\n", total);
        } else if (strcmp(step, "write") == 0 && i + 1 < argc) {
            long n = atol(argv[++i]);
            char byte = 'w';
            int ret = 0;
            for (long k = 0; ret == 0 && k < n; k++)
                ret = write(current, &byte, 1) == 1 ? 0 : -1;
            ok_or_errno(ret);
        } else if (strcmp(step, "full") == 0 && i + 1 < argc) {
            int ret = stat(argv[++i], &st);
            show_full(ret, &st);
        } else if (strcmp(step, "ffull") == 0) {
            int ret = fstat(current, &st);
            show_full(ret, &st);
        } else if (strcmp(step, "fxfull") == 0) {
            struct statx stx;
            int ret = statx(current, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx);
            st.st_mode = stx.stx_mode;
            st.st_size = (off_t)stx.stx_size;
            st.st_nlink = stx.stx_nlink;
            st.st_atim = (struct timespec){stx.stx_atime.tv_sec, stx.stx_atime.tv_nsec};
            st.st_mtim = (struct timespec){stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec};
            st.st_ctim = (struct timespec){stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec};
            show_full(ret, &st);
        } else if (strcmp(step, "fchmod") == 0 && i + 1 < argc) {
            ok_or_errno(fchmod(current, (mode_t)strtol(argv[++i], NULL, 8)));
        } else if (strcmp(step, "rename") == 0 && i + 2 < argc) {
            const char *from = argv[++i];
            ok_or_errno(rename(from, argv[++i]));
        } else if (strcmp(step, "link") == 0 && i + 2 < argc) {
            const char *from = argv[++i];
            ok_or_errno(link(from, argv[++i]));
        } else if (strcmp(step, "unlink") == 0 && i + 1 < argc) {
            ok_or_errno(unlink(argv[++i]));
        } else {
            fprintf(stderr, "snapshot: bad step %s\n", step);
            return 2;
        }
    }
    return 0;
}
