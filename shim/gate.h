/* The shim's syscall gate: where the shim's own real system calls are made, so that the seccomp
 * filter of libcfake-launch (shim/launcher/launch.c) lets them through without a trap.
 *
 * The shim maps one page at LCF_GATE_ADDRESS (MAP_FIXED_NOREPLACE; a program that already uses
 * that address only costs its shim's real calls a trap each) holding a `syscall; ret` sequence.
 * The filter allows a system call whose instruction pointer (the address after the syscall
 * instruction) is LCF_GATE_ADDRESS + LCF_GATE_RETURN. Code that jumps there on purpose passes
 * the filter too: the gate is for honest programs, not a security boundary against hostile code
 * (see README, "What holds"). */
#ifndef LIBCFAKE_GATE_H
#define LIBCFAKE_GATE_H

#define LCF_GATE_ADDRESS 0x6cf000000000ULL /* a fixed, page-aligned address programs rarely use */
#define LCF_GATE_RETURN 2                  /* bytes of the syscall instruction (0f 05) */

/* gate.c: the shim's side, and the launcher's (its exec of the test's command). */

/* The system call nr with its six arguments, made from the gate when the shim mapped it (the
 * first call or the shim's constructor does, unless $LIBCFAKE_NO_GATE is set to anything but ""
 * or "0"), else from the shim's own copy of the same two instructions, which the filter traps
 * like any other code. Returns like syscall(2): the kernel's result, or -1 with errno. Not a
 * cancellation point. */
long lcf_gate_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

#endif
