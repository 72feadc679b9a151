/* master_memory.c — a program tries to steer the master through the memory it shares with it.
 *
 * It finds the metadata snapshot and its note ring in /proc/self/maps, then tries, printing one
 * line per try ("what: ok" or "what: <strerror>"): to make its snapshot mapping writable and
 * rewrite the header (offsets and counts the master's writer used to trust); to reopen the
 * snapshot read-write through /proc/self/map_files (a raw syscall, as the shim would refuse the
 * path) and write, shrink or map it writable; to shrink its note ring, which the master reads
 * (SIGBUS in the test process if it could). Then it makes a few calls so the master publishes and
 * takes notes after all that. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int find(const char *name, unsigned long *start, unsigned long *end)
{
    char line[512];
    FILE *maps = fopen("/proc/self/maps", "r");
    int found = 0;
    while (maps != NULL && !found && fgets(line, sizeof line, maps) != NULL)
        found = strstr(line, name) != NULL && sscanf(line, "%lx-%lx", start, end) == 2;
    if (maps != NULL)
        fclose(maps);
    return found;
}

static void say(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : strerror(errno));
}

static int reopen(unsigned long start, unsigned long end)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", start, end);
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
}

int main(void)
{
    struct stat st;
    unsigned long start, end;
    stat("/d", &st); /* connected: the snapshot and a ring are mapped */
    if (!find("libcfake-snapshot", &start, &end)) {
        puts("no snapshot mapped");
        return 1;
    }
    size_t length = end - start;
    int writable = mprotect((void *)start, length, PROT_READ | PROT_WRITE) == 0;
    say("mprotect", writable);
    if (writable) { /* every field after the magic: counts, epoch, offsets */
        memset((char *)start + 4, 0x41, 52);
        puts("header rewritten");
    }
    int fd = reopen(start, end);
    say("reopen", fd >= 0);
    if (fd >= 0) {
        char junk[64];
        memset(junk, 0x41, sizeof junk);
        say("write", pwrite(fd, junk, sizeof junk, 8) == (ssize_t)sizeof junk);
        void *map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        say("mmap", map != MAP_FAILED);
        say("truncate", ftruncate(fd, 0) == 0);
        close(fd);
    }
    if (find("libcfake-notes", &start, &end)) {
        fd = reopen(start, end);
        say("ring truncate", fd >= 0 && ftruncate(fd, 0) == 0);
    } else {
        puts("no ring mapped");
    }
    for (int i = 0; i < 3; i++) {
        stat("/d/f", &st);
        stat("/d/sub", &st);
        lstat("/d/missing", &st);
    }
    return 0;
}
