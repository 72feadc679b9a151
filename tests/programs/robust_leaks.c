/* Forwarded calls must not leak descriptors: usage `robust_leaks MODE N`. After one warm-up call
 * (which opens the main thread's connection) the program counts its open descriptors, then:
 *   calls     N forwarded calls cycling through stat, access and open ("/r/leak/<i>"; the
 *             master answers the open with a file, which the program reads and closes)
 *   threads   N threads, one after the other, each making 20 calls and exiting
 *   vfork     N times vfork + execv of this program's "leaf" mode, waiting for each, then a call
 *   spawn     N times posix_spawn of this program's "leaf" mode, waiting for each, then a call
 * then counts again, after one more call. Prints "fds BEFORE AFTER wrong W". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static long wrong;

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void one_call(long i)
{
    char path[64];
    snprintf(path, sizeof path, "/r/leak/%ld", i);
    switch (i % 3) {
    case 0: {
        struct stat st;
        wrong += stat(path, &st) != 0 || st.st_size != 7;
        break;
    }
    case 1:
        wrong += access(path, F_OK) != 0;
        break;
    default: {
        char buf[16] = "";
        int fd = open(path, O_RDONLY);
        wrong += fd < 0 || pread(fd, buf, sizeof buf, 0) != 6 || memcmp(buf, "leaked", 6) != 0;
        if (fd >= 0)
            close(fd);
    }
    }
}

static void *thread_calls(void *arg)
{
    for (long i = 0; i < 20; i++)
        one_call((long)arg * 20 + i);
    return NULL;
}

static void wait_for(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    wrong += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leaf";
    long n = argc > 2 ? atol(argv[2]) : 100;
    one_call(0);
    if (strcmp(mode, "leaf") == 0)
        return (int)wrong;
    int before = count_fds();
    char *leaf[] = {argv[0], "leaf", NULL};
    for (long i = 0; i < n; i++) {
        if (strcmp(mode, "calls") == 0) {
            one_call(i);
        } else if (strcmp(mode, "threads") == 0) {
            pthread_t id;
            pthread_create(&id, NULL, thread_calls, (void *)i);
            pthread_join(id, NULL);
        } else if (strcmp(mode, "vfork") == 0) {
            pid_t pid = vfork();
            if (pid == 0) {
                execv(argv[0], leaf);
                _exit(127);
            }
            wait_for(pid);
            one_call(i);
        } else if (strcmp(mode, "spawn") == 0) {
            pid_t pid;
            wrong += posix_spawn(&pid, argv[0], NULL, NULL, leaf, environ) != 0;
            wait_for(pid);
            one_call(i);
        }
    }
    one_call(0);
    printf("fds %d %d wrong %ld\n", before, count_fds(), wrong);
    return 0;
}
