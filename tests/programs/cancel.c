/* A thread blocked in a forwarded call is cancelled (pthread_cancel; the shim's wait for the reply
 * is a cancellation point, as the real call's would be), then the main thread makes a call:
 *   cancel HANG PATH    a thread stats HANG (which the test leaves unanswered); once it waits,
 *                       it is cancelled and joined; then stat(PATH): prints "cancelled" and
 *                       "<st_size>" or the errno's name */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void *hang(void *path)
{
    struct stat st;
    stat(path, &st); /* never answered: the thread ends here, cancelled */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "cancel") != 0) {
        fprintf(stderr, "usage: cancel cancel HANG PATH\n");
        return 2;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, hang, argv[2]) != 0)
        return 1;
    usleep(200 * 1000); /* long enough to be waiting for its reply */
    void *result;
    if (pthread_cancel(thread) != 0 || pthread_join(thread, &result) != 0)
        return 1;
    printf("%s\n", result == PTHREAD_CANCELED ? "cancelled" : "returned");
    struct stat st;
    if (stat(argv[3], &st) == 0)
        printf("%lld\n", (long long)st.st_size);
    else
        printf("%s\n", strerrorname_np(errno));
    return 0;
}
