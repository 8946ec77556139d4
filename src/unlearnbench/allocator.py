"""glibc malloc settings for the jobs (docs/performance.md#allocator).

A CPU job allocates and frees tensors of several megabytes at every step (ResNet-18's
gradients, FF's squared gradients). glibc serves blocks over its mmap threshold (128 KB
at first, raised by itself up to 32 MB) with mmap and returns them to the system when
freed, and returns the top of its heap past its trim threshold; the next allocation
then faults the same pages in again, zero-filled by the kernel. With the threshold at
its 32 MB ceiling and a 1 GB trim threshold such blocks are reused from the heap:
ResNet-18's FF Fisher pass takes half the time, and no number changes.

glibc reads these tunables from GLIBC_TUNABLES when a process starts, so the workflow
sets them in its own environment (workflow/rules/common.smk), which every job process and
the warm-start server inherit. Other C libraries ignore the variable."""

from __future__ import annotations

VARIABLE = "GLIBC_TUNABLES"

TUNABLES = {
    "glibc.malloc.mmap_threshold": str(32 * 1024 * 1024),  # glibc's ceiling on 64-bit
    "glibc.malloc.trim_threshold": str(1024 * 1024 * 1024),
}


def tunables(current: str | None) -> str:
    """GLIBC_TUNABLES with the job settings added: `current` (the user's, colon-separated
    name=value pairs) is kept, and its own value wins for a tunable it already sets."""
    pairs = [p for p in (current or "").split(":") if p]
    present = {p.split("=", 1)[0] for p in pairs}
    return ":".join(pairs + [f"{name}={value}" for name, value in TUNABLES.items() if name not in present])
