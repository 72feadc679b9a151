/* statfs PATH: prints what statfs, statvfs64, and fstatfs/fstatvfs of an open descriptor of
 * PATH say: "statfs <type> <bsize> <blocks> <namelen> <rdonly>" and so on, or the errno. */
#define _GNU_SOURCE /* statvfs64 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct statfs fs;
    if (statfs(argv[1], &fs) == 0)
        printf("statfs %lx %ld %lu %ld %d\n", (unsigned long)fs.f_type, (long)fs.f_bsize,
               (unsigned long)fs.f_blocks, (long)fs.f_namelen, (int)(fs.f_flags & ST_RDONLY));
    else
        printf("statfs errno %s\n", strerror(errno));
    struct statvfs64 vfs;
    if (statvfs64(argv[1], &vfs) == 0)
        printf("statvfs %lu %lu %lu\n", vfs.f_frsize, (unsigned long)vfs.f_blocks, vfs.f_namemax);
    else
        printf("statvfs errno %s\n", strerror(errno));
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        printf("open errno %s\n", strerror(errno));
        return 0;
    }
    struct statfs ffs;
    struct statvfs fvfs;
    if (fstatfs(fd, &ffs) == 0 && fstatvfs(fd, &fvfs) == 0)
        printf("fstatfs %lx %lu fstatvfs %lu\n", (unsigned long)ffs.f_type,
               (unsigned long)ffs.f_blocks, (unsigned long)fvfs.f_blocks);
    else
        printf("fstatfs errno %s\n", strerror(errno));
    close(fd);
    return 0;
}
