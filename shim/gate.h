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

#endif
