/* Programs that close or reuse every descriptor, the shim's included: usage `robust_fds MODE`.
 * The program stats "/r/fds/before" (which opens the shim's connection, at fd >= 900), then:
 *   close_range   close_range(3, ~0U, 0)
 *   closefrom     closefrom(3)
 *   close-loop    close() on every descriptor from 3 to the limit
 *   dup2-over     dup2 a descriptor of /dev/null onto 900..1023, over the shim's socket
 * and stats "/r/fds/after": the shim must notice, reconnect and be answered (st_size = 7 both
 * times). dup2-over also checks that the shim left the program's descriptor 900 alone. Prints
 * "before OK after OK" or what went wrong. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *check(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return "FAILED";
    return st.st_size == 7 ? "OK" : "WRONG";
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *before = check("/r/fds/before");
    if (strcmp(mode, "close_range") == 0) {
        close_range(3, ~0U, 0);
    } else if (strcmp(mode, "closefrom") == 0) {
        closefrom(3);
    } else if (strcmp(mode, "close-loop") == 0) {
        struct rlimit limit;
        getrlimit(RLIMIT_NOFILE, &limit);
        for (rlim_t fd = 3; fd < limit.rlim_cur && fd < 65536; fd++)
            close((int)fd);
    } else if (strcmp(mode, "dup2-over") == 0) {
        int null = open("/dev/null", O_RDONLY);
        for (int fd = 900; fd < 1024; fd++)
            dup2(null, fd);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    const char *after = check("/r/fds/after");
    if (strcmp(mode, "dup2-over") == 0) {
        struct stat st;
        if (fstat(900, &st) != 0 || !S_ISCHR(st.st_mode))
            after = "BUT-FD-900-IS-NO-LONGER-OURS";
    }
    printf("before %s after %s\n", before, after);
    return 0;
}
