/* Programs that scrub the environment of what they run: usage `robust_exec MODE`, run by its
 * absolute path. Each mode runs this program again as the "leaf" with an environment that lacks
 * the shim (or with the shim's variables wrong), through one exec-family function:
 *   execve-empty      execve with an empty environment
 *   execle-fresh      execle with a fresh environment {KEEP=1}
 *   execve-wrong      execve with LD_PRELOAD and LIBCFAKE_SOCKET pointing elsewhere, KEEP=1
 *   execvpe-fresh     execvpe by name through PATH=<its directory>, fresh environment {KEEP=1}
 *   execlp            execlp by name after clearenv() + setenv(PATH, KEEP)
 *   fexecve-empty     fexecve of an O_PATH descriptor, empty environment
 *   spawn-empty       posix_spawn with an empty environment
 *   spawnp-fresh      posix_spawnp by name, fresh environment {KEEP=1, PATH=<its directory>}
 *   exec-refused      execv, expected to fail: prints "errno N" (the master refuses it)
 *   execv-relative    execv("./NAME"), run from this program's directory
 *   execvp-missing    execvp of a name no directory of PATH has: prints "errno N"
 * The leaf prints its environment ("env NAME=VALUE" lines) and opens "/r/leaf", printing what it
 * read: the master answers that open with a file holding "served". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int leaf(void)
{
    for (char **e = environ; *e != NULL; e++)
        printf("env %s\n", *e);
    char buf[64] = "";
    int fd = open("/r/leaf", O_RDONLY);
    if (fd < 0) {
        printf("leaf open failed: %s\n", strerror(errno));
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    printf("leaf read %s\n", buf);
    close(fd);
    return 0;
}

static int wait_child(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leaf";
    if (strcmp(mode, "leaf") == 0)
        return leaf();
    fflush(stdout);
    char *self = argv[0];
    char *name = basename(strdup(self));
    char dir_path[4200];
    snprintf(dir_path, sizeof dir_path, "PATH=%s", dirname(strdup(self)));
    char *leaf_args[] = {name, "leaf", NULL};
    char *empty[] = {NULL};
    char *fresh[] = {"KEEP=1", NULL};
    char *fresh_path[] = {"KEEP=1", dir_path, NULL};
    char *wrong[] = {"LD_PRELOAD=/nonexistent/libnothing.so", "KEEP=1",
                     "LIBCFAKE_SOCKET=/nonexistent/master.sock", NULL};
    if (strcmp(mode, "execve-empty") == 0) {
        execve(self, leaf_args, empty);
    } else if (strcmp(mode, "execle-fresh") == 0) {
        execle(self, name, "leaf", (char *)NULL, fresh);
    } else if (strcmp(mode, "execve-wrong") == 0) {
        execve(self, leaf_args, wrong);
    } else if (strcmp(mode, "execvpe-fresh") == 0) {
        putenv(dir_path); /* execvpe searches the caller's PATH, as glibc does */
        execvpe(name, leaf_args, fresh);
    } else if (strcmp(mode, "execlp") == 0) {
        clearenv();
        putenv(dir_path);
        setenv("KEEP", "1", 1);
        execlp(name, name, "leaf", (char *)NULL);
    } else if (strcmp(mode, "fexecve-empty") == 0) {
        int fd = open(self, O_PATH | O_CLOEXEC);
        fexecve(fd, leaf_args, empty);
    } else if (strcmp(mode, "spawn-empty") == 0 || strcmp(mode, "spawnp-fresh") == 0) {
        pid_t pid;
        if (mode[5] == 'p')
            putenv(dir_path); /* posix_spawnp searches the caller's PATH too */
        int err = mode[5] == 'p' ? posix_spawnp(&pid, name, NULL, NULL, leaf_args, fresh_path)
                                 : posix_spawn(&pid, self, NULL, NULL, leaf_args, empty);
        if (err == 0)
            return wait_child(pid);
        errno = err;
    } else if (strcmp(mode, "exec-refused") == 0) {
        execv(self, leaf_args);
        printf("errno %d\n", errno);
        return 0;
    } else if (strcmp(mode, "execv-relative") == 0) {
        char relative[4200];
        snprintf(relative, sizeof relative, "./%s", name);
        execv(relative, leaf_args);
    } else if (strcmp(mode, "execvp-missing") == 0) {
        execvp("robust-no-such-program", leaf_args);
        printf("errno %d\n", errno);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("exec failed: %s\n", strerror(errno));
    return 1;
}
