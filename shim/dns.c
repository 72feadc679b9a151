/* dns.c — the name-resolution wrappers: getaddrinfo and freeaddrinfo. An answered lookup builds
 * its addrinfo list in one anonymous mapping (no malloc) behind a small tagged header, so
 * freeaddrinfo can tell our lists from libc's and unmap them. One freed page is kept for the
 * next list. */

#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define GAI_MAGIC 0x6c69626366616b65ULL /* "libcfake"; stored XOR the list's address */

/* Sits right before the first addrinfo of a list the shim built. mmap returns page-aligned
 * memory, so our lists always start at this offset in a page. */
struct gai_region {
    uint64_t tag;                  /* GAI_MAGIC ^ (address of the first addrinfo) */
    uint64_t size;                 /* bytes of the mapping */
};

_Static_assert(sizeof(struct gai_region) == 16, "the header is 16 bytes");

/* ==================================================================== real functions ===== */

/* getaddrinfo loads NSS modules that call fopen & co: those go straight to libc meanwhile. */
static int real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res)
{
    LCF_REAL(getaddrinfo, int, const char *, const char *, const struct addrinfo *,
             struct addrinfo **);
    lcf_in_real++;
    int ret = libc_getaddrinfo(node, service, hints, res);
    lcf_in_real--;
    return ret;
}

static void real_freeaddrinfo(struct addrinfo *ai)
{
    LCF_REAL(freeaddrinfo, void, struct addrinfo *);
    libc_freeaddrinfo(ai);
}

/* ============================================================================ a list ===== */

/* One sockaddr per entry, whichever family it is. */
union gai_sockaddr {
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

static socklen_t fill_sockaddr(union gai_sockaddr *sa, const struct lcf_address *a)
{
    if (a->family == AF_INET) {
        sa->in.sin_family = AF_INET;
        sa->in.sin_port = htons((uint16_t)a->port);
        memcpy(&sa->in.sin_addr, a->address, sizeof sa->in.sin_addr);
        return sizeof sa->in;
    }
    sa->in6.sin6_family = AF_INET6;
    sa->in6.sin6_port = htons((uint16_t)a->port);
    sa->in6.sin6_flowinfo = htonl(a->flowinfo);
    sa->in6.sin6_scope_id = a->scope_id;
    memcpy(&sa->in6.sin6_addr, a->address, sizeof sa->in6.sin6_addr);
    return sizeof sa->in6;
}

/* A freed list's page, kept for the next list: a program resolving in a loop then maps and unmaps
 * nothing (mmap, the page fault on its fresh page and munmap cost more than the rest of the call).
 * One per process, taken and put back with atomic exchanges, so threads share it without a lock
 * and a signal handler may resolve a name in the middle of either. */
static void *spare_page;

/* A zeroed mapping of at least size bytes; *mapped: its size. NULL when none can be had. */
static void *region_map(size_t size, size_t *mapped)
{
    size_t page = (size_t)getpagesize();
    if (size <= page) {
        void *spare = __atomic_exchange_n(&spare_page, NULL, __ATOMIC_RELAXED);
        *mapped = page;
        if (spare != NULL) {
            memset(spare, 0, page);
            return spare;
        }
        size = page;
    }
    *mapped = size;
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return map == MAP_FAILED ? NULL : map;
}

/* Frees a list's mapping, keeping one page for the next list. */
static void region_unmap(struct gai_region *region)
{
    size_t size = region->size;
    region->tag = 0; /* no longer a list of ours: freeing it again goes to libc, as it would */
    void *none = NULL;
    if (size == (size_t)getpagesize() &&
        __atomic_compare_exchange_n(&spare_page, &none, (void *)region, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        return;
    munmap(region, size);
}

/* Builds the list from count checked entries and the canonical name (canon_length bytes, -1 for
 * none) that follows them. Returns 0 or EAI_MEMORY. */
static int build_list(const struct lcf_address *entries, uint32_t count, int32_t canon_length,
                      int ai_flags, struct addrinfo **res)
{
    size_t canon_size = canon_length >= 0 ? (size_t)canon_length + 1 : 0;
    size_t size = sizeof(struct gai_region) +
                  count * (sizeof(struct addrinfo) + sizeof(union gai_sockaddr)) + canon_size;
    size_t mapped;
    void *map = region_map(size, &mapped);
    if (map == NULL)
        return EAI_MEMORY;
    struct gai_region *region = map;
    struct addrinfo *ai = (struct addrinfo *)(region + 1);
    union gai_sockaddr *sa = (union gai_sockaddr *)(ai + count);
    char *canon = (char *)(sa + count);
    region->tag = GAI_MAGIC ^ (uint64_t)(uintptr_t)ai;
    region->size = mapped;
    for (uint32_t i = 0; i < count; i++) {
        ai[i].ai_flags = ai_flags;
        ai[i].ai_family = entries[i].family;
        ai[i].ai_socktype = entries[i].socktype;
        ai[i].ai_protocol = entries[i].protocol;
        ai[i].ai_addrlen = fill_sockaddr(&sa[i], &entries[i]);
        ai[i].ai_addr = (struct sockaddr *)&sa[i];
        ai[i].ai_next = i + 1 < count ? &ai[i + 1] : NULL;
    }
    if (canon_length >= 0) {
        memcpy(canon, (const char *)(entries + count), (size_t)canon_length);
        ai[0].ai_canonname = canon;
    }
    *res = ai;
    return 0;
}

/* The header of a list we built, or NULL for one of libc's. Reads the 16 bytes before ai only
 * when they lie in ai's own page, so libc's lists are never read out of bounds (and ASan, whose
 * redzone those bytes may be for a malloc'd list, is not asked to look). */
__attribute__((no_sanitize_address)) static struct gai_region *our_region(struct addrinfo *ai)
{
    if (((uintptr_t)ai & ((uintptr_t)getpagesize() - 1)) != sizeof(struct gai_region))
        return NULL;
    struct gai_region *region = (struct gai_region *)ai - 1;
    return region->tag == (GAI_MAGIC ^ (uint64_t)(uintptr_t)ai) ? region : NULL;
}

/* ======================================================================= the wrappers ===== */

/* An argument string for the call: its length, or -1 when absent. */
static int32_t string_length(const char *s)
{
    return s == NULL ? -1 : (int32_t)strnlen(s, LCF_MAX_PATH + 1);
}

LCF_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                           struct addrinfo **res)
{
    if (lcf_in_real || (node == NULL && service == NULL))
        return real_getaddrinfo(node, service, hints, res);
    int saved = errno;
    struct lcf_request req;
    lcf_request_init(&req, LCF_GETADDRINFO, "getaddrinfo");
    req.str1 = node;
    req.call.length1 = string_length(node);
    req.str2 = service;
    req.call.length2 = string_length(service);
    if (req.call.length1 > LCF_MAX_PATH) /* no name is that long */
        return EAI_NONAME;
    if (req.call.length2 > LCF_MAX_PATH)
        return EAI_SERVICE;
    if (hints != NULL) {
        req.call.flags = hints->ai_flags;
        req.call.family = hints->ai_family;
        req.call.socktype = hints->ai_socktype;
        req.call.protocol = hints->ai_protocol;
    }
    struct lcf_reply reply;
    int fd;
    struct lcf_address entries[(LCF_MAX_MESSAGE - sizeof reply) / sizeof(struct lcf_address) + 1];
    int action = lcf_forward(&req, &reply, &fd, entries, LCF_MAX_MESSAGE - sizeof reply);
    if (action == LCF_PASSTHROUGH)
        return real_getaddrinfo(node, service, hints, res);
    if (action < 0)
        return EAI_SYSTEM; /* errno is EIO */
    if (reply.result == EAI_SYSTEM)
        errno = reply.error;
    if (reply.result != 0)
        return reply.result;
    if (reply.count == 0)
        return EAI_NONAME;
    int ret = build_list(entries, reply.count, reply.text_length, req.call.flags, res);
    errno = saved;
    return ret;
}

LCF_EXPORT void freeaddrinfo(struct addrinfo *ai)
{
    if (ai == NULL)
        return;
    struct gai_region *region = our_region(ai);
    if (region != NULL)
        region_unmap(region);
    else
        real_freeaddrinfo(ai);
}
