/* Runs a program through one exec-family function, in a child: usage
 * `exec_model HOW PROGRAM [ARGS...]` (argv[0] of the program is PROGRAM as given). HOW is one of
 *   execv execvp execvpe execl execlp execle   the function of that name
 *   execveat        execveat(AT_FDCWD, PROGRAM, ...)
 *   execveat-dir    execveat(dirfd of PROGRAM's directory, its last name, ...), the dirfd
 *                   close-on-exec; execveat-dir-kept: not
 *   posix_spawn posix_spawnp                  the function of that name
 * Prints "status N" (the child's exit status, 128 + a signal), or "errno NAME" when the exec or
 * the spawn failed. The child's own output comes first. */
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

static const char *error_name(int err)
{
    switch (err) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case ELOOP: return "ELOOP";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case ETXTBSY: return "ETXTBSY";
    case EIO: return "EIO";
    case ENOSYS: return "ENOSYS";
    default: return "other";
    }
}

static void run(const char *how, char **argv)
{
    const char *program = argv[0];
    if (strcmp(how, "execv") == 0) {
        execv(program, argv);
    } else if (strcmp(how, "execvp") == 0) {
        execvp(program, argv);
    } else if (strcmp(how, "execvpe") == 0) {
        execvpe(program, argv, environ);
    } else if (strcmp(how, "execl") == 0) {
        execl(program, program, argv[1], (char *)NULL);
    } else if (strcmp(how, "execlp") == 0) {
        execlp(program, program, argv[1], (char *)NULL);
    } else if (strcmp(how, "execle") == 0) {
        execle(program, program, argv[1], (char *)NULL, environ);
    } else if (strcmp(how, "execveat") == 0) {
        execveat(AT_FDCWD, program, argv, environ, 0);
    } else if (strncmp(how, "execveat-dir", 12) == 0) {
        char copy[4096], name[4096];
        snprintf(copy, sizeof copy, "%s", program);
        snprintf(name, sizeof name, "%s", program);
        int kept = strcmp(how, "execveat-dir-kept") == 0;
        int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY | (kept ? 0 : O_CLOEXEC));
        if (dir >= 0)
            execveat(dir, basename(name), argv, environ, 0);
    } else {
        errno = EINVAL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: exec_model HOW PROGRAM [ARGS...]\n");
        return 2;
    }
    const char *how = argv[1];
    char **args = argv + 2;
    if (argc == 3) { /* the execl forms pass argv[1]: make it NULL */
        static char *none[2];
        none[0] = argv[2];
        args = none;
    }
    fflush(stdout);
    pid_t pid;
    if (strncmp(how, "posix_spawn", 11) == 0) {
        int err = strcmp(how, "posix_spawnp") == 0
                      ? posix_spawnp(&pid, args[0], NULL, NULL, args, environ)
                      : posix_spawn(&pid, args[0], NULL, NULL, args, environ);
        if (err != 0) {
            printf("errno %s\n", error_name(err));
            return 0;
        }
    } else {
        int pipefd[2]; /* the child's errno, when its exec fails */
        if (pipe2(pipefd, O_CLOEXEC) < 0)
            return 2;
        pid = fork();
        if (pid == 0) {
            run(how, args);
            int err = errno;
            (void)!write(pipefd[1], &err, sizeof err);
            _exit(127);
        }
        close(pipefd[1]);
        int err = 0;
        if (read(pipefd[0], &err, sizeof err) == (ssize_t)sizeof err) {
            waitpid(pid, NULL, 0);
            printf("errno %s\n", error_name(err));
            return 0;
        }
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 2;
    printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
