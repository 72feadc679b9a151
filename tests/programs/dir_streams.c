/* dir_streams.c — a program's directory streams, every way libc gives them, on one directory.
 *
 *     dir_streams DIR FILE
 *
 * DIR is a directory (of the model, under a Sandbox), FILE a regular file. Prints one line per
 * check; each says what libc answered, so the test compares them with what it expects. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The names of a stream, sorted into one line (readdir order is the file system's). */
static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names(const char *label, DIR *dir, struct dirent *(*next)(DIR *))
{
    char *seen[256];
    size_t n = 0;
    struct dirent *entry;
    while (n < 256 && (entry = next(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            seen[n++] = strdup(entry->d_name);
    qsort(seen, n, sizeof *seen, compare);
    printf("%s:", label);
    for (size_t i = 0; i < n; i++) {
        printf(" %s", seen[i]);
        free(seen[i]);
    }
    printf("\n");
}

/* scandir's filter: checks each entry's d_ino against lstat's, keeps all but dot files and beta */
static const char *scanned;
static int inodes_agree = 1;

static int keep(const struct dirent *entry)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", scanned, entry->d_name);
    if (lstat(path, &st) != 0 || st.st_ino != entry->d_ino)
        inodes_agree = 0;
    return entry->d_name[0] != '.' && strcmp(entry->d_name, "beta") != 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *path = argv[1], *file = argv[2];

    DIR *dir = opendir(path);
    if (dir == NULL) {
        perror("opendir");
        return 1;
    }
    names("opendir", dir, readdir);

    /* telldir after the first entry, seekdir back to it after the end: the same entry again */
    rewinddir(dir);
    struct dirent *first = readdir(dir);
    long after_first = telldir(dir);
    char second[256] = "";
    struct dirent *entry = readdir(dir);
    if (entry != NULL)
        snprintf(second, sizeof second, "%s", entry->d_name);
    while (readdir(dir) != NULL)
        ;
    seekdir(dir, after_first);
    entry = readdir(dir);
    printf("seekdir: %s\n", first != NULL && entry != NULL && strcmp(entry->d_name, second) == 0
                                ? "same" : "different");

    /* dirfd is the stream's descriptor, close-on-exec */
    int flags = fcntl(dirfd(dir), F_GETFD);
    printf("dirfd cloexec: %s\n", flags >= 0 && (flags & FD_CLOEXEC) ? "yes" : "no");
    printf("closedir: %d\n", closedir(dir));

    /* fdopendir: the descriptor made close-on-exec; the stream read by libc's own readdir,
     * found in libc.so.6 itself (as dlsym or ctypes would find it), not through the shim */
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    dir = fdopendir(fd);
    if (dir == NULL) {
        perror("fdopendir");
        return 1;
    }
    flags = fcntl(fd, F_GETFD);
    printf("fdopendir cloexec: %s\n", flags >= 0 && (flags & FD_CLOEXEC) ? "yes" : "no");
    printf("fdopendir dirfd: %s\n", dirfd(dir) == fd ? "same" : "other");
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    struct dirent *(*libc_readdir)(DIR *) = libc ? (struct dirent * (*)(DIR *)) dlsym(libc, "readdir") : NULL;
    if (libc_readdir == NULL)
        return 1;
    names("libc readdir", dir, libc_readdir);
    closedir(dir);
    printf("closed with the stream: %s\n", fcntl(fd, F_GETFD) == -1 && errno == EBADF ? "yes" : "no");

    /* fdopendir's errors, as glibc's */
    fd = open(file, O_RDONLY);
    errno = 0;
    dir = fdopendir(fd);
    printf("fdopendir of a file: %s\n", dir == NULL ? strerror(errno) : "a stream");
    printf("the file's descriptor stays open: %s\n", fcntl(fd, F_GETFD) >= 0 ? "yes" : "no");
    close(fd);
    errno = 0;
    dir = fdopendir(fd);
    printf("fdopendir of a closed descriptor: %s\n", dir == NULL ? strerror(errno) : "a stream");
    errno = 0;
    dir = opendir(file);
    printf("opendir of a file: %s\n", dir == NULL ? strerror(errno) : "a stream");

    /* scandir: filtered, sorted, each entry's d_ino the file's already in the filter */
    struct dirent **list;
    scanned = path;
    int n = scandir(path, &list, keep, alphasort);
    printf("scandir:");
    for (int i = 0; i < n; i++) {
        printf(" %s", list[i]->d_name);
        free(list[i]);
    }
    printf("%s\n", n < 0 ? strerror(errno) : "");
    free(n >= 0 ? list : NULL);
    printf("scandir's inode numbers: %s\n", inodes_agree ? "the files'" : "others");
    errno = 0;
    n = scandir(file, &list, NULL, NULL);
    printf("scandir of a file: %s\n", n < 0 ? strerror(errno) : "a list");
    return 0;
}
