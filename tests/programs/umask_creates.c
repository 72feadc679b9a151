/* Creates files, directories, FIFOs and sockets in the current directory under umasks it sets:
 * usage `umask_creates SCENARIO`. The test lists the modes they got, natively and in a Sandbox.
 *   set      umask 077, then one of each kind
 *   between  a new umask between creations, umask(0)/umask(old) to read it, umask 0 and 0777
 *   threads  a thread's connection made before the main thread changes the umask, and back
 *   race     threads changing the umask at once, then a create: its mode must be the one the
 *            kernel's umask (read from /proc) gives; prints "race: N wrong" and leaves no file
 *   fork     a child inherits the umask, changes its own; the parent's stays
 *   vfork    a vfork child (sharing the parent's memory) changes its umask, creates, and execs
 *            sh, which creates: both with the child's umask; the parent's stays
 *   exec     umask 077, then exec sh, which creates with it */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what)
{
    perror(what);
    exit(1);
}

static void create(const char *name, mode_t mode)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        fail(name);
    close(fd);
}

static void make_dir(const char *name, mode_t mode)
{
    if (mkdir(name, mode) != 0)
        fail(name);
}

static void make_socket(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, name);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        fail(name);
    close(fd);
}

static void set(void)
{
    umask(077);
    create("file", 0666);
    create("exec", 0777);
    make_dir("dir", 0777);
    int dir = open("dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = openat(dir, "inside", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (dir < 0 || fd < 0 || mkdirat(dir, "sub", 0755) != 0)
        fail("dir/inside");
    close(fd);
    close(dir);
    if (mkfifo("fifo", 0666) != 0)
        fail("fifo");
    make_socket("socket");
    FILE *f = fopen("stdio", "w");
    if (f == NULL)
        fail("stdio");
    fclose(f);
}

static void between(void)
{
    create("a022", 0666);
    umask(077);
    create("b077", 0666);
    umask(002);
    make_dir("c002", 0777);
    mode_t old = umask(0); /* how programs read their umask */
    umask(old);
    create("d002", 0666);
    umask(0);
    create("e000", 0666);
    make_dir("f000", 0777);
    umask(0777);
    create("g777", 0666);
    make_dir("h777", 0777);
    umask(0027);
    create("i027", 0666);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int step;

static void wait_step(int s)
{
    pthread_mutex_lock(&lock);
    while (step < s)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void next_step(void)
{
    pthread_mutex_lock(&lock);
    step++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void *other_thread(void *unused)
{
    (void)unused;
    create("t1-022", 0666); /* this thread's connection says hello with 022 */
    next_step();            /* 1 */
    wait_step(2);
    create("t2-077", 0666); /* the main thread set 077: the process's umask */
    make_dir("t3-077", 0777);
    umask(027);
    next_step(); /* 3 */
    return NULL;
}

static void threads(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, other_thread, NULL) != 0)
        fail("pthread_create");
    wait_step(1);
    umask(077);
    next_step(); /* 2 */
    wait_step(3);
    create("m1-027", 0666); /* the other thread set 027 */
    pthread_join(t, NULL);
}

#define RACERS 3
#define ROUNDS 50

static pthread_barrier_t start, stop;
static int stopping;

/* Changes the umask until told to stop: more threads than CPUs, so some are preempted between
 * their umask() system call and the shim's note of it while others change it again. */
static void *racer(void *arg)
{
    unsigned seed = (unsigned)(long)arg;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&start);
        while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED))
            umask((mode_t)(rand_r(&seed) & 0777));
        pthread_barrier_wait(&stop);
    }
    return NULL;
}

/* The umask the kernel has now, without changing it. */
static mode_t kernel_umask(void)
{
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    if (got <= 0)
        fail("/proc/self/status");
    close(fd);
    text[got] = '\0';
    const char *line = strstr(text, "\nUmask:");
    if (line == NULL)
        fail("Umask");
    return (mode_t)strtol(line + 7, NULL, 8);
}

static void race(void)
{
    pthread_t ids[RACERS];
    pthread_barrier_init(&start, NULL, RACERS + 1);
    pthread_barrier_init(&stop, NULL, RACERS + 1);
    for (long i = 0; i < RACERS; i++)
        pthread_create(&ids[i], NULL, racer, (void *)(i + 1));
    int wrong = 0;
    for (int round = 0; round < ROUNDS; round++) {
        __atomic_store_n(&stopping, 0, __ATOMIC_RELAXED);
        pthread_barrier_wait(&start);
        usleep(500);
        __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&stop);
        mode_t mask = kernel_umask();
        create("raced", 0777);
        struct stat st;
        if (stat("raced", &st) != 0)
            fail("stat raced");
        if ((st.st_mode & 0777) != (0777 & ~mask)) {
            fprintf(stderr, "round %d: umask %03o, mode %03o\n", round, (unsigned)mask,
                    (unsigned)(st.st_mode & 0777));
            wrong++;
        }
        unlink("raced");
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(ids[i], NULL);
    printf("race: %d wrong\n", wrong);
}

static void wait_child(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
        fail("child");
}

static void forks(void)
{
    umask(027);
    create("p1-027", 0666);
    pid_t pid = fork();
    if (pid == 0) {
        create("c1-027", 0666); /* inherited */
        umask(077);
        create("c2-077", 0666);
        make_dir("c3-077", 0777);
        _exit(0);
    }
    wait_child(pid);
    create("p2-027", 0666); /* the child's umask was its own */
    make_dir("p3-027", 0777);
}

static void vforks(void)
{
    create("p1-022", 0666);
    pid_t pid = vfork();
    if (pid == 0) {
        umask(077);
        int fd = open("c1-077", O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            _exit(1);
        close(fd);
        execl("/bin/sh", "sh", "-c", "touch c2-077", (char *)NULL);
        _exit(1);
    }
    wait_child(pid);
    create("p2-022", 0666); /* the child shared this memory, not its umask */
    make_dir("p3-022", 0777);
}

int main(int argc, char **argv)
{
    const char *scenario = argc > 1 ? argv[1] : "";
    if (strcmp(scenario, "set") == 0)
        set();
    else if (strcmp(scenario, "between") == 0)
        between();
    else if (strcmp(scenario, "threads") == 0)
        threads();
    else if (strcmp(scenario, "race") == 0)
        race();
    else if (strcmp(scenario, "fork") == 0)
        forks();
    else if (strcmp(scenario, "vfork") == 0)
        vforks();
    else if (strcmp(scenario, "exec") == 0) {
        umask(077);
        execl("/bin/sh", "sh", "-c", "touch e1-077; mkdir e2-077", (char *)NULL);
        fail("exec");
    } else {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return 2;
    }
    return 0;
}
