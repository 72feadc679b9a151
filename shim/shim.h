/* shim.h — what the parts of the preload shim share: the export marker, the lazy lookup of the
 * real libc functions, the per-thread guard, and the channel API the wrappers forward calls through
 * (implemented in channel.c). Every shim C file includes it first. */
#ifndef LIBCFAKE_SHIM_H
#define LIBCFAKE_SHIM_H

/* The wrappers define open, stat, ...: glibc's fortify inlines of those must stay out of the way. */
#undef _FORTIFY_SOURCE

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libcfake_wire.h"

/* Marks a wrapper the program's calls must reach; everything else stays hidden (-fvisibility=hidden). */
#define LCF_EXPORT __attribute__((visibility("default")))

/* Declares `libc_NAME`, a pointer to the next definition of NAME after the shim (libc's), found with
 * dlsym(RTLD_NEXT) on first use. Works before the shim's constructor ran; umockdev's libc_func. */
#define LCF_REAL(name, rettype, ...)                                                              \
    static rettype (*libc_##name)(__VA_ARGS__);                                                   \
    if (__atomic_load_n(&libc_##name, __ATOMIC_ACQUIRE) == NULL)                                  \
        __atomic_store_n(&libc_##name, (rettype(*)(__VA_ARGS__))lcf_dlsym(#name), __ATOMIC_RELEASE)

/* dlsym(RTLD_NEXT, name); a missing symbol aborts the program with one line on stderr. */
void *lcf_dlsym(const char *name);

/* Nonzero while the shim itself runs a real libc function that may call wrapped functions back
 * (getaddrinfo loading NSS modules, freopen): wrappers then go straight to the real function. */
extern __thread int lcf_in_real;

/* A call ready to forward; the wrappers fill it, lcf_forward sends it. */
struct lcf_request {
    struct lcf_call call;          /* the fixed part, zeroed first; lcf_forward fills in the header */
    const char *str1;              /* call.length1 bytes (path, unix name, node), unless -1 */
    const char *str2;              /* call.length2 bytes (new path, service), unless -1 */
    int fds[LCF_MAX_FDS];          /* the descriptors that call.fds names, in bit order */
    int nfds;
    bool readonly;                 /* may be done locally when str1 lies under a passthrough prefix */
};

/* Zeroes *req and sets the function, the symbol the program called, and both strings absent. */
void lcf_request_init(struct lcf_request *req, uint32_t function, const char *symbol);

/* Adds a descriptor under one LCF_FD_* bit; call in bit order. */
void lcf_request_fd(struct lcf_request *req, uint32_t bit, int fd);

/* Forwards req and waits for the reply. Returns LCF_ANSWER (*reply, *fd: the descriptor that came
 * with it or -1, payload: reply->count entries), LCF_PASSTHROUGH (the caller does the real call),
 * or -1 when the call failed closed: errno is EIO and one line went to stderr. errno is otherwise
 * left as it was. payload_size bounds the payload the caller accepts (0 when it expects none). */
int lcf_forward(const struct lcf_request *req, struct lcf_reply *reply, int *fd, void *payload,
                size_t payload_size);

/* The master's socket path ($LIBCFAKE_SOCKET as the program started), or NULL. */
const char *lcf_master_path(void);

/* Writes the current directory, "/" and the first len bytes of relative into buf (LCF_MAX_PATH + 1
 * bytes, NUL-terminated); returns the length, or -1 with errno (ENAMETOOLONG when it does not fit). */
int lcf_resolve_cwd(char *buf, const char *relative, size_t len);

#endif
