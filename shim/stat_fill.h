/* stat_fill.h — a struct lcf_stat (the wire's and the snapshot's stat) as the kernel's struct
 * stat and struct statx: the shim's stat answers (fs.c) and the supervisor's fast path
 * (launcher/fastpath.c) fill the program's buffers alike. */
#ifndef LIBCFAKE_STAT_FILL_H
#define LIBCFAKE_STAT_FILL_H

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "libcfake_wire.h"

static inline void lcf_fill_stat(struct stat *st, const struct lcf_stat *s)
{
    memset(st, 0, sizeof *st);
    st->st_dev = s->dev;
    st->st_ino = s->ino;
    st->st_nlink = s->nlink;
    st->st_mode = s->mode;
    st->st_uid = s->uid;
    st->st_gid = s->gid;
    st->st_rdev = s->rdev;
    st->st_size = s->size;
    st->st_blksize = s->blksize;
    st->st_blocks = s->blocks;
    st->st_atim = (struct timespec){s->atime_sec, s->atime_nsec};
    st->st_mtim = (struct timespec){s->mtime_sec, s->mtime_nsec};
    st->st_ctim = (struct timespec){s->ctime_sec, s->ctime_nsec};
}

static inline void lcf_fill_statx(struct statx *stx, const struct lcf_stat *s)
{
    memset(stx, 0, sizeof *stx);
    stx->stx_mask = STATX_BASIC_STATS;
    stx->stx_blksize = (uint32_t)s->blksize;
    stx->stx_nlink = (uint32_t)s->nlink;
    stx->stx_uid = s->uid;
    stx->stx_gid = s->gid;
    stx->stx_mode = (uint16_t)s->mode;
    stx->stx_ino = s->ino;
    stx->stx_size = (uint64_t)s->size;
    stx->stx_blocks = (uint64_t)s->blocks;
    stx->stx_atime = (struct statx_timestamp){.tv_sec = s->atime_sec, .tv_nsec = (uint32_t)s->atime_nsec};
    stx->stx_mtime = (struct statx_timestamp){.tv_sec = s->mtime_sec, .tv_nsec = (uint32_t)s->mtime_nsec};
    stx->stx_ctime = (struct statx_timestamp){.tv_sec = s->ctime_sec, .tv_nsec = (uint32_t)s->ctime_nsec};
    stx->stx_rdev_major = major(s->rdev);
    stx->stx_rdev_minor = minor(s->rdev);
    stx->stx_dev_major = major(s->dev);
    stx->stx_dev_minor = minor(s->dev);
}

#endif
