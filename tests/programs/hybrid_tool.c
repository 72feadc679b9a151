/* hybrid_tool: a program the preload cannot reach (built -static by tests/test_hybrid.py), one
 * line of output per command:
 *
 *   read PATH            "read: <contents>"            or "read: <errno name>"
 *   write PATH TEXT      "write: ok"
 *   list DIR             "list: a b c" (sorted by the test, readdir order here)
 *   inodes DIR           "inodes: a=same b=differs": each entry's d_ino against lstat's st_ino
 *   resolve NAME         "resolve: <first IPv4 address>"  (getaddrinfo)
 *   connect HOST PORT    "connect: <first line the server sent>"
 *   raw-read PATH        as read, through syscall(SYS_openat): no libc wrapper at all
 *   kill-parent          "kill-parent: <errno name or ok>": kill(getppid(), SIGSTOP)
 *   kill-group           kill(0, SIGTERM), ignoring it itself
 *   kill-child           "kill-child: <status>": a child of its own, killed with SIGTERM
 *   eintr PATH           a raw openat that waits in the master while SIGALRM (no SA_RESTART)
 *                        arrives: "eintr: <errno name> handled=<n>"
 *   fexecve PATH ARG...  opens PATH and runs it by descriptor, argv [PATH, ARG...] (the rest):
 *                        "fexecve: <errno name>" only if it cannot
 *   exec PATH ARG...     execv(PATH, [PATH, ARG...]): "exec: <errno name>" only if it cannot
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name(int e) { /* (strerrorname_np is glibc's: musl builds this too) */
    static const struct {
        int e;
        const char *name;
    } names[] = {{ENOENT, "ENOENT"}, {EACCES, "EACCES"}, {EPERM, "EPERM"}, {EROFS, "EROFS"},
                 {ECONNREFUSED, "ECONNREFUSED"}, {EINTR, "EINTR"}, {EIO, "EIO"},
                 {ENOSYS, "ENOSYS"}, {ENETUNREACH, "ENETUNREACH"}, {ENOEXEC, "ENOEXEC"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].e == e)
            return names[i].name;
    return "E?";
}

static void slurp(const char *what, int fd) {
    if (fd < 0) {
        printf("%s: %s\n", what, name(errno));
        return;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        printf("%s: %s\n", what, name(errno));
        return;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    printf("%s: %s\n", what, buf);
}

static volatile sig_atomic_t handled;

static void on_alarm(int sig) {
    (void)sig;
    handled++;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *cmd = argv[i];
        if (!strcmp(cmd, "read") && i + 1 < argc) {
            slurp("read", open(argv[++i], O_RDONLY));
        } else if (!strcmp(cmd, "raw-read") && i + 1 < argc) {
            slurp("raw-read", (int)syscall(SYS_openat, AT_FDCWD, argv[++i], O_RDONLY, 0));
        } else if (!strcmp(cmd, "write") && i + 2 < argc) {
            const char *path = argv[++i], *text = argv[++i];
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, text, strlen(text)) < 0)
                printf("write: %s\n", name(errno));
            else
                printf("write: ok\n");
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(cmd, "list") && i + 1 < argc) {
            DIR *d = opendir(argv[++i]);
            if (d == NULL) {
                printf("list: %s\n", name(errno));
                continue;
            }
            printf("list:");
            struct dirent *e;
            while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    printf(" %s", e->d_name);
            printf("\n");
            closedir(d);
        } else if (!strcmp(cmd, "inodes") && i + 1 < argc) {
            const char *dir = argv[++i];
            DIR *d = opendir(dir);
            if (d == NULL) {
                printf("inodes: %s\n", name(errno));
                continue;
            }
            printf("inodes:");
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                char path[4096];
                struct stat st;
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                int same = lstat(path, &st) == 0 && st.st_ino == e->d_ino;
                printf(" %s=%s", e->d_name, same ? "same" : "differs");
            }
            printf("\n");
            closedir(d);
        } else if (!strcmp(cmd, "resolve") && i + 1 < argc) {
            struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
            int rc = getaddrinfo(argv[++i], NULL, &hints, &res);
            if (rc != 0) {
                printf("resolve: %s\n", gai_strerror(rc));
                continue;
            }
            char text[64];
            struct sockaddr_in *in = (struct sockaddr_in *)res->ai_addr;
            printf("resolve: %s\n", inet_ntop(AF_INET, &in->sin_addr, text, sizeof text));
            freeaddrinfo(res);
        } else if (!strcmp(cmd, "connect") && i + 2 < argc) {
            const char *host = argv[++i], *port = argv[++i];
            struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
            int rc = getaddrinfo(host, port, &hints, &res);
            if (rc != 0) {
                printf("connect: %s\n", gai_strerror(rc));
                continue;
            }
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(s, res->ai_addr, res->ai_addrlen) != 0) {
                printf("connect: %s\n", name(errno));
            } else {
                slurp("connect", s);
                s = -1;
            }
            if (s >= 0)
                close(s);
            freeaddrinfo(res);
        } else if (!strcmp(cmd, "kill-parent")) {
            int rc = kill(getppid(), SIGSTOP);
            printf("kill-parent: %s\n", rc == 0 ? "ok" : name(errno));
        } else if (!strcmp(cmd, "kill-group")) {
            signal(SIGTERM, SIG_IGN);
            int rc = kill(0, SIGTERM);
            printf("kill-group: %s\n", rc == 0 ? "ok" : name(errno));
        } else if (!strcmp(cmd, "kill-child")) {
            pid_t child = fork();
            if (child == 0) {
                signal(SIGTERM, SIG_DFL); /* (kill-group ignored it) */
                pause();
                _exit(0);
            }
            usleep(50000);
            int rc = kill(child, SIGTERM), status = 0;
            waitpid(child, &status, 0);
            printf("kill-child: %s signal=%d\n", rc == 0 ? "ok" : name(errno),
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        } else if (!strcmp(cmd, "eintr") && i + 1 < argc) {
            struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
            sigaction(SIGALRM, &sa, NULL);
            ualarm(200000, 0);
            long fd = syscall(SYS_openat, AT_FDCWD, argv[++i], O_RDONLY, 0);
            int e = errno;
            usleep(10000);
            printf("eintr: %s handled=%d\n", fd >= 0 ? "ok" : name(e), (int)handled);
        } else if ((!strcmp(cmd, "fexecve") || !strcmp(cmd, "exec")) && i + 1 < argc) {
            char **args = argv + i + 1; /* the program, then its arguments */
            if (!strcmp(cmd, "exec")) {
                execv(args[0], args);
            } else {
                int fd = open(args[0], O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                    fexecve(fd, args, environ);
            }
            printf("%s: %s\n", cmd, name(errno));
            return 1;
        } else {
            printf("%s: unknown command\n", cmd);
            return 2;
        }
    }
    return 0;
}
