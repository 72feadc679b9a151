/* Many threads, many forwarded calls, every answer checked: usage `robust_threads THREADS CALLS`.
 * Thread t's call i names "/r/t/i" and cycles through stat, access and open; the master answers
 * each from the path alone (see tests/test_robustness.py, answer_from_path):
 *   stat   -> st_size = t * 100000 + i
 *   access -> 0 when t + i is even, else -1 with EACCES
 *   open   -> -1 with errno ERRNOS[(t + i) % 5]
 * A crossed reply (thread t getting thread u's answer) shows up as a wrong answer. Prints
 * "wrong N" with the number of wrong answers over all threads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const int ERRNOS[5] = {ENOENT, EACCES, EISDIR, ENOTDIR, ELOOP};
static int calls;

static void *worker(void *arg)
{
    long t = (long)arg;
    long wrong = 0;
    for (long i = 0; i < calls; i++) {
        char path[64];
        snprintf(path, sizeof path, "/r/%ld/%ld", t, i);
        errno = 0;
        switch (i % 3) {
        case 0: {
            struct stat st;
            wrong += stat(path, &st) != 0 || st.st_size != t * 100000 + i;
            break;
        }
        case 1: {
            int even = (t + i) % 2 == 0;
            int ret = access(path, R_OK);
            wrong += even ? ret != 0 : (ret != -1 || errno != EACCES);
            break;
        }
        default: {
            int fd = open(path, O_RDONLY);
            wrong += fd != -1 || errno != ERRNOS[(t + i) % 5];
            if (fd >= 0)
                close(fd);
        }
        }
    }
    return (void *)wrong;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    calls = argc > 2 ? atoi(argv[2]) : 100;
    pthread_t ids[256];
    if (threads > 256)
        threads = 256;
    for (long t = 0; t < threads; t++)
        if (pthread_create(&ids[t], NULL, worker, (void *)t) != 0)
            return 2;
    long wrong = 0;
    for (int t = 0; t < threads; t++) {
        void *result;
        pthread_join(ids[t], &result);
        wrong += (long)result;
    }
    printf("wrong %ld\n", wrong);
    return 0;
}
