/* Steps around the note ring, each printing one line, so a test can script what a program does:
 *   stats P N        stat(P) N times: "<N> <st_size of the last>" or the errno's name
 *   threads T P N    T threads, each stat(P) N times: "<T*N>" or the first errno's name
 *   open P           open(P, O_RDONLY) and close it (a forwarded call): "ok" or the errno's name
 *   wait             reads one line from stdin (the test looks at the journal meanwhile)
 *   kill             SIGKILL to itself: no exit, no goodbye
 *   garble           writes an impossible head (not a whole record) into every note ring mapped
 *                    in this process (found by its memfd name in /proc/self/maps): "<rings>" */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct work {
    const char *path;
    long n;
    int error;
};

static void *stat_loop(void *arg)
{
    struct work *w = arg;
    struct stat st;
    for (long i = 0; i < w->n; i++)
        if (stat(w->path, &st) != 0) {
            w->error = errno;
            break;
        }
    return NULL;
}

static void threads(long t, const char *path, long n)
{
    pthread_t ids[64];
    struct work work[64];
    for (long i = 0; i < t && i < 64; i++) {
        work[i] = (struct work){path, n, 0};
        pthread_create(&ids[i], NULL, stat_loop, &work[i]);
    }
    int error = 0;
    for (long i = 0; i < t && i < 64; i++) {
        pthread_join(ids[i], NULL);
        if (error == 0)
            error = work[i].error;
    }
    if (error)
        printf("%s\n", strerrorname_np(error));
    else
        printf("%ld\n", t * n);
}

static void garble(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    int rings = 0;
    while (maps != NULL && fgets(line, sizeof line, maps) != NULL) {
        if (strstr(line, "libcfake-notes") == NULL)
            continue;
        uint64_t *head = (uint64_t *)(uintptr_t)strtoull(line, NULL, 16) + 1; /* lcf_ring.head */
        __atomic_store_n(head, *head + 3, __ATOMIC_RELEASE);
        rings++;
    }
    if (maps != NULL)
        fclose(maps);
    printf("%d\n", rings);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *step = argv[i];
        if (strcmp(step, "stats") == 0 && i + 2 < argc) {
            struct stat st = {0};
            long n = atol(argv[i + 2]), done = 0;
            while (done < n && stat(argv[i + 1], &st) == 0)
                done++;
            if (done < n)
                printf("%s\n", strerrorname_np(errno));
            else
                printf("%ld %lld\n", n, (long long)st.st_size);
            i += 2;
        } else if (strcmp(step, "threads") == 0 && i + 3 < argc) {
            threads(atol(argv[i + 1]), argv[i + 2], atol(argv[i + 3]));
            i += 3;
        } else if (strcmp(step, "open") == 0 && i + 1 < argc) {
            int fd = open(argv[++i], O_RDONLY | O_CLOEXEC);
            printf("%s\n", fd < 0 ? strerrorname_np(errno) : "ok");
            if (fd >= 0)
                close(fd);
        } else if (strcmp(step, "wait") == 0) {
            char buf[64];
            if (fgets(buf, sizeof buf, stdin) == NULL)
                return 2;
        } else if (strcmp(step, "kill") == 0) {
            raise(SIGKILL);
        } else if (strcmp(step, "garble") == 0) {
            garble();
        } else {
            fprintf(stderr, "unknown step %s\n", step);
            return 2;
        }
    }
    return 0;
}
