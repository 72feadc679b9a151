/* The mkstemp family, mkdtemp and tmpfile: usage `tmpfiles PREFIX` (PREFIX a path such as
 * /tmp/name-). Prints one line per call, "NAME RESULT [PATH]":
 *   mkstemp OK PATH        wrote "mkstemp" into it
 *   mkostemp OK PATH cloexec=1
 *   mkstemps OK PATH       the ".txt" suffix kept
 *   mkostemps OK PATH
 *   mkdtemp OK PATH        then a file "inner" created in it
 *   tmpfile OK abc         written, rewound and read back
 *   bad-template EINVAL    mkstemp without XXXXXX
 *   bad-suffix EINVAL      mkstemps whose suffix length leaves no XXXXXX
 *   dtemp-bad EINVAL       mkdtemp without XXXXXX
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prefix;

static char *name(const char *tail)
{
    static char buf[8][PATH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, PATH_MAX, "%s%s", prefix, tail);
    return b;
}

static void fd_result(const char *what, int fd, const char *path)
{
    if (fd < 0) {
        printf("%s %s\n", what, strerrorname_np(errno));
        return;
    }
    if (write(fd, what, strlen(what)) != (ssize_t)strlen(what))
        printf("%s WRITE-%s %s\n", what, strerrorname_np(errno), path);
    else
        printf("%s OK %s\n", what, path);
    close(fd);
}

static void einval(const char *what, int ret)
{
    printf("%s %s\n", what, ret == -1 ? strerrorname_np(errno) : "SUCCEEDED");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    prefix = argv[1];

    char *a = name("stempXXXXXX");
    fd_result("mkstemp", mkstemp(a), a);

    char *b = name("ostempXXXXXX");
    int fd = mkostemp(b, O_CLOEXEC);
    int cloexec = fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
    if (fd >= 0)
        printf("mkostemp OK %s cloexec=%d\n", b, cloexec);
    else
        printf("mkostemp %s\n", strerrorname_np(errno));
    if (fd >= 0)
        close(fd);

    char *c = name("stempsXXXXXX.txt");
    fd_result("mkstemps", mkstemps(c, 4), c);

    char *d = name("ostempsXXXXXX.log");
    fd_result("mkostemps", mkostemps(d, 4, O_APPEND), d);

    char *e = name("dtempXXXXXX");
    if (mkdtemp(e) == NULL) {
        printf("mkdtemp %s\n", strerrorname_np(errno));
    } else {
        char inner[PATH_MAX];
        snprintf(inner, sizeof inner, "%s/inner", e);
        int ifd = open(inner, O_WRONLY | O_CREAT | O_EXCL, 0644);
        printf("mkdtemp %s %s\n", ifd >= 0 ? "OK" : strerrorname_np(errno), e);
        if (ifd >= 0)
            close(ifd);
    }

    FILE *t = tmpfile();
    if (t == NULL) {
        printf("tmpfile %s\n", strerrorname_np(errno));
    } else {
        char got[8] = {0};
        fputs("abc", t);
        rewind(t);
        printf("tmpfile %s %s\n", fgets(got, sizeof got, t) ? "OK" : "READ-FAILED", got);
        fclose(t);
    }

    einval("bad-template", mkstemp(name("noplaceholder")));
    einval("bad-suffix", mkstemps(name("shortXXXXX.txt"), 4));
    errno = 0;
    einval("dtemp-bad", mkdtemp(name("nodirXXXX")) == NULL ? -1 : 0);
    return 0;
}
