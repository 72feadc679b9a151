/* Threads and processes making forwarded calls at once: usage `threads THREADS CALLS`.
 * Each thread of the parent and of a forked child stats "/v/<pid-role>/<thread>/<call>"; the
 * master answers with st_size = thread * 100000 + call, which the thread checks. Prints the
 * number of wrong answers per process. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int calls;
static const char *role;

static void *worker(void *arg)
{
    long thread = (long)arg;
    long wrong = 0;
    for (int call = 0; call < calls; call++) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/v/%s/%ld/%d", role, thread, call);
        if (stat(path, &st) != 0 || st.st_size != thread * 100000 + call)
            wrong++;
    }
    return (void *)wrong;
}

static long run_threads(int threads)
{
    pthread_t ids[64];
    long wrong = 0;
    for (long i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) {
        void *result;
        pthread_join(ids[i], &result);
        wrong += (long)result;
    }
    return wrong;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    calls = argc > 2 ? atoi(argv[2]) : 100;
    if (threads > 64)
        threads = 64;
    role = "parent";
    pid_t child = fork(); /* forked while no thread runs; the child starts its own */
    if (child == 0) {
        role = "child";
        long wrong = run_threads(threads);
        printf("child %ld\n", wrong);
        return 0;
    }
    long wrong = run_threads(threads);
    waitpid(child, NULL, 0);
    printf("parent %ld\n", wrong);
    return 0;
}
