/* exec.c — the exec family: execve, execv, execvp, execvpe, execl, execlp, execle, fexecve,
 * execveat, posix_spawn and posix_spawnp. Each asks the master first (LCF_EXEC, with the absolute path of
 * the program about to run and its st_mode), so the master can journal the exec or refuse it, and
 * then runs the real function with an environment that keeps the new image behind the shim:
 * a program that scrubs its environment (env -i, execle with a fresh envp) still has its children
 * served. Everything here is async-signal-safe (execve is called from vfork children): no malloc,
 * no stdio; the execl argument vectors and a repaired environment live on the stack, in an mmap
 * when they are too large for it.
 *
 * Setuid and setgid programs: when the exec changes the process's credentials (the file has
 * S_ISUID or S_ISGID and the caller is not already those ids), the kernel sets AT_SECURE and the
 * loader ignores LD_PRELOAD, so the new image runs outside the shim whatever the environment says.
 * The shim cannot fix that; it reports it: call.mode carries the target's st_mode (0 when it
 * cannot be read), so the master sees S_ISUID/S_ISGID and decides — the master reports it as a
 * violation, or refuses the exec.
 *
 * Not reached: glibc's system() and popen() spawn /bin/sh through its internal posix_spawn; their
 * children keep the program's environment (so they are served unless it was scrubbed) but the
 * master is not asked about the exec. */

#include "shim.h"
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXEC_STACK_ARGS 256        /* execl* argument vectors this long live on the stack */
#define EXEC_STACK_ENV 256         /* environments with this many entries are repaired on the stack */
#define EXEC_STACK_TEXT 8192       /* bytes for the repaired LD_PRELOAD= and LIBCFAKE_SOCKET= */
#define EXEC_FIRST_SIZE 1024       /* bytes of the preload entries that precede the shim */
#define EXEC_DEFAULT_PATH "/bin:/usr/bin" /* glibc's search path when PATH is unset */

static const char preload_name[] = "LD_PRELOAD=";
static const char socket_name[] = "LIBCFAKE_SOCKET=";

/* ==================================================================== real functions ===== */
/* The exec itself stays libc's: under libcfake-launch it traps, so the master sees every new
 * image (one trap per exec). The shim's own lookups before it (the target's mode, the $PATH
 * search, /proc/self/fd links) go through the gate (lcf_real_*, real.h). */

static int real_execve(const char *path, char *const argv[], char *const envp[])
{
    LCF_REAL(execve, int, const char *, char *const *, char *const *);
    return libc_execve(path, argv, envp);
}

static int real_execvpe(const char *file, char *const argv[], char *const envp[])
{
    LCF_REAL(execvpe, int, const char *, char *const *, char *const *);
    return libc_execvpe(file, argv, envp);
}

static int real_fexecve(int fd, char *const argv[], char *const envp[])
{
    LCF_REAL(fexecve, int, int, char *const *, char *const *);
    return libc_fexecve(fd, argv, envp);
}

static int real_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                            const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    LCF_REAL(posix_spawn, int, pid_t *, const char *, const posix_spawn_file_actions_t *,
             const posix_spawnattr_t *, char *const *, char *const *);
    return libc_posix_spawn(pid, path, actions, attr, argv, envp);
}

static int real_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                             const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    LCF_REAL(posix_spawnp, int, pid_t *, const char *, const posix_spawn_file_actions_t *,
             const posix_spawnattr_t *, char *const *, char *const *);
    return libc_posix_spawnp(pid, file, actions, attr, argv, envp);
}


/* ========================================================================== the shim ===== */

/* This library's path as the loader knows it (the LD_PRELOAD entry that loaded it), and the
 * preload entries that came before it (the ASan runtime of the sanitizer build must stay first).
 * Both are read once by the constructor: dladdr takes the loader's lock, which a forked child of
 * a multithreaded program may find held. */
static const char *shim_file;
static char preload_first[EXEC_FIRST_SIZE];
static size_t preload_first_len;

static const char *shim_path(void)
{
    const char *name = __atomic_load_n(&shim_file, __ATOMIC_ACQUIRE);
    if (name == NULL) { /* an exec before our constructor ran */
        Dl_info info;
        if (dladdr((void *)shim_path, &info) != 0 && info.dli_fname != NULL &&
            info.dli_fname[0] != '\0')
            name = info.dli_fname; /* the loader's own copy: lives as long as the shim */
        __atomic_store_n(&shim_file, name, __ATOMIC_RELEASE);
    }
    return name;
}

/* The next entry of an LD_PRELOAD value (entries are separated by spaces or colons); false at
 * the end. */
static bool next_entry(const char **at, const char **entry, size_t *len)
{
    const char *s = *at;
    while (*s == ' ' || *s == ':')
        s++;
    if (*s == '\0')
        return false;
    const char *e = s;
    while (*e != '\0' && *e != ' ' && *e != ':')
        e++;
    *entry = s;
    *len = (size_t)(e - s);
    *at = e;
    return true;
}

static bool has_entry(const char *value, const char *name, size_t n)
{
    const char *entry;
    size_t len;
    while (next_entry(&value, &entry, &len))
        if (len == n && memcmp(entry, name, n) == 0)
            return true;
    return false;
}

__attribute__((constructor)) static void exec_init(void)
{
    const char *shim = shim_path();
    const char *value = getenv("LD_PRELOAD");
    if (shim == NULL || value == NULL)
        return;
    size_t shim_len = strlen(shim);
    const char *entry;
    size_t len;
    while (next_entry(&value, &entry, &len)) {
        if (len == shim_len && memcmp(entry, shim, len) == 0)
            return;
        if (preload_first_len + len + 1 >= sizeof preload_first)
            return; /* the rest does not fit: keep what does */
        memcpy(preload_first + preload_first_len, entry, len);
        preload_first_len += len;
        preload_first[preload_first_len++] = ' ';
    }
    preload_first_len = 0; /* the shim was not among them: nothing precedes it */
}

/* ======================================================================= the target ===== */

/* The program an exec is about to run, as the master is told about it. */
struct exec_target {
    const char *path;              /* the absolute path, or the name as given */
    size_t len;
    uint32_t mode;                 /* its st_mode, 0 when it cannot be read */
    char buf[LCF_MAX_PATH + 1];
};

static void target_mode(struct exec_target *t)
{
    struct stat st;
    t->mode = lcf_real_fstatat(AT_FDCWD, t->path, &st, 0) == 0 ? st.st_mode : 0;
}

/* Copies the absolute path src (n bytes) to dst without its empty and "." components ("/a//./b"
 * becomes "/a/b"); ".." stays, as symlinks decide what it means. dst may be src: the copy only
 * ever shrinks. Returns the new length; dst is NUL-terminated. */
static size_t clean_path(char *dst, const char *src, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && src[i] == '/')
            i++;
        size_t j = i;
        while (j < n && src[j] != '/')
            j++;
        if (j > i && !(j - i == 1 && src[i] == '.')) {
            dst[out++] = '/';
            memmove(dst + out, src + i, j - i);
            out += j - i;
        }
        i = j;
    }
    if (out == 0)
        dst[out++] = '/';
    dst[out] = '\0';
    return out;
}

/* A path as execve sees it: absolute as given, relative to the current directory otherwise,
 * reported without empty and "." components. */
static void target_path(struct exec_target *t, const char *path)
{
    t->path = path;
    t->len = strnlen(path, LCF_MAX_PATH + 1);
    if (t->len <= LCF_MAX_PATH) {
        int len = path[0] == '/' ? (int)t->len : lcf_resolve_cwd(t->buf, path, t->len);
        if (len >= 0) {
            t->len = clean_path(t->buf, path[0] == '/' ? path : t->buf, (size_t)len);
            t->path = t->buf;
        }
    }
    target_mode(t);
}

/* A file name as execvp and posix_spawnp find it: through $PATH (of the caller's environment,
 * as glibc does) unless it has a slash; the first regular, executable file wins. A name that is
 * not found is reported as given. */
static void target_search(struct exec_target *t, const char *file)
{
    if (strchr(file, '/') != NULL) {
        target_path(t, file);
        return;
    }
    size_t file_len = strnlen(file, LCF_MAX_PATH + 1);
    const char *search = getenv("PATH");
    if (search == NULL)
        search = EXEC_DEFAULT_PATH;
    for (const char *dir = search;; dir++) {
        const char *end = strchrnul(dir, ':');
        size_t dir_len = (size_t)(end - dir);
        char candidate[LCF_MAX_PATH + 1];
        if (dir_len + 1 + file_len <= LCF_MAX_PATH) {
            memcpy(candidate, dir, dir_len); /* an empty entry is the current directory */
            size_t n = dir_len;
            if (n > 0)
                candidate[n++] = '/';
            memcpy(candidate + n, file, file_len);
            candidate[n + file_len] = '\0';
            struct stat st;
            if (lcf_real_fstatat(AT_FDCWD, candidate, &st, 0) == 0 && S_ISREG(st.st_mode) &&
                lcf_real_faccessat(AT_FDCWD, candidate, X_OK, 0) == 0) {
                target_path(t, candidate); /* a relative entry is resolved into t->buf */
                if (t->path == candidate) {
                    memcpy(t->buf, candidate, t->len + 1);
                    t->path = t->buf;
                }
                return;
            }
        }
        if (*end == '\0')
            break;
        dir = end;
    }
    t->path = file;
    t->len = file_len;
    t->mode = 0;
}

/* ======================================================================= the master ===== */

/* Asks the master whether the exec may go ahead. Returns 0, or the errno the exec fails with:
 * the master's, EIO when it cannot be asked (fail closed), ENAMETOOLONG for a path too long to
 * send. errno is left as it was. */
static int exec_ask(const char *symbol, const struct exec_target *t)
{
    if (lcf_in_real)
        return 0;
    if (t->len > LCF_MAX_PATH)
        return ENAMETOOLONG;
    int saved = errno;
    struct lcf_request req;
    lcf_request_init(&req, LCF_EXEC, symbol);
    req.str1 = t->path;
    req.call.length1 = (int32_t)t->len;
    req.call.mode = t->mode;
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(&req, &reply, &fd, NULL, 0);
    int err = action < 0 ? EIO : action == LCF_ANSWER && reply.result < 0 ? reply.error : 0;
    errno = saved;
    return err;
}

/* ================================================================== the environment ===== */

/* An environment for the new image: the program's own, or a repaired copy of it. */
struct exec_env {
    char *const *envp;             /* what the real function gets */
    void *map;                     /* the mmap holding a large copy, or NULL */
    size_t map_size;
    char *array[EXEC_STACK_ENV];
    char text[EXEC_STACK_TEXT];
};

static bool starts_with(const char *s, const char *prefix, size_t n)
{
    return strncmp(s, prefix, n) == 0;
}

static char *put(char *at, const char *s, size_t n)
{
    memcpy(at, s, n);
    return at + n;
}

/* Writes "LD_PRELOAD=" + the entries that preceded the shim (those the program's value lacks) +
 * the program's value + the shim, NUL-terminated, at `at`. Returns the end. */
static char *put_preload(char *at, const char *value, const char *shim)
{
    at = put(at, preload_name, sizeof preload_name - 1);
    const char *first = preload_first, *entry;
    size_t len;
    while (first < preload_first + preload_first_len && next_entry(&first, &entry, &len)) {
        if (value == NULL || !has_entry(value, entry, len)) {
            at = put(at, entry, len);
            *at++ = ' ';
        }
    }
    if (value != NULL) {
        while (*value == ' ' || *value == ':')
            value++;
        size_t n = strlen(value);
        if (n > 0) {
            at = put(at, value, n);
            *at++ = ' ';
        }
    }
    at = put(at, shim, strlen(shim));
    *at++ = '\0';
    return at;
}

/* Makes env->envp an environment that runs the new image behind the shim and talks to our
 * master: envp itself when it does (LD_PRELOAD names the shim, LIBCFAKE_SOCKET is the master's),
 * else a copy with every LD_PRELOAD and LIBCFAKE_SOCKET entry replaced by one good one. Returns
 * 0, or an errno (EIO: no shim path or master to name; ENOMEM: no memory for a large copy). */
static int env_prepare(struct exec_env *env, char *const envp[])
{
    static char *const empty[] = {NULL};
    const char *shim = shim_path();
    const char *master = lcf_master_path();
    env->envp = envp != NULL ? envp : empty;
    env->map = NULL;
    if (shim == NULL || master == NULL || master[0] == '\0')
        return EIO;
    size_t shim_len = strlen(shim), master_len = strlen(master);
    const char *preload = NULL; /* the loader uses the last LD_PRELOAD */
    bool socket_ok = true;
    size_t count = 0;
    for (char *const *e = env->envp; *e != NULL; e++, count++) {
        if (starts_with(*e, preload_name, sizeof preload_name - 1))
            preload = *e + sizeof preload_name - 1;
        else if (starts_with(*e, socket_name, sizeof socket_name - 1))
            socket_ok &= strcmp(*e + sizeof socket_name - 1, master) == 0;
    }
    bool preload_ok = preload != NULL && has_entry(preload, shim, shim_len);
    if (preload_ok && socket_ok)
        return 0;
    size_t text = sizeof preload_name + preload_first_len + (preload ? strlen(preload) + 1 : 0) +
                  shim_len + sizeof socket_name + master_len;
    size_t slots = count + 3;
    char **array = env->array;
    char *at = env->text;
    if (slots > EXEC_STACK_ENV || text > EXEC_STACK_TEXT) {
        size_t page = 4096;
        env->map_size = (slots * sizeof(char *) + text + page - 1) / page * page;
        void *map = mmap(NULL, env->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (map == MAP_FAILED)
            return ENOMEM;
        env->map = map;
        array = map;
        at = (char *)map + slots * sizeof(char *);
    }
    size_t n = 0;
    for (char *const *e = env->envp; *e != NULL; e++) {
        if (starts_with(*e, preload_name, sizeof preload_name - 1) ||
            starts_with(*e, socket_name, sizeof socket_name - 1))
            continue;
        array[n++] = *e;
    }
    array[n++] = at;
    at = put_preload(at, preload, shim);
    array[n++] = at;
    at = put(at, socket_name, sizeof socket_name - 1);
    at = put(at, master, master_len);
    *at = '\0';
    array[n] = NULL;
    env->envp = array;
    return 0;
}

static void env_release(struct exec_env *env)
{
    if (env->map != NULL) {
        int saved = errno;
        munmap(env->map, env->map_size);
        env->map = NULL;
        errno = saved;
    }
}

/* What every exec does before the real call: ask the master about t, then prepare the
 * environment the new image gets. 0, or an errno; after 0 the caller runs the program and then
 * calls env_release. */
static int exec_prepare(const char *symbol, const struct exec_target *t, struct exec_env *env,
                        char *const envp[])
{
    int err = exec_ask(symbol, t);
    return err != 0 ? err : env_prepare(env, envp);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ============================================================================ execve ===== */

/* Copies the program's path or file name into given (LCF_MAX_PATH + 1 bytes): the master is asked
 * about the copy and the real call gets the copy, so a second thread rewriting the program's
 * buffer cannot swap in another program (a setuid one) after the check. Returns 0, or an errno. */
static int copy_given(char *given, const char *file)
{
    size_t n = strnlen(file, LCF_MAX_PATH + 1);
    if (n > LCF_MAX_PATH)
        return ENAMETOOLONG;
    memcpy(given, file, n);
    given[n] = '\0';
    return given[0] == '\0' ? ENOENT : 0;
}

/* execve and execvpe (search: through PATH): ask the master, repair the environment, exec. */
static int exec_common(const char *symbol, bool search, const char *program, char *const argv[],
                       char *const envp[])
{
    if (program == NULL || program[0] == '\0') /* the kernel's EFAULT or ENOENT: nothing to ask */
        return search ? real_execvpe(program, argv, envp) : real_execve(program, argv, envp);
    char file[LCF_MAX_PATH + 1];
    int copied = copy_given(file, program);
    if (copied != 0)
        return fail(copied);
    struct exec_target t;
    if (search)
        target_search(&t, file);
    else
        target_path(&t, file);
    struct exec_env env;
    int err = exec_prepare(symbol, &t, &env, envp);
    if (err != 0)
        return fail(err);
    int ret = search ? real_execvpe(file, argv, env.envp) : real_execve(file, argv, env.envp);
    env_release(&env);
    return ret;
}

LCF_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return exec_common("execve", false, path, argv, envp);
}

LCF_EXPORT int execv(const char *path, char *const argv[])
{
    return exec_common("execv", false, path, argv, environ);
}

LCF_EXPORT int execvp(const char *file, char *const argv[])
{
    return exec_common("execvp", true, file, argv, environ);
}

LCF_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return exec_common("execvpe", true, file, argv, envp);
}

/* The program a descriptor refers to, as fexecve runs it: its path as /proc says it (a memfd:
 * "/memfd:x (deleted)") and its mode. Returns 0, or EBADF. */
static int target_fd(struct exec_target *t, int fd)
{
    struct stat st;
    if (fd < 0 || lcf_real_fstat(fd, &st) < 0)
        return EBADF;
    char proc[32];
    lcf_proc_fd_path(proc, fd);
    ssize_t len = lcf_real_readlink(proc, t->buf, LCF_MAX_PATH);
    t->path = t->buf;
    t->len = len > 0 ? (size_t)len : 0;
    t->buf[t->len] = '\0';
    t->mode = st.st_mode;
    return 0;
}

LCF_EXPORT int fexecve(int given, char *const argv[], char *const envp[])
{
    struct exec_target t;
    FD_PIN(fd, given); /* the file asked about is the file run */
    struct exec_env env;
    int err = target_fd(&t, fd);
    if (err == 0)
        err = exec_prepare("fexecve", &t, &env, envp);
    if (err != 0)
        return fail(err);
    int ret = real_fexecve(fd, argv, env.envp);
    env_release(&env);
    return ret;
}

static int real_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    LCF_REAL(execveat, int, int, const char *, char *const *, char *const *, int);
    return libc_execveat(dirfd, path, argv, envp, flags);
}

/* execveat: a descriptor's file (AT_EMPTY_PATH and ""), or a path from a directory descriptor
 * (both pinned, the path copied: what is asked about is what runs). */
LCF_EXPORT int execveat(int dirfd, const char *program, char *const argv[], char *const envp[],
                        int flags)
{
    if (program == NULL)
        return real_execveat(dirfd, program, argv, envp, flags);
    FD_PIN(dir, dirfd == AT_FDCWD ? -1 : dirfd);
    if (dirfd == AT_FDCWD)
        dir = AT_FDCWD;
    char file[LCF_MAX_PATH + 1];
    struct exec_target t;
    int err = 0;
    if (program[0] == '\0' && (flags & AT_EMPTY_PATH)) {
        file[0] = '\0';
        err = target_fd(&t, dir);
    } else if ((err = copy_given(file, program)) == 0) {
        if (file[0] == '/' || dir == AT_FDCWD) {
            target_path(&t, file);
        } else { /* the directory's path, "/", the name */
            char proc[32];
            lcf_proc_fd_path(proc, dir);
            ssize_t k = lcf_real_readlink(proc, t.buf, LCF_MAX_PATH);
            size_t n = strlen(file);
            if (k <= 0 || (size_t)k + 1 + n > LCF_MAX_PATH)
                return fail(k <= 0 ? EBADF : ENAMETOOLONG);
            t.buf[k] = '/';
            memcpy(t.buf + k + 1, file, n + 1);
            t.path = t.buf;
            t.len = (size_t)k + 1 + n;
        }
        struct stat st; /* (the mode of what runs, from the pinned directory) */
        t.mode = lcf_real_fstatat(dir, file, &st, flags & AT_SYMLINK_NOFOLLOW) == 0 ? st.st_mode
                                                                                    : 0;
    }
    struct exec_env env;
    if (err == 0)
        err = exec_prepare("execveat", &t, &env, envp);
    if (err != 0)
        return fail(err);
    int ret = real_execveat(dir, file, argv, env.envp, flags);
    env_release(&env);
    return ret;
}

/* ============================================================================= execl ===== */

/* The execl family passes argv as variadic arguments up to a NULL: collect them into an array on
 * the stack (in an mmap when longer than EXEC_STACK_ARGS), and for execle take the envp after it. */
#define EXECL_WRAPPER(name, search, with_env)                                                    \
    LCF_EXPORT int name(const char *file, const char *arg, ...)                                  \
    {                                                                                            \
        va_list ap;                                                                              \
        size_t argc = 1;                                                                         \
        const char *first = arg; /* glibc declares it nonnull; programs still pass NULL */      \
        __asm__("" : "+r"(first));                                                               \
        va_start(ap, arg);                                                                       \
        if (first != NULL)                                                                       \
            while (va_arg(ap, char *) != NULL)                                                   \
                argc++;                                                                          \
        va_end(ap);                                                                              \
        char *stack[EXEC_STACK_ARGS];                                                            \
        char **argv = stack;                                                                     \
        size_t size = ((argc + 1) * sizeof(char *) + 4095) / 4096 * 4096;                        \
        if (argc + 1 > EXEC_STACK_ARGS) {                                                        \
            void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,    \
                             -1, 0);                                                             \
            if (map == MAP_FAILED)                                                               \
                return fail(E2BIG);                                                              \
            argv = map;                                                                          \
        }                                                                                        \
        va_start(ap, arg);                                                                       \
        argv[0] = (char *)first;                                                                 \
        for (size_t i = 1; i <= argc; i++)                                                       \
            argv[i] = first == NULL ? NULL : va_arg(ap, char *);                                 \
        char *const *envp = environ;                                                             \
        if (with_env)                                                                            \
            envp = va_arg(ap, char *const *);                                                    \
        va_end(ap);                                                                              \
        int ret = exec_common(#name, search, file, argv, envp);                                  \
        if (argv != stack) {                                                                     \
            int saved = errno;                                                                   \
            munmap(argv, size);                                                                  \
            errno = saved;                                                                       \
        }                                                                                        \
        return ret;                                                                              \
    }

EXECL_WRAPPER(execl, false, false)
EXECL_WRAPPER(execlp, true, false)
EXECL_WRAPPER(execle, false, true)

/* ======================================================================= posix_spawn ===== */

/* posix_spawn and posix_spawnp return the error instead of setting errno. glibc's children exec
 * through its internal __execve, out of our reach: the master is asked here, in the parent. A
 * relative path is reported against the parent's directory even if the file actions change it. */
static int spawn_common(const char *symbol, bool search, pid_t *pid, const char *file,
                        const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                        char *const argv[], char *const envp[])
{
    int saved = errno;
    struct exec_target t = {.path = NULL};
    int err = 0;
    struct exec_env env = {.envp = envp, .map = NULL};
    char given[LCF_MAX_PATH + 1];
    if (file != NULL && file[0] != '\0' && (err = copy_given(given, file)) == 0) {
        file = given;
        if (search)
            target_search(&t, file);
        else
            target_path(&t, file);
        err = exec_prepare(symbol, &t, &env, envp);
    }
    if (err == 0)
        err = search ? real_posix_spawnp(pid, file, actions, attr, argv, env.envp)
                     : real_posix_spawn(pid, file, actions, attr, argv, env.envp);
    env_release(&env);
    errno = saved;
    return err;
}

LCF_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_common("posix_spawn", false, pid, path, actions, attr, argv, envp);
}

LCF_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                            const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return spawn_common("posix_spawnp", true, pid, file, actions, attr, argv, envp);
}
