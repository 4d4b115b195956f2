"""How this process gets memory on Linux: glibc keeps freed memory for reuse instead of handing it back.

Why: a training step frees and allocates buffers of the same sizes at every step. With glibc's defaults, buffers
above a (dynamic) threshold are mapped fresh from the kernel and handed back when freed, so every step pays page
faults and the kernel's zeroing of every page: a benchmark of the `cpu` preset spent 1.3 s of its 10 s in the
kernel. Here allocations up to 32 MiB (glibc's largest threshold) come from the heap, and up to 2 GiB of free heap
stays with the process (``mallopt``).

Measured on the project's 2-core machine (docs/performance.md, "Memory allocation"): benchmarked training steps
of the `cpu` preset 1.16-1.17x as fast, of `paper` in fp32 1.08x, of `paper` in bf16 and `paper-pixels`
0.96-0.98x (about their run-to-run spread), with peak memory up to 6% higher. A real `filmkit train` run of the
`cpu` preset took 3-5% less wall time: beside its data loading, page faults weigh less. Settings the user made
(``MALLOC_*`` variables, ``GLIBC_TUNABLES``) are left alone, ``FILMKIT_TUNE_MEMORY=0`` turns this off, and other
systems are unchanged.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
HEAP_UP_TO = 32 * 1024 * 1024  # glibc's largest M_MMAP_THRESHOLD on 64-bit systems
KEEP_FREE_UP_TO = 2**31 - 1  # the largest value mallopt takes (a C int): about 2 GiB
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES")


def _glibc():
    """The C library if it is glibc (the only one whose mallopt takes these parameters), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them; no library search at start-up
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def tune_memory(libc=None) -> bool:
    """Keep freed memory in this process, unless the user set glibc's malloc up; True if it was applied.

    The ``filmkit`` command calls it on start; a script that trains through the Python API can call it first.
    """
    if os.environ.get("FILMKIT_TUNE_MEMORY") == "0" or any(name in os.environ for name in USER_SETTINGS):
        return False
    libc = libc if libc is not None else _glibc()
    if libc is None:
        return False
    # mallopt answers 1 on success
    return libc.mallopt(M_MMAP_THRESHOLD, HEAP_UP_TO) == 1 and libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_UP_TO) == 1
