/* A signal arrives while a forwarded call waits for the master: usage `robust_signals MODE`.
 * The master answers stat("/r/sig/slow") after 0.3 s with st_size = 4242; a SIGALRM is due after
 * 0.1 s, in the middle of that wait.
 *   restart     the handler was installed with SA_RESTART
 *   norestart   without SA_RESTART: still no EINTR, forwarded calls behave like disk I/O
 *   storm       without SA_RESTART, a SIGALRM every 2 ms during the whole wait
 *   nested      the handler itself opens "/r/sig/nested" (the master answers ELOOP), a call
 *               nested inside the waiting one
 * Prints "stat OK signals N" (and "nested ELOOP" for nested), or what went wrong. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t signals;
static volatile sig_atomic_t nested_errno = -1;
static int nested;

static void on_alarm(int sig)
{
    (void)sig;
    signals++;
    if (nested && signals == 1) {
        int saved = errno;
        int fd = open("/r/sig/nested", O_RDONLY);
        nested_errno = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        errno = saved;
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "restart";
    nested = strcmp(mode, "nested") == 0;
    struct sigaction sa = {.sa_handler = on_alarm};
    sa.sa_flags = strcmp(mode, "restart") == 0 ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval timer = {.it_value = {.tv_usec = 100000}};
    if (strcmp(mode, "storm") == 0)
        timer.it_interval.tv_usec = 2000;
    setitimer(ITIMER_REAL, &timer, NULL);
    struct stat st;
    errno = 0;
    int ret = stat("/r/sig/slow", &st);
    int err = errno;
    struct itimerval off = {0};
    setitimer(ITIMER_REAL, &off, NULL);
    if (ret != 0)
        printf("stat FAILED %s", strerror(err));
    else
        printf("stat %s", st.st_size == 4242 ? "OK" : "WRONG");
    printf(" signals %d\n", signals > 0 ? (signals > 1 ? 2 : 1) : 0);
    if (nested)
        printf("nested %s\n", nested_errno == ELOOP ? "ELOOP" : strerror(nested_errno));
    return 0;
}
