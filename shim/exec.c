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
 * Programs of the model (a script or binary a test wrote, a model symlink to a host binary such
 * as a venv's bin/python) have no file the kernel could open by their path: the master answers
 * their exec with a descriptor of the file to run (the model's memfd, or the host file the
 * symlink leads to), and the shim runs it as fexecve does, execveat(fd, "", AT_EMPTY_PATH). A
 * script is not handed to the kernel so: its name would be /dev/fd/N, closed by then. The shim
 * reads its "#!" line as Linux's binfmt_script does, and the exec becomes one of the interpreter
 * (asked about in turn: the model's or the host's) with the script's own name as its argument,
 * which the interpreter then opens through the shim. posix_spawn runs the descriptor as
 * /proc/self/fd/N (glibc's child makes the exec itself).
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
#define EXEC_LINE 256              /* bytes of a script's "#!" line Linux reads (BINPRM_BUF_SIZE) */
#define EXEC_SCRIPTS 5             /* scripts one exec may go through; a sixth is ELOOP, as Linux */
#define EXEC_HIGH_FD 900           /* posix_spawn's program descriptor moves to this or above */
#define EXEC_SHELL "/bin/sh"       /* glibc's shell for execvp's files the kernel cannot run */

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

static int real_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                         int flags)
{
    LCF_REAL(execveat, int, int, const char *, char *const *, char *const *, int);
    return libc_execveat(dirfd, path, argv, envp, flags);
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

/* Whether a $PATH candidate is a regular file the program may execute: on the host (the shim's
 * own look, through the gate), or else as the program sees it (the shim's stat and access
 * wrappers: the model's programs, a venv's bin/ on PATH). */
static bool executable(const char *candidate)
{
    struct stat st;
    if (lcf_real_fstatat(AT_FDCWD, candidate, &st, 0) == 0 && S_ISREG(st.st_mode) &&
        lcf_real_faccessat(AT_FDCWD, candidate, X_OK, 0) == 0)
        return true;
    return !lcf_in_real && fstatat(AT_FDCWD, candidate, &st, 0) == 0 && S_ISREG(st.st_mode) &&
           faccessat(AT_FDCWD, candidate, X_OK, AT_EACCESS) == 0;
}

/* A file name as execvp and posix_spawnp find it: through $PATH (of the caller's environment,
 * as glibc does) unless it has a slash; the first regular, executable file wins. A name that is
 * not found is reported as given. `found` (LCF_MAX_PATH + 1 bytes) gets the name glibc gives the
 * kernel: "dir/file" as written in $PATH, or the file as given. */
static void target_search(struct exec_target *t, const char *file, char *found)
{
    size_t file_len = strnlen(file, LCF_MAX_PATH + 1);
    memcpy(found, file, file_len + 1); /* (the caller's copy: at most LCF_MAX_PATH bytes) */
    if (strchr(file, '/') != NULL) {
        target_path(t, file);
        return;
    }
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
            if (executable(candidate)) {
                memcpy(found, candidate, n + file_len + 1);
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
 * send. *program is the file to run instead (a program of the model: the caller closes it), or
 * -1. errno is left as it was. */
static int exec_ask(const char *symbol, const struct exec_target *t, int *program)
{
    *program = -1;
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
    if (fd >= 0 && err == 0 && action == LCF_ANSWER)
        *program = fd;
    else if (fd >= 0)
        close(fd);
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
 * environment the new image gets. 0, or an errno; after 0 the caller runs the program (*program
 * when it is not -1: a program of the model, see exec_model) and then calls env_release. */
static int exec_prepare(const char *symbol, const struct exec_target *t, struct exec_env *env,
                        char *const envp[], int *program)
{
    int err = exec_ask(symbol, t, program);
    if (err == 0)
        err = env_prepare(env, envp);
    if (err != 0 && *program >= 0) {
        close(*program);
        *program = -1;
    }
    return err;
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ==================================================================== model programs ===== */

/* A program of the model as it will run, its scripts' "#!" lines followed: the file to execute
 * (the master's descriptor) or the host's interpreter (by its path), and the argument vector. */
struct exec_run {
    int fd;                        /* the file to run, or -1: run path */
    const char *path;              /* the host program to run when fd is -1 */
    char *const *argv;             /* what the program runs with: its own argv, or in vec */
    char **vec;                    /* the argument vector scripts make: stack, or the map */
    void *map;                     /* the mmap holding a long vector, or NULL */
    size_t map_size;
    char *stack[EXEC_STACK_ARGS];
    char lines[EXEC_SCRIPTS + 1][EXEC_LINE + 1]; /* each script's "#!" line, cut into names */
};

static void run_release(struct exec_run *r)
{
    int saved = errno;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->map != NULL)
        munmap(r->map, r->map_size);
    r->map = NULL;
    errno = saved;
}

static bool spacetab(char c)
{
    return c == ' ' || c == '\t';
}

/* The first of [first, last] that is no space or tab, or NULL. */
static char *next_non_spacetab(char *first, const char *last)
{
    for (; first <= last; first++)
        if (!spacetab(*first))
            return first;
    return NULL;
}

/* The first of [first, last] that is a space, a tab or a NUL, or NULL. */
static char *next_terminator(char *first, const char *last)
{
    for (; first <= last; first++)
        if (spacetab(*first) || *first == '\0')
            return first;
    return NULL;
}

/* Reads the first EXEC_LINE bytes of the file fd into buf (EXEC_LINE + 1 bytes) and parses its
 * "#!" line as Linux's load_script (fs/binfmt_script.c) does: the interpreter is the first word,
 * the optional argument all the rest of the line (one argument, spaces inside kept, spaces and
 * tabs around it trimmed); a line longer than the buffer keeps its start if the interpreter's
 * name ends inside it. Returns 1 for a script (*interp, *arg: NUL-terminated in buf, arg NULL if
 * none), 0 for a file that is none (the kernel decides what it is; a descriptor that cannot be
 * read is left to it too), or -ENOEXEC for a "#!" line without a (whole) interpreter name. */
static int read_script(int fd, char *buf, const char **interp, const char **arg)
{
    memset(buf, 0, EXEC_LINE + 1); /* the kernel's buffer is zeroed past a short file's end */
    if (pread(fd, buf, EXEC_LINE, 0) < 2 || buf[0] != '#' || buf[1] != '!')
        return 0;
    const char *buf_end = buf + EXEC_LINE - 1;
    char *end = memchr(buf, '\n', EXEC_LINE);
    if (end == NULL) {
        end = next_non_spacetab(buf + 2, buf_end);
        if (end == NULL || next_terminator(end, buf_end) == NULL)
            return -ENOEXEC; /* all blanks, or an interpreter's name cut short */
        end = buf + EXEC_LINE - 1;
    }
    while (spacetab(end[-1]))
        end--;
    char *name = next_non_spacetab(buf + 2, end);
    if (name == NULL || name == end)
        return -ENOEXEC;
    char *sep = next_terminator(name, end);
    char *optional = sep != NULL && *sep != '\0' ? next_non_spacetab(sep, end) : NULL;
    *end = '\0';
    if (optional != NULL)
        *sep = '\0';
    *interp = name;
    *arg = optional;
    return 1;
}

static size_t count_args(char *const argv[])
{
    size_t argc = 0;
    while (argv != NULL && argv[argc] != NULL)
        argc++;
    return argc;
}

/* Makes r->vec: the program's argv with room in front for what scripts put there (each takes
 * argv[0] away and puts up to three names before the rest); an empty argv is [""], as Linux
 * makes it. *start is where the vector begins. Returns 0 or ENOMEM. */
static int run_vector(struct exec_run *r, char *const argv[], size_t *start)
{
    size_t argc = count_args(argv);
    size_t head = 2 * (EXEC_SCRIPTS + 1);
    size_t slots = head + (argc > 0 ? argc : 1) + 1;
    r->vec = r->stack;
    if (slots > EXEC_STACK_ARGS) {
        r->map_size = (slots * sizeof(char *) + 4095) / 4096 * 4096;
        void *map = mmap(NULL, r->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (map == MAP_FAILED)
            return ENOMEM;
        r->map = r->vec = map;
    }
    static char empty[] = "";
    r->vec[head] = empty;
    for (size_t i = 0; i < argc; i++)
        r->vec[head + i] = argv[i];
    r->vec[head + (argc > 0 ? argc : 1)] = NULL;
    *start = head;
    return 0;
}

/* The master answered an exec of `name` (the path as the program gave it) with the file to run,
 * fd. Follows the "#!" lines of scripts as Linux does: the exec becomes one of the interpreter
 * with [interpreter, its optional argument, the script's name, argv[1]...], the interpreter is
 * asked about in turn (the model's, or the host's), and a sixth script is ELOOP. A NULL name is
 * one the interpreter could not open (a close-on-exec directory descriptor's): ENOENT for a
 * script, as Linux. Leaves in r what to run: r->fd (the model's binary) or r->path (the host's
 * interpreter) with r->argv. Returns 0, or the errno the exec fails with (r released). */
static int run_resolve(struct exec_run *r, const char *symbol, int fd, const char *name,
                       char *const argv[])
{
    r->fd = fd;
    r->path = NULL;
    r->argv = argv;
    r->vec = NULL;
    r->map = NULL;
    size_t start = 0;
    for (int scripts = 0;; scripts++) {
        const char *interp, *arg;
        int script = read_script(r->fd, r->lines[scripts], &interp, &arg);
        if (script == 0)
            return 0;
        close(r->fd);
        r->fd = -1;
        int err = script < 0 ? -script : r->vec == NULL ? run_vector(r, argv, &start) : 0;
        if (err == 0 && interp[0] == '\0')
            err = EACCES; /* "#!" and no name: Linux opens "", the current directory */
        if (err == 0 && name == NULL)
            err = ENOENT; /* see above */
        if (err != 0) {
            run_release(r);
            return err;
        }
        start++; /* argv[0] goes: the interpreter, its argument and the script come first */
        r->vec[--start] = (char *)name;
        if (arg != NULL)
            r->vec[--start] = (char *)arg;
        r->vec[--start] = (char *)interp;
        r->argv = r->vec + start;
        struct exec_target t;
        target_path(&t, interp);
        err = exec_ask(symbol, &t, &r->fd);
        if (err == 0 && scripts == EXEC_SCRIPTS)
            err = ELOOP;
        if (err != 0) {
            run_release(r);
            return err;
        }
        if (r->fd < 0) {
            r->path = interp; /* the host's: the kernel runs it (and its own "#!" line) */
            return 0;
        }
        name = interp;
    }
}

/* Runs the program of the model the master answered an exec of `name` with (fd; see
 * run_resolve), with envp already prepared. Returns only when it cannot: -1 and errno. With
 * `search` (execvp and its kin), a file the kernel does not recognize (ENOEXEC) runs as a
 * shell script, as glibc does: [EXEC_SHELL, name, argv[1]...]. */
static int exec_model(const char *symbol, bool search, int fd, const char *name,
                      char *const argv[], char *const envp[])
{
    struct exec_run r;
    int err = run_resolve(&r, symbol, fd, name, argv);
    if (err != 0)
        return fail(err);
    if (r.fd >= 0)
        real_execveat(r.fd, "", r.argv, envp, AT_EMPTY_PATH);
    else
        real_execve(r.path, r.argv, envp);
    err = errno;
    run_release(&r);
    if (!search || err != ENOEXEC)
        return fail(err);
    /* glibc's maybe_script_execute: the shell reads the file, through the shim */
    size_t argc = count_args(argv);
    size_t slots = (argc > 1 ? argc : 1) + 2;
    char *stack[EXEC_STACK_ARGS];
    char **vec = stack;
    size_t size = (slots * sizeof(char *) + 4095) / 4096 * 4096;
    if (slots > EXEC_STACK_ARGS) {
        void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
            return fail(E2BIG);
        vec = map;
    }
    static char shell[] = EXEC_SHELL;
    vec[0] = shell;
    vec[1] = (char *)name;
    for (size_t i = 1; i < argc; i++)
        vec[i + 1] = argv[i];
    vec[argc > 1 ? argc + 1 : 2] = NULL;
    struct exec_target t;
    target_path(&t, EXEC_SHELL);
    int program;
    err = exec_ask(symbol, &t, &program);
    int ret = err != 0       ? fail(err)
              : program >= 0 ? exec_model(symbol, false, program, EXEC_SHELL, vec, envp)
                             : real_execve(EXEC_SHELL, vec, envp);
    if (vec != stack) {
        int saved = errno;
        munmap(vec, size);
        errno = saved;
    }
    return ret;
}

/* posix_spawn of a program of the model (see exec_model): glibc's child makes the exec itself,
 * so the file is named by /proc/self/fd/N (close-on-exec: the kernel opens it by that name
 * first), N out of the way of the file actions. Returns 0 or the error, as posix_spawn. */
static int spawn_model(const char *symbol, pid_t *pid, int fd, const char *name,
                       const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
                       char *const argv[], char *const envp[])
{
    struct exec_run r;
    int err = run_resolve(&r, symbol, fd, name, argv);
    if (err != 0)
        return err;
    if (r.fd < 0) {
        err = real_posix_spawn(pid, r.path, actions, attr, r.argv, envp);
    } else {
        int high = fcntl(r.fd, F_DUPFD_CLOEXEC, EXEC_HIGH_FD);
        if (high >= 0) {
            close(r.fd);
            r.fd = high;
        }
        char proc[32];
        lcf_proc_fd_path(proc, r.fd);
        err = real_posix_spawn(pid, proc, actions, attr, r.argv, envp);
    }
    run_release(&r);
    return err;
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
    char found[LCF_MAX_PATH + 1]; /* the name the kernel is given: a $PATH entry's, for search */
    int copied = copy_given(file, program);
    if (copied != 0)
        return fail(copied);
    struct exec_target t;
    if (search)
        target_search(&t, file, found);
    else
        target_path(&t, file);
    struct exec_env env;
    int model;
    int err = exec_prepare(symbol, &t, &env, envp, &model);
    if (err != 0)
        return fail(err);
    int ret = model >= 0 ? exec_model(symbol, search, model, search ? found : file, argv, env.envp)
              : search   ? real_execvpe(file, argv, env.envp)
                         : real_execve(file, argv, env.envp);
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
    int model = -1;
    int err = target_fd(&t, fd);
    if (err == 0)
        err = exec_prepare("fexecve", &t, &env, envp, &model);
    if (err != 0)
        return fail(err);
    int ret = model >= 0 ? exec_model("fexecve", false, model, t.path, argv, env.envp)
                         : real_fexecve(fd, argv, env.envp);
    env_release(&env);
    return ret;
}

/* Writes "/dev/fd/N/file" ("/dev/fd/N" for an empty file) into buf (LCF_MAX_PATH + 32 bytes;
 * file is at most LCF_MAX_PATH), async-signal-safely. Returns buf. */
static char *fd_name(char *buf, int fd, const char *file)
{
    char digits[16];
    size_t k = 0;
    unsigned int v = (unsigned int)fd;
    do
        digits[k++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    char *at = put(buf, "/dev/fd/", 8);
    while (k > 0)
        *at++ = digits[--k];
    if (file[0] != '\0') {
        *at++ = '/';
        at = put(at, file, strlen(file));
    }
    *at = '\0';
    return buf;
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
    int model = -1;
    if (err == 0)
        err = exec_prepare("execveat", &t, &env, envp, &model);
    if (err != 0)
        return fail(err);
    /* a model's script gets its name as the kernel makes it: as given, or /dev/fd/N/NAME from
     * the program's directory descriptor N, which the interpreter can open only if it stays */
    char named[LCF_MAX_PATH + 32];
    const char *name = file;
    if (file[0] != '/' && dirfd != AT_FDCWD) {
        int fd_flags = fcntl(dirfd, F_GETFD);
        name = fd_flags >= 0 && !(fd_flags & FD_CLOEXEC) ? fd_name(named, dirfd, file) : NULL;
    }
    int ret = model >= 0 ? exec_model("execveat", false, model, name, argv, env.envp)
                         : real_execveat(dir, file, argv, env.envp, flags);
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
    char found[LCF_MAX_PATH + 1]; /* the name the kernel is given: a $PATH entry's, for search */
    int model = -1;
    if (file != NULL && file[0] != '\0' && (err = copy_given(given, file)) == 0) {
        file = given;
        if (search)
            target_search(&t, file, found);
        else
            target_path(&t, file);
        err = exec_prepare(symbol, &t, &env, envp, &model);
    }
    if (err == 0 && model >= 0)
        err = spawn_model(symbol, pid, model, search ? found : file, actions, attr, argv,
                          env.envp);
    else if (err == 0)
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
