/* The data calls of tests/test_data_faults.py, one per argument, on one file, each printing
 * "CALL RESULT ERRNO-NAME" (ERRNO-NAME "-" when it succeeded):
 *   data_calls PATH STEP...
 *     open-w open-r open-a   open PATH (O_WRONLY|O_CREAT|O_TRUNC, O_RDONLY, O_WRONLY|O_APPEND)
 *     write:N  pwrite:N  writev:N  pwritev:N   N bytes ('x') at the position / at 0
 *     read:N  pread:N  readv:N     N bytes
 *     fsync  fdatasync  ftruncate:N  close
 *     dup2:FD  (the file's descriptor becomes FD, the old one is closed)
 *     copy:N   copy_file_range of N bytes from /dev/zero's memfd copy into the file
 *     fopen-w fopen-a  fwrite:N  fprintf:N  fflush  fclose   the same through stdio
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static char buf[1 << 20];

static void say(const char *call, long long ret, int err)
{
    printf("%s %lld %s\n", call, ret, err ? strerrorname_np(err) : "-");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *path = argv[1];
    int fd = -1;
    FILE *f = NULL;
    memset(buf, 'x', sizeof buf);
    for (int i = 2; i < argc; i++) {
        char *arg = argv[i], *colon = strchr(arg, ':');
        size_t n = colon ? strtoul(colon + 1, NULL, 10) : 0;
        if (n > sizeof buf)
            n = sizeof buf;
        if (colon)
            *colon = '\0';
        long long ret;
        errno = 0;
        if (!strcmp(arg, "open-w"))
            ret = fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        else if (!strcmp(arg, "open-r"))
            ret = fd = open(path, O_RDONLY);
        else if (!strcmp(arg, "open-a"))
            ret = fd = open(path, O_WRONLY | O_APPEND);
        else if (!strcmp(arg, "write"))
            ret = write(fd, buf, n);
        else if (!strcmp(arg, "pwrite"))
            ret = pwrite(fd, buf, n, 0);
        else if (!strcmp(arg, "writev") || !strcmp(arg, "pwritev")) {
            struct iovec iov[2] = {{buf, n / 2}, {buf, n - n / 2}};
            ret = arg[0] == 'w' ? writev(fd, iov, 2) : pwritev(fd, iov, 2, 0);
        } else if (!strcmp(arg, "read"))
            ret = read(fd, buf, n);
        else if (!strcmp(arg, "pread"))
            ret = pread(fd, buf, n, 0);
        else if (!strcmp(arg, "readv")) {
            struct iovec iov[1] = {{buf, n}};
            ret = readv(fd, iov, 1);
        } else if (!strcmp(arg, "fsync"))
            ret = fsync(fd);
        else if (!strcmp(arg, "fdatasync"))
            ret = fdatasync(fd);
        else if (!strcmp(arg, "ftruncate"))
            ret = ftruncate(fd, (off_t)n);
        else if (!strcmp(arg, "close"))
            ret = close(fd);
        else if (!strcmp(arg, "dup2")) {
            ret = dup2(fd, (int)n);
            close(fd);
            fd = (int)n;
        } else if (!strcmp(arg, "copy")) {
            int src = memfd_create("src", MFD_CLOEXEC);
            (void)!write(src, buf, n);
            off_t at = 0;
            ret = copy_file_range(src, &at, fd, NULL, n, 0);
            close(src);
        } else if (!strcmp(arg, "fopen-w") || !strcmp(arg, "fopen-a")) {
            f = fopen(path, arg[6] == 'w' ? "w" : "a");
            ret = f ? fileno(f) : -1;
        } else if (!strcmp(arg, "fwrite"))
            ret = (long long)fwrite(buf, 1, n, f);
        else if (!strcmp(arg, "fprintf"))
            ret = fprintf(f, "%.*s", (int)n, buf);
        else if (!strcmp(arg, "fflush"))
            ret = fflush(f);
        else if (!strcmp(arg, "fclose"))
            ret = fclose(f);
        else {
            fprintf(stderr, "unknown step %s\n", arg);
            return 2;
        }
        int err = errno;
        say(arg, ret, (ret < 0 || ((!strcmp(arg, "fflush") || !strcmp(arg, "fclose")) && ret)) ? err : 0);
    }
    return 0;
}
