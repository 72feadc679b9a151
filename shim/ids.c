/* ids.c — the set*id family: the real call and, when it succeeds, word to the channel that the
 * ids changed. The master checks a program's permissions with the ids its connection's hello
 * carried; a daemon that starts as root and then drops to a service user must be checked as that
 * user from then on. (A raw syscall(SYS_setuid, ...) goes unseen, as does setfsuid.) */

#include "shim.h"

#include <unistd.h>

/* Defines NAME(ARGS) as libc's NAME, followed by lcf_ids_changed when it returns 0. */
#define LCF_SETS_IDS(name, params, args, ...)                                                     \
    LCF_EXPORT int name params                                                                    \
    {                                                                                             \
        LCF_REAL(name, int, __VA_ARGS__);                                                         \
        int ret = libc_##name args;                                                               \
        if (ret == 0)                                                                             \
            lcf_ids_changed();                                                                    \
        return ret;                                                                               \
    }

LCF_SETS_IDS(setuid, (uid_t uid), (uid), uid_t)
LCF_SETS_IDS(setgid, (gid_t gid), (gid), gid_t)
LCF_SETS_IDS(seteuid, (uid_t euid), (euid), uid_t)
LCF_SETS_IDS(setegid, (gid_t egid), (egid), gid_t)
LCF_SETS_IDS(setreuid, (uid_t ruid, uid_t euid), (ruid, euid), uid_t, uid_t)
LCF_SETS_IDS(setregid, (gid_t rgid, gid_t egid), (rgid, egid), gid_t, gid_t)
LCF_SETS_IDS(setresuid, (uid_t ruid, uid_t euid, uid_t suid), (ruid, euid, suid), uid_t, uid_t,
             uid_t)
LCF_SETS_IDS(setresgid, (gid_t rgid, gid_t egid, gid_t sgid), (rgid, egid, sgid), gid_t, gid_t,
             gid_t)
