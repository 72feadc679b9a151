/* A program the tests link statically: no ld.so, no LD_PRELOAD, no shim; only the seccomp filter
 * of libcfake-launch stands between it and the host.
 *
 *     static_open read PATH      print the file's first bytes, or "open: <error>"
 *     static_open create PATH    create (truncate) PATH and write "written", or "open: <error>"
 *     static_open wait PATH      read a line from stdin first, then as create
 *     static_open i386 PATH      open PATH through the i386 entry (int 0x80): "i386: <result>"
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char low_path[256]; /* static, non-PIE: below 4 GiB, where an i386 call can point */

static int create(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    if (write(fd, "written\n", 8) != 8)
        return 2;
    close(fd);
    printf("created\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 64;
    const char *mode = argv[1], *path = argv[2];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(mode, "read") == 0) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            printf("open: %s\n", strerror(errno));
            return 1;
        }
        char buffer[256];
        ssize_t got = read(fd, buffer, sizeof buffer - 1);
        if (got < 0)
            return 2;
        buffer[got] = '\0';
        printf("read: %s", buffer);
        return 0;
    }
    if (strcmp(mode, "create") == 0)
        return create(path);
    if (strcmp(mode, "wait") == 0) {
        char line[16];
        if (read(0, line, sizeof line) < 0)
            return 3;
        return create(path);
    }
    if (strcmp(mode, "i386") == 0) {
        strncpy(low_path, path, sizeof low_path - 1);
        long result;
        __asm__ volatile("int $0x80"
                         : "=a"(result)
                         : "a"(5L /* i386 open */), "b"((long)low_path), "c"((long)(O_WRONLY | O_CREAT)),
                           "d"(0644L)
                         : "memory");
        printf("i386: %ld\n", result);
        return 0;
    }
    return 64;
}
