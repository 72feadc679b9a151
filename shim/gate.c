/* gate.c — the syscall gate (see gate.h): one page at LCF_GATE_ADDRESS holding `syscall; ret`,
 * which the seccomp filter of libcfake-launch lets through, and lcf_gate_syscall, which enters it.
 *
 * lcf_gate_raw is a plain function (the System V calling convention puts nr and the arguments in
 * rdi, rsi, rdx, rcx, r8, r9 and on the stack); it moves them to the registers of a system call
 * and jumps to the gate, whose `ret` returns straight to lcf_gate_raw's caller. Being called, not
 * inlined, it leaves the caller's red zone alone and clobbers only what a call may (the syscall
 * instruction takes rcx and r11). Until the gate is mapped, or when it cannot be, the jump goes to
 * lcf_gate_local, the same two instructions in the shim's text: the same call, but one the filter
 * traps (correct, only slower). Nothing is printed either way. */

#include "gate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

long lcf_gate_raw(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
    __attribute__((visibility("hidden")));
void lcf_gate_local(void) __attribute__((visibility("hidden")));

/* Where lcf_gate_raw jumps: lcf_gate_local, or the gate once mapped. */
__attribute__((visibility("hidden"))) void *lcf_gate_entry = (void *)lcf_gate_local;

__asm__(".pushsection .text\n"
        ".globl lcf_gate_raw\n"
        ".hidden lcf_gate_raw\n"
        ".type lcf_gate_raw, @function\n"
        "lcf_gate_raw:\n"
        ".cfi_startproc\n"
        "    mov %rdi, %rax\n"           /* the system call's number */
        "    mov %rsi, %rdi\n"
        "    mov %rdx, %rsi\n"
        "    mov %rcx, %rdx\n"
        "    mov %r8, %r10\n"
        "    mov %r9, %r8\n"
        "    mov 8(%rsp), %r9\n"         /* a6, the first argument on the stack */
        "    jmp *lcf_gate_entry(%rip)\n"
        ".cfi_endproc\n"
        ".size lcf_gate_raw, .-lcf_gate_raw\n"
        ".globl lcf_gate_local\n"
        ".hidden lcf_gate_local\n"
        ".type lcf_gate_local, @function\n"
        "lcf_gate_local:\n"
        ".cfi_startproc\n"
        "    syscall\n"
        "    ret\n"
        ".cfi_endproc\n"
        ".size lcf_gate_local, .-lcf_gate_local\n"
        ".popsection\n");

/* Whether the gate was tried: the first real call maps it, which may come before the shim's
 * constructors run (a library initialized before the shim calling a wrapped function from its
 * own constructor, as ls's libselinux does). */
enum { GATE_UNTRIED, GATE_TRYING, GATE_TRIED };
static int gate_state;

/* Maps the gate, once per process image (fork children inherit it; an exec's new image maps its
 * own); until it is mapped, a call that overtakes the mapping thread goes through lcf_gate_local.
 * A program that holds the address already, a kernel without MAP_FIXED_NOREPLACE (which then
 * places the page elsewhere), or a policy that refuses executable anonymous memory leave the
 * shim on lcf_gate_local. Async-signal-safe. */
static void gate_open(void)
{
    static const unsigned char code[] = {0x0f, 0x05, 0xc3}; /* syscall; ret */
    _Static_assert(LCF_GATE_RETURN == 2, "the syscall instruction opens the gate");
    int expected = GATE_UNTRIED;
    if (!__atomic_compare_exchange_n(&gate_state, &expected, GATE_TRYING, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return;
    int saved = errno;
    const char *off = getenv("LIBCFAKE_NO_GATE");
    size_t size = (size_t)getpagesize();
    void *want = (void *)LCF_GATE_ADDRESS;
    void *page = MAP_FAILED;
    if (off == NULL || off[0] == '\0' || strcmp(off, "0") == 0)
        page = mmap(want, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page != MAP_FAILED && page != want) {
        munmap(page, size);
        page = MAP_FAILED;
    }
    if (page != MAP_FAILED) {
        memcpy(page, code, sizeof code);
        if (mprotect(page, size, PROT_READ | PROT_EXEC) == 0)
            __atomic_store_n(&lcf_gate_entry, page, __ATOMIC_RELEASE);
        else
            munmap(page, size);
    }
    __atomic_store_n(&gate_state, GATE_TRIED, __ATOMIC_RELEASE);
    errno = saved;
}

long lcf_gate_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    if (__builtin_expect(__atomic_load_n(&gate_state, __ATOMIC_ACQUIRE) == GATE_UNTRIED, 0))
        gate_open();
    long ret = lcf_gate_raw(nr, a1, a2, a3, a4, a5, a6);
    if ((unsigned long)ret > -4096UL) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

/* Before the shim's other constructors, if no call came earlier. */
__attribute__((constructor(101))) static void gate_init(void)
{
    gate_open();
}
