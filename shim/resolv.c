/* resolv.c — the name-resolution wrappers beyond getaddrinfo (dns.c):
 *
 *   gethostbyname gethostbyname2 gethostbyname_r gethostbyname2_r   LCF_GETADDRINFO (AI_CANONNAME,
 *                                   the family, SOCK_STREAM: one entry per address)
 *   gethostbyaddr gethostbyaddr_r getnameinfo                       LCF_GETNAMEINFO
 *   res_query res_search res_querydomain, res_nquery res_nsearch
 *   res_nquerydomain, and their __res_* names (pre-2.34 binaries)   LCF_RES_QUERY
 *
 * A hostent has h_name = the canonical name, no aliases, and the addresses in the master's
 * order. The _r functions build it in the caller's buffer (ERANGE when it is too small); the
 * others in a per-thread buffer (an anonymous mapping, grown as needed, unmapped when the thread
 * ends), so threads never share one. No malloc, no stdio, no locks on the way.
 *
 * getnameinfo asks the master for the host part only; NI_NUMERICHOST and the service part are
 * computed by libc's own getnameinfo, which does that locally (inet_ntop and the scope name;
 * /etc/services) without asking any name server.
 *
 * res_search is sent as a query of the name as given: the model has no search list. The answer
 * is copied into the caller's buffer and cut to anslen with the TC bit set, and the return value
 * is the answer's full length, as libresolv does; a response with an error rcode or no answers
 * is -1 with h_errno, as glibc's res_query gives it. The library does not link libresolv: the
 * real res_* functions are looked up when a passthrough answer needs them, and a call fails
 * (NO_RECOVERY) if there are none. */

#include "shim.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* The payload of a reply: getaddrinfo entries and a canonical name, or a DNS message. */
#define PAYLOAD_MAX (LCF_MAX_MESSAGE - sizeof(struct lcf_reply))
/* The NI_* flags glibc's getnameinfo accepts (NI_IDN's deprecated companions included). */
#define NI_KNOWN_FLAGS 0xff

union payload {
    struct lcf_address entries[PAYLOAD_MAX / sizeof(struct lcf_address)];
    unsigned char bytes[PAYLOAD_MAX];
};

/* ==================================================================== real functions ===== */

/* The real functions for a passthrough answer: libc's own lookups run with lcf_in_real set,
 * so the files they read (hosts, services, resolv.conf) go straight to libc. */

static int real_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                            socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    LCF_REAL(getnameinfo, int, const struct sockaddr *, socklen_t, char *, socklen_t, char *,
             socklen_t, int);
    lcf_in_real++;
    int ret = libc_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    lcf_in_real--;
    return ret;
}

/* Whether the program called gethostbyname2 or gethostbyname2_r (which take a family). */
static bool is_2(const char *symbol)
{
    return symbol[sizeof "gethostbyname" - 1] == '2';
}

static struct hostent *real_gethostbyname2(const char *symbol, const char *name, int af)
{
    LCF_REAL(gethostbyname, struct hostent *, const char *);
    LCF_REAL(gethostbyname2, struct hostent *, const char *, int);
    lcf_in_real++;
    struct hostent *h = is_2(symbol) ? libc_gethostbyname2(name, af) : libc_gethostbyname(name);
    lcf_in_real--;
    return h;
}

static int real_gethostbyname2_r(const char *symbol, const char *name, int af,
                                 struct hostent *ret, char *buf, size_t buflen,
                                 struct hostent **result, int *h_errnop)
{
    LCF_REAL(gethostbyname_r, int, const char *, struct hostent *, char *, size_t,
             struct hostent **, int *);
    LCF_REAL(gethostbyname2_r, int, const char *, int, struct hostent *, char *, size_t,
             struct hostent **, int *);
    lcf_in_real++;
    int r = is_2(symbol)
                ? libc_gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop)
                : libc_gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
    lcf_in_real--;
    return r;
}

static struct hostent *real_gethostbyaddr(const void *addr, socklen_t len, int type)
{
    LCF_REAL(gethostbyaddr, struct hostent *, const void *, socklen_t, int);
    lcf_in_real++;
    struct hostent *h = libc_gethostbyaddr(addr, len, type);
    lcf_in_real--;
    return h;
}

static int real_gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                                char *buf, size_t buflen, struct hostent **result,
                                int *h_errnop)
{
    LCF_REAL(gethostbyaddr_r, int, const void *, socklen_t, int, struct hostent *, char *,
             size_t, struct hostent **, int *);
    lcf_in_real++;
    int r = libc_gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
    lcf_in_real--;
    return r;
}

/* A libresolv function, looked up on first use under `name` or its old `__name`; NULL (and the
 * call fails closed) when the process has neither. */
static void *resolver_function(void **slot, const char *name, const char *old_name)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (fn == NULL) {
        fn = dlsym(RTLD_NEXT, name);
        if (fn == NULL)
            fn = dlsym(RTLD_NEXT, old_name);
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

static void no_resolver(const char *name)
{
    static const char head[] = "libcfake: ";
    static const char tail[] = ": the master passed the call through, but this process has "
                               "no libresolv to make it; failing it with NO_RECOVERY\n";
    (void)!write(STDERR_FILENO, head, sizeof head - 1);
    (void)!write(STDERR_FILENO, name, strlen(name));
    (void)!write(STDERR_FILENO, tail, sizeof tail - 1);
}

/* ======================================================================= the hostent ===== */

/* Bytes a hostent for count addresses of len bytes and a name of name_len bytes needs in a
 * buffer starting at buf (pointers are aligned). */
static size_t hostent_size(const char *buf, uint32_t count, size_t len, size_t name_len)
{
    size_t pad = (size_t)(-(uintptr_t)buf & (sizeof(char *) - 1));
    return pad + (count + 2) * sizeof(char *) + count * len + name_len + 1;
}

/* Builds the hostent in buf: no aliases, count addresses of family af, the name. Returns 0, or
 * ERANGE when buflen is too small. */
static int hostent_fill(struct hostent *h, char *buf, size_t buflen, int af,
                        const uint8_t (*addresses)[16], uint32_t count, const char *name,
                        size_t name_len)
{
    size_t len = af == AF_INET ? 4 : 16;
    if (buf == NULL || hostent_size(buf, count, len, name_len) > buflen)
        return ERANGE;
    char **aliases = (char **)(void *)(buf + (size_t)(-(uintptr_t)buf & (sizeof(char *) - 1)));
    char **list = aliases + 1;
    char *bytes = (char *)(list + count + 1);
    char *text = bytes + count * len;
    aliases[0] = NULL;
    for (uint32_t i = 0; i < count; i++) {
        memcpy(bytes + i * len, addresses[i], len);
        list[i] = bytes + i * len;
    }
    list[count] = NULL;
    memcpy(text, name, name_len);
    text[name_len] = '\0';
    *h = (struct hostent){.h_name = text,
                          .h_aliases = aliases,
                          .h_addrtype = af,
                          .h_length = (int)len,
                          .h_addr_list = list};
    return 0;
}

/* What a forwarded host lookup found: the addresses and the name, or why not. */
struct host_answer {
    int status;                    /* 0 found; LCF_PASSTHROUGH; or an h_errno value */
    int error;                     /* errno for NETDB_INTERNAL */
    int af;
    uint32_t count;
    const uint8_t (*addresses)[16]; /* count addresses, 16 bytes apart (inet: the first 4 used) */
    const char *name;
    size_t name_len;
};

/* The h_errno for a getaddrinfo or getnameinfo error code. */
static int herrno_of(int eai)
{
    switch (eai) {
    case EAI_NONAME:
    case EAI_ADDRFAMILY: /* glibc's gethostbyname2("10.0.0.1", AF_INET6) finds no host */
        return HOST_NOT_FOUND;
    case EAI_NODATA:
        return NO_DATA;
    case EAI_AGAIN:
        return TRY_AGAIN;
    default:
        return NO_RECOVERY;
    }
}

/* The outcome of a forwarded call that did not find a host: PASSTHROUGH, NETDB_INTERNAL (the
 * call failed closed, or EAI_SYSTEM) or an h_errno. */
static void host_failed(struct host_answer *a, int action, const struct lcf_reply *reply)
{
    if (action == LCF_PASSTHROUGH) {
        a->status = LCF_PASSTHROUGH;
    } else if (action < 0) {
        a->status = NETDB_INTERNAL;
        a->error = EIO;
    } else if (reply->result == EAI_SYSTEM) {
        a->status = NETDB_INTERNAL;
        a->error = reply->error;
    } else {
        a->status = reply->result == 0 ? HOST_NOT_FOUND : herrno_of(reply->result);
    }
}

/* Looks name up for af through the master (a getaddrinfo with AI_CANONNAME), into *payload. */
static void host_by_name(struct host_answer *a, const char *symbol, const char *name, int af,
                         union payload *payload)
{
    *a = (struct host_answer){.af = af};
    size_t n = name == NULL ? 0 : strnlen(name, LCF_MAX_PATH + 1);
    if (name == NULL || n > LCF_MAX_PATH || (af != AF_INET && af != AF_INET6)) {
        a->status = HOST_NOT_FOUND;
        return;
    }
    struct lcf_request req;
    lcf_request_init(&req, LCF_GETADDRINFO, symbol);
    req.str1 = name;
    req.call.length1 = (int32_t)n;
    req.call.flags = AI_CANONNAME;
    req.call.family = af;
    req.call.socktype = SOCK_STREAM;
    struct lcf_reply reply;
    int fd;
    int action = lcf_forward(&req, &reply, &fd, payload, sizeof *payload);
    if (action != LCF_ANSWER || reply.result != 0 || reply.count == 0) {
        host_failed(a, action, &reply);
        return;
    }
    /* The addresses of the family asked for, 16 bytes each, from the start of the payload. The
     * entries are 40 bytes apart, so no write reaches an entry not yet read (nor the name that
     * follows them all). */
    for (uint32_t i = 0; i < reply.count; i++)
        if (payload->entries[i].family == af)
            memmove(payload->bytes + 16 * a->count++, payload->entries[i].address, 16);
    a->name = reply.text_length > 0 ? (const char *)(payload->entries + reply.count) : name;
    a->name_len = reply.text_length > 0 ? (size_t)reply.text_length : n;
    if (a->count == 0)
        a->status = NO_DATA;
    a->addresses = (const uint8_t (*)[16])payload->bytes;
}

/* Asks the master for the name of an address (getnameinfo's host part) into text, which holds
 * LCF_MAX_PATH + 1 bytes. Returns LCF_ANSWER with *reply (result 0: the name is text,
 * NUL-terminated; else an EAI_* code), LCF_PASSTHROUGH, or -1 (failed closed, errno EIO). */
static int name_of(const char *symbol, int af, const void *address, uint16_t port,
                   uint32_t scope_id, int flags, struct lcf_reply *reply, char *text)
{
    struct lcf_request req;
    lcf_request_init(&req, LCF_GETNAMEINFO, symbol);
    req.call.family = af;
    req.call.flags = flags;
    req.call.port = port;
    req.call.scope_id = scope_id;
    memcpy(req.call.address, address, af == AF_INET ? 4 : 16);
    int fd;
    int action = lcf_forward(&req, reply, &fd, text, LCF_MAX_PATH);
    if (action == LCF_ANSWER && reply->result == 0)
        text[reply->text_length] = '\0';
    return action;
}

/* Looks an address up through the master, as gethostbyaddr does (NI_NAMEREQD). */
static void host_by_address(struct host_answer *a, const char *symbol, const void *addr,
                            socklen_t len, int type, char *text, uint8_t (*copy)[16])
{
    *a = (struct host_answer){.af = type};
    if (addr == NULL || !((type == AF_INET && len == 4) || (type == AF_INET6 && len == 16))) {
        a->status = NETDB_INTERNAL;
        a->error = addr == NULL ? EFAULT : EAFNOSUPPORT;
        return;
    }
    struct lcf_reply reply;
    int action = name_of(symbol, type, addr, 0, 0, NI_NAMEREQD, &reply, text);
    if (action != LCF_ANSWER || reply.result != 0) {
        host_failed(a, action, &reply);
        return;
    }
    memcpy(copy[0], addr, len);
    a->count = 1;
    a->addresses = (const uint8_t (*)[16])copy;
    a->name = text;
    a->name_len = (size_t)reply.text_length;
}

/* Finishes an _r call: builds the hostent or reports why not, as glibc's _r functions do
 * (0 with *result NULL and *h_errnop for a host not found; ERANGE with NETDB_INTERNAL). Like
 * glibc's, a failure sets h_errno too: CPython's gethostbyaddr reads that one. */
static int host_r(const struct host_answer *a, struct hostent *ret, char *buf, size_t buflen,
                  struct hostent **result, int *h_errnop, int saved)
{
    *result = NULL;
    if (a->status == NETDB_INTERNAL) {
        *h_errnop = h_errno = NETDB_INTERNAL;
        errno = a->error;
        return a->error;
    }
    if (a->status != 0) {
        *h_errnop = h_errno = a->status;
        errno = saved;
        return 0;
    }
    if (hostent_fill(ret, buf, buflen, a->af, a->addresses, a->count, a->name, a->name_len) != 0) {
        *h_errnop = h_errno = NETDB_INTERNAL;
        errno = ERANGE;
        return ERANGE;
    }
    *result = ret;
    *h_errnop = 0;
    errno = saved;
    return 0;
}

/* ======================================================== the non-reentrant buffers ===== */

/* Each thread's hostent for gethostbyname and friends, in a mapping it keeps until it ends. */
static __thread struct hostent thread_host;
static __thread char *thread_buf;
static __thread size_t thread_size;
static pthread_key_t buf_key;
static bool buf_key_ready;

static void unmap_thread_buf(void *buf)
{
    if (buf != NULL && buf == thread_buf) {
        munmap(thread_buf, thread_size);
        thread_buf = NULL;
        thread_size = 0;
    }
}

__attribute__((constructor)) static void resolv_init(void)
{
    buf_key_ready = pthread_key_create(&buf_key, unmap_thread_buf) == 0;
}

/* Builds a's hostent in this thread's buffer; NULL with h_errno (and errno) when a found none. */
static struct hostent *host_static(const struct host_answer *a, int saved)
{
    if (a->status != 0) {
        h_errno = a->status;
        errno = a->status == NETDB_INTERNAL ? a->error : saved;
        return NULL;
    }
    size_t len = a->af == AF_INET ? 4 : 16;
    size_t need = hostent_size(NULL, a->count, len, a->name_len) + sizeof(char *);
    if (need > thread_size) {
        size_t page = (size_t)getpagesize();
        size_t size = (need + page - 1) / page * page;
        void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) {
            h_errno = NETDB_INTERNAL;
            errno = ENOMEM;
            return NULL;
        }
        if (thread_buf != NULL)
            munmap(thread_buf, thread_size);
        thread_buf = map;
        thread_size = size;
        if (buf_key_ready)
            pthread_setspecific(buf_key, thread_buf);
    }
    hostent_fill(&thread_host, thread_buf, thread_size, a->af, a->addresses, a->count, a->name,
                 a->name_len);
    errno = saved;
    return &thread_host;
}

/* ================================================================ gethostbyname* ===== */

static struct hostent *host_by_name_static(const char *symbol, const char *name, int af)
{
    if (lcf_in_real)
        return real_gethostbyname2(symbol, name, af);
    int saved = errno;
    union payload payload;
    struct host_answer a;
    host_by_name(&a, symbol, name, af, &payload);
    if (a.status == LCF_PASSTHROUGH)
        return real_gethostbyname2(symbol, name, af);
    return host_static(&a, saved);
}

static int host_by_name_r(const char *symbol, const char *name, int af, struct hostent *ret,
                          char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
    if (lcf_in_real)
        return real_gethostbyname2_r(symbol, name, af, ret, buf, buflen, result, h_errnop);
    int saved = errno;
    union payload payload;
    struct host_answer a;
    host_by_name(&a, symbol, name, af, &payload);
    if (a.status == LCF_PASSTHROUGH)
        return real_gethostbyname2_r(symbol, name, af, ret, buf, buflen, result, h_errnop);
    return host_r(&a, ret, buf, buflen, result, h_errnop, saved);
}

LCF_EXPORT struct hostent *gethostbyname(const char *name)
{
    return host_by_name_static("gethostbyname", name, AF_INET);
}

LCF_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    return host_by_name_static("gethostbyname2", name, af);
}

LCF_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                               struct hostent **result, int *h_errnop)
{
    return host_by_name_r("gethostbyname_r", name, AF_INET, ret, buf, buflen, result, h_errnop);
}

LCF_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                                size_t buflen, struct hostent **result, int *h_errnop)
{
    return host_by_name_r("gethostbyname2_r", name, af, ret, buf, buflen, result, h_errnop);
}

/* ================================================================ gethostbyaddr* ===== */

LCF_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
    if (lcf_in_real)
        return real_gethostbyaddr(addr, len, type);
    int saved = errno;
    char text[LCF_MAX_PATH + 1];
    uint8_t copy[1][16];
    struct host_answer a;
    host_by_address(&a, "gethostbyaddr", addr, len, type, text, copy);
    if (a.status == LCF_PASSTHROUGH)
        return real_gethostbyaddr(addr, len, type);
    return host_static(&a, saved);
}

LCF_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                               char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
    if (lcf_in_real)
        return real_gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
    int saved = errno;
    char text[LCF_MAX_PATH + 1];
    uint8_t copy[1][16];
    struct host_answer a;
    host_by_address(&a, "gethostbyaddr_r", addr, len, type, text, copy);
    if (a.status == LCF_PASSTHROUGH)
        return real_gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
    return host_r(&a, ret, buf, buflen, result, h_errnop, saved);
}

/* =================================================================== getnameinfo ===== */

LCF_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                           socklen_t hostlen, char *serv, socklen_t servlen, int flags)
{
    bool inet = sa != NULL && sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in);
    bool inet6 =
        sa != NULL && sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6);
    bool want_host = host != NULL && hostlen > 0;
    bool want_serv = serv != NULL && servlen > 0;
    /* libc answers everything that needs no name server itself: its errors, other families,
     * the numeric host and the service */
    if (lcf_in_real || !(inet || inet6) || (flags & ~NI_KNOWN_FLAGS) || !want_host ||
        (flags & NI_NUMERICHOST))
        return real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    int saved = errno;
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    struct lcf_reply reply;
    char text[LCF_MAX_PATH + 1];
    int action = inet ? name_of("getnameinfo", AF_INET, &in->sin_addr, ntohs(in->sin_port), 0,
                                flags, &reply, text)
                      : name_of("getnameinfo", AF_INET6, &in6->sin6_addr, ntohs(in6->sin6_port),
                                in6->sin6_scope_id, flags, &reply, text);
    if (action == LCF_PASSTHROUGH)
        return real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    if (action < 0)
        return EAI_SYSTEM; /* errno is EIO */
    if (reply.result == EAI_SYSTEM)
        errno = reply.error;
    if (reply.result != 0)
        return reply.result;
    if ((size_t)reply.text_length >= hostlen)
        return EAI_OVERFLOW;
    memcpy(host, text, (size_t)reply.text_length + 1);
    if (want_serv) {
        int ret = real_getnameinfo(sa, salen, NULL, 0, serv, servlen, flags);
        if (ret != 0)
            return ret;
    }
    errno = saved;
    return 0;
}

/* ====================================================================== res_query ===== */

/* Which entry point a query came through: its name, and what the real one needs. */
enum query_kind { KIND_QUERY, KIND_SEARCH, KIND_QUERYDOMAIN };

struct query {
    const char *symbol;            /* the entry point the program called */
    enum query_kind kind;
    res_state statp;               /* res_n*: the state whose res_h_errno is set too, else NULL */
    const char *name;
    const char *domain;            /* querydomain */
    int class, type;
    unsigned char *answer;
    int anslen;
};

static void set_herrno(const struct query *q, int value)
{
    h_errno = value;
    if (q->statp != NULL)
        q->statp->res_h_errno = value;
}

/* The real function for a passthrough answer, or -1 with NO_RECOVERY if the process has none. */
static int query_real(const struct query *q)
{
    static void *fns[2][3];
    static const char *const names[2][3][2] = {
        {{"res_query", "__res_query"}, {"res_search", "__res_search"},
         {"res_querydomain", "__res_querydomain"}},
        {{"res_nquery", "__res_nquery"}, {"res_nsearch", "__res_nsearch"},
         {"res_nquerydomain", "__res_nquerydomain"}},
    };
    int n = q->statp != NULL;
    const char *const *name = names[n][q->kind];
    void *fn = resolver_function(&fns[n][q->kind], name[0], name[1]);
    if (fn == NULL) {
        no_resolver(q->symbol);
        set_herrno(q, NO_RECOVERY);
        return -1;
    }
    typedef int query_fn(const char *, int, int, unsigned char *, int);
    typedef int querydomain_fn(const char *, const char *, int, int, unsigned char *, int);
    typedef int nquery_fn(res_state, const char *, int, int, unsigned char *, int);
    typedef int nquerydomain_fn(res_state, const char *, const char *, int, int, unsigned char *,
                                int);
    lcf_in_real++;
    int ret;
    if (q->statp == NULL && q->kind == KIND_QUERYDOMAIN)
        ret = ((querydomain_fn *)fn)(q->name, q->domain, q->class, q->type, q->answer, q->anslen);
    else if (q->statp == NULL)
        ret = ((query_fn *)fn)(q->name, q->class, q->type, q->answer, q->anslen);
    else if (q->kind == KIND_QUERYDOMAIN)
        ret = ((nquerydomain_fn *)fn)(q->statp, q->name, q->domain, q->class, q->type, q->answer,
                                      q->anslen);
    else
        ret = ((nquery_fn *)fn)(q->statp, q->name, q->class, q->type, q->answer, q->anslen);
    lcf_in_real--;
    return ret;
}

/* The name a query asks about, in buf (NS_MAXDNAME bytes): querydomain joins name and domain
 * as glibc does. Returns its length, or -1 when it is too long. */
static int query_name(const struct query *q, char *buf)
{
    size_t n = strnlen(q->name, NS_MAXDNAME);
    if (q->kind != KIND_QUERYDOMAIN || q->domain == NULL) {
        if (q->kind == KIND_QUERYDOMAIN && n > 0 && q->name[n - 1] == '.')
            n--; /* querydomain(name., NULL): the name without its final dot */
        if (n + 1 >= NS_MAXDNAME)
            return -1;
        memcpy(buf, q->name, n);
        return (int)n;
    }
    size_t d = strnlen(q->domain, NS_MAXDNAME);
    if (n + d + 1 >= NS_MAXDNAME)
        return -1;
    memcpy(buf, q->name, n);
    buf[n] = '.';
    memcpy(buf + n + 1, q->domain, d);
    return (int)(n + 1 + d);
}

/* glibc's res_query: an answer whose rcode is not NOERROR, or that has no records, is an
 * h_errno; 0 for an answer with records. */
static int answer_herrno(const unsigned char *msg, size_t n)
{
    if (n < NS_HFIXEDSZ)
        return NO_RECOVERY;
    int rcode = msg[3] & 0x0f;
    unsigned ancount = (unsigned)msg[6] << 8 | msg[7];
    if (rcode == ns_r_noerror && ancount > 0)
        return 0;
    switch (rcode) {
    case ns_r_nxdomain:
        return HOST_NOT_FOUND;
    case ns_r_servfail:
        return TRY_AGAIN;
    case ns_r_noerror:
        return NO_DATA;
    default:
        return NO_RECOVERY;
    }
}

static int query_forward(const struct query *q)
{
    if (lcf_in_real)
        return query_real(q);
    int saved = errno;
    if (q->name == NULL) {
        set_herrno(q, NO_RECOVERY);
        return -1;
    }
    if (q->answer == NULL || q->anslen < NS_HFIXEDSZ) { /* as glibc's res_send refuses it */
        set_herrno(q, TRY_AGAIN);
        errno = EINVAL;
        return -1;
    }
    char name[NS_MAXDNAME];
    int n = query_name(q, name);
    if (n < 0) {
        set_herrno(q, NO_RECOVERY);
        return -1;
    }
    struct lcf_request req;
    lcf_request_init(&req, LCF_RES_QUERY, q->symbol);
    req.str1 = name;
    req.call.length1 = n;
    req.call.mode = (uint32_t)q->class;
    req.call.flags = q->type;
    struct lcf_reply reply;
    int fd;
    union payload payload;
    int action = lcf_forward(&req, &reply, &fd, &payload, sizeof payload);
    if (action == LCF_PASSTHROUGH)
        return query_real(q);
    if (action < 0) { /* errno is EIO */
        set_herrno(q, NETDB_INTERNAL);
        return -1;
    }
    if (reply.result < 0) {
        set_herrno(q, reply.error);
        errno = saved;
        return -1;
    }
    size_t len = (size_t)reply.result;
    size_t room = (size_t)q->anslen;
    memcpy(q->answer, payload.bytes, len < room ? len : room);
    if (len > room)
        q->answer[2] |= 0x02; /* TC: the caller's buffer holds only the start */
    int herr = answer_herrno(payload.bytes, len);
    errno = saved;
    if (herr != 0) {
        set_herrno(q, herr);
        return -1;
    }
    return reply.result;
}

/* Each entry point under its name and its pre-2.34 __res_ name. */
#define QUERY_WRAPPERS(name, kind)                                                                \
    LCF_EXPORT int name(const char *dname, int class, int type, unsigned char *answer,           \
                        int anslen)                                                               \
    {                                                                                             \
        struct query q = {#name, kind, NULL, dname, NULL, class, type, answer, anslen};          \
        return query_forward(&q);                                                                 \
    }                                                                                             \
    LCF_EXPORT int __##name(const char *dname, int class, int type, unsigned char *answer,       \
                            int anslen)                                                           \
    {                                                                                             \
        struct query q = {"__" #name, kind, NULL, dname, NULL, class, type, answer, anslen};     \
        return query_forward(&q);                                                                 \
    }

#define NQUERY_WRAPPERS(name, kind)                                                               \
    LCF_EXPORT int name(res_state statp, const char *dname, int class, int type,                \
                        unsigned char *answer, int anslen)                                        \
    {                                                                                             \
        struct query q = {#name, kind, statp, dname, NULL, class, type, answer, anslen};         \
        return query_forward(&q);                                                                 \
    }                                                                                             \
    LCF_EXPORT int __##name(res_state statp, const char *dname, int class, int type,            \
                            unsigned char *answer, int anslen)                                    \
    {                                                                                             \
        struct query q = {"__" #name, kind, statp, dname, NULL, class, type, answer, anslen};    \
        return query_forward(&q);                                                                 \
    }

int __res_query(const char *, int, int, unsigned char *, int);
int __res_search(const char *, int, int, unsigned char *, int);
int __res_nquery(res_state, const char *, int, int, unsigned char *, int);
int __res_nsearch(res_state, const char *, int, int, unsigned char *, int);
int __res_querydomain(const char *, const char *, int, int, unsigned char *, int);
int __res_nquerydomain(res_state, const char *, const char *, int, int, unsigned char *, int);

QUERY_WRAPPERS(res_query, KIND_QUERY)
QUERY_WRAPPERS(res_search, KIND_SEARCH)
NQUERY_WRAPPERS(res_nquery, KIND_QUERY)
NQUERY_WRAPPERS(res_nsearch, KIND_SEARCH)

#define QUERYDOMAIN_WRAPPERS(name)                                                                \
    LCF_EXPORT int name(const char *dname, const char *domain, int class, int type,               \
                        unsigned char *answer, int anslen)                                        \
    {                                                                                             \
        struct query q = {#name, KIND_QUERYDOMAIN, NULL, dname, domain, class, type, answer,     \
                          anslen};                                                                \
        return query_forward(&q);                                                                 \
    }                                                                                             \
    LCF_EXPORT int __##name(const char *dname, const char *domain, int class, int type,           \
                            unsigned char *answer, int anslen)                                    \
    {                                                                                             \
        struct query q = {"__" #name, KIND_QUERYDOMAIN, NULL, dname, domain, class, type, answer, \
                          anslen};                                                                \
        return query_forward(&q);                                                                 \
    }

#define NQUERYDOMAIN_WRAPPERS(name)                                                               \
    LCF_EXPORT int name(res_state statp, const char *dname, const char *domain, int class,        \
                        int type, unsigned char *answer, int anslen)                              \
    {                                                                                             \
        struct query q = {#name, KIND_QUERYDOMAIN, statp, dname, domain, class, type, answer,    \
                          anslen};                                                                \
        return query_forward(&q);                                                                 \
    }                                                                                             \
    LCF_EXPORT int __##name(res_state statp, const char *dname, const char *domain, int class,    \
                            int type, unsigned char *answer, int anslen)                          \
    {                                                                                             \
        struct query q = {"__" #name, KIND_QUERYDOMAIN, statp, dname, domain, class, type,      \
                          answer, anslen};                                                        \
        return query_forward(&q);                                                                 \
    }

QUERYDOMAIN_WRAPPERS(res_querydomain)
NQUERYDOMAIN_WRAPPERS(res_nquerydomain)
