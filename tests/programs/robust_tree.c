/* Process trees behind the shim: usage `robust_tree MODE`, run by its absolute path. Every process
 * of the tree stats "/r/tree/<role>" and checks the answer (st_size = 7, see
 * tests/test_robustness.py), then exits 0 if every answer was right; the root stats
 * "/r/tree/parent" first.
 *   fork-threads  4 threads keep calling while the main thread forks; the child calls and exits
 *   vfork-exec    vfork, then execv this program as the "leaf"
 *   spawn         posix_spawn this program as the "leaf"
 *   daemon        double fork with setsid in between; the grandchild calls, then closes the pipe
 *                 its grandparent waits on (so the test can wait for it)
 *   leaf          one call, as a child of the modes above */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int call(const char *role)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/r/tree/%s", role);
    return stat(path, &st) == 0 && st.st_size == 7 ? 0 : 1;
}

static atomic_int stop;
static atomic_long thread_wrong;

static void *busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        thread_wrong += call("thread");
    return NULL;
}

static int wait_ok(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leaf";
    int wrong = 0;
    if (strcmp(mode, "leaf") == 0)
        return call("leaf");
    wrong += call("parent"); /* the root of the tree is served too */
    if (strcmp(mode, "fork-threads") == 0) {
        pthread_t ids[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&ids[i], NULL, busy, NULL);
        usleep(20000); /* the threads are mid-call */
        pid_t child = fork();
        if (child == 0)
            _exit(call("child"));
        wrong += wait_ok(child);
        wrong += call("parent");
        atomic_store(&stop, 1);
        for (int i = 0; i < 4; i++)
            pthread_join(ids[i], NULL);
        wrong += thread_wrong != 0;
    } else if (strcmp(mode, "vfork-exec") == 0) {
        pid_t child = vfork();
        if (child == 0) {
            char *args[] = {argv[0], "leaf", NULL};
            execv(argv[0], args);
            _exit(127);
        }
        wrong += wait_ok(child);
        wrong += call("parent"); /* the parent is still served after its vfork child exec'd */
    } else if (strcmp(mode, "spawn") == 0) {
        pid_t child;
        char *args[] = {argv[0], "leaf", NULL};
        wrong += posix_spawn(&child, argv[0], NULL, NULL, args, environ) != 0;
        wrong += wait_ok(child);
    } else if (strcmp(mode, "daemon") == 0) {
        int done[2];
        if (pipe(done) != 0)
            return 2;
        pid_t child = fork();
        if (child == 0) {
            setsid();
            if (fork() != 0)
                _exit(0);
            close(done[0]);
            int bad = call("daemon"); /* a daemon: reparented, in its own session */
            (void)!write(done[1], bad ? "x" : "", bad ? 1 : 0);
            _exit(0);
        }
        close(done[1]);
        wrong += wait_ok(child);
        char c;
        wrong += read(done[0], &c, 1) != 0; /* EOF: the daemon is done, and was answered right */
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("wrong %d\n", wrong);
    return wrong != 0;
}
