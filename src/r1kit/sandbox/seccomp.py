"""A small seccomp filter for sandboxed code: refuse the syscalls that only widen the kernel's attack surface.

bwrap loads it (`--seccomp FD`) just before it starts the launcher. Refused with EPERM: new user namespaces
(`unshare`/`clone` with CLONE_NEWUSER; when the caller is root there is no user namespace to disable them
in, so the sandbox user could otherwise make one and gain capabilities inside it), `setns`, `ptrace`,
io_uring, `bpf`, `perf_event_open`, `userfaultfd` and the kernel keyring. `clone3` gets ENOSYS, which makes
glibc fall back to `clone`, whose flags a classic BPF filter can read (clone3's are behind a pointer).
Syscalls of another ABI (x32, i386 on x86_64) are refused, so the table cannot be bypassed.

The program is classic BPF over `struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}`, written
out by hand: no libseccomp needed. Only x86_64 and aarch64 are covered; elsewhere there is no filter.
"""

from __future__ import annotations

import errno
import platform
import struct

# Syscall numbers (asm/unistd.h) and the AUDIT_ARCH value seccomp reports, per machine.
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "unshare": 272, "clone": 56, "clone3": 435, "setns": 308, "ptrace": 101, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
    }),
    "aarch64": (0xC00000B7, {
        "unshare": 97, "clone": 220, "clone3": 435, "setns": 268, "ptrace": 117, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
    }),
}
_X32_BIT = 0x40000000
_CLONE_NEWUSER = 0x10000000

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = the 32-bit word at offset k of seccomp_data
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K: jump if A & k
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # args[0]'s low word on a little-endian machine


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter as bwrap reads it (an array of `struct sock_filter {u16 code; u8 jt, jf; u32 k;}`), or
    None on a machine without a syscall table here."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        return None
    arch, nr = _ARCHES[machine]
    refused = ["setns", "ptrace", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf",
               "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key"]
    eperm, enosys = _ERRNO | errno.EPERM, _ERRNO | errno.ENOSYS
    # Each line: (code, jump if true, jump if false, k); jumps count the instructions skipped.
    prog = [
        (_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, eperm),  # another ABI
        (_LD_W_ABS, 0, 0, _OFFSET_NR),
        (_JGE_K, 0, 1, _X32_BIT),
        (_RET_K, 0, 0, eperm),  # x32 numbering
        (_JEQ_K, 0, 1, nr["clone3"]),
        (_RET_K, 0, 0, enosys),
        (_JEQ_K, 1, 0, nr["unshare"]),
        (_JEQ_K, 0, 3, nr["clone"]),
        (_LD_W_ABS, 0, 0, _OFFSET_ARG0),  # unshare or clone: refuse when the flags ask for a user namespace
        (_JSET_K, 0, 1, _CLONE_NEWUSER),
        (_RET_K, 0, 0, eperm),
        (_LD_W_ABS, 0, 0, _OFFSET_NR),
    ]
    for i, name in enumerate(refused):
        prog.append((_JEQ_K, len(refused) - i, 0, nr[name]))  # to the final EPERM
    prog += [(_RET_K, 0, 0, _ALLOW), (_RET_K, 0, 0, eperm)]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)
