"""filmkit.train.allocator: glibc keeps freed memory, unless the user set malloc up or turned this off."""

import json
import os
import platform
import subprocess
import sys

import pytest

from filmkit.train import allocator
from filmkit.train.allocator import tune_memory

# What glibc's malloc.h numbers the parameters, and what the module promises: heap up to 32 MiB, keep up to the
# largest C int of free memory. Written out here, not imported: a wrong constant in the module must show.
GLIBC_M_TRIM_THRESHOLD, GLIBC_M_MMAP_THRESHOLD = -1, -3


class RecordingLibc:
    """Stands in for glibc: records mallopt calls and answers as glibc does on success."""

    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return 1


@pytest.fixture
def clean_environment(monkeypatch):
    for name in (*allocator.USER_SETTINGS, "FILMKIT_TUNE_MEMORY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_heap_allocations_up_to_32_mib_and_freed_memory_kept(clean_environment):
    libc = RecordingLibc()
    assert tune_memory(libc) is True
    assert libc.calls == [(GLIBC_M_MMAP_THRESHOLD, 33_554_432), (GLIBC_M_TRIM_THRESHOLD, 2_147_483_647)]


@pytest.mark.parametrize("variable", ["MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"])
def test_the_users_malloc_settings_are_left_alone(clean_environment, variable):
    clean_environment.setenv(variable, "65536")
    libc = RecordingLibc()
    assert tune_memory(libc) is False and libc.calls == []


def test_filmkit_tune_memory_0_turns_it_off(clean_environment):
    clean_environment.setenv("FILMKIT_TUNE_MEMORY", "0")
    libc = RecordingLibc()
    assert tune_memory(libc) is False and libc.calls == []


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's parameters are glibc's")
def test_the_real_glibc_accepts_the_settings(clean_environment):
    # mallopt takes C ints and answers 0 for a value it refuses: both would show here.
    assert tune_memory() is True


# In a fresh process: malloc and free a 24 MiB block (below glibc's 32 MiB cap on the mmap threshold) and read
# glibc's own accounting (mallinfo2) around it.
PROBE = """
import ctypes, json
from filmkit.train.allocator import tune_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
applied = tune_memory()
before = libc.mallinfo2()
block = libc.malloc(24 * 2**20)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(json.dumps({"applied": applied, "mapped": during.hblkhd - before.hblkhd,
                  "heap": during.uordblks - before.uordblks, "kept": after.fordblks - before.fordblks}))
"""


def glibc_version() -> tuple[int, ...]:
    name, version = platform.libc_ver()
    return tuple(int(part) for part in version.split(".")[:2]) if name == "glibc" else ()


def probe_malloc(**environment) -> dict:
    clean = {key: value for key, value in os.environ.items() if key not in allocator.USER_SETTINGS}
    clean.pop("FILMKIT_TUNE_MEMORY", None)
    finished = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **environment}, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


@pytest.mark.skipif(glibc_version() < (2, 33), reason="glibc's mallinfo2 (2.33 on) reads the heap")
def test_a_24_mib_block_comes_from_the_heap_and_stays_after_free():
    tuned = probe_malloc()
    assert tuned["applied"] is True
    assert tuned["mapped"] == 0 and tuned["heap"] >= 24 * 2**20  # not a fresh mapping from the kernel
    assert tuned["kept"] >= 24 * 2**20  # freed, yet kept by the process (the heap was not trimmed)
    untuned = probe_malloc(FILMKIT_TUNE_MEMORY="0")  # glibc's defaults: the test above can fail
    assert untuned["applied"] is False and untuned["mapped"] >= 24 * 2**20 and untuned["kept"] == 0
