"""filmkit.train.allocator: glibc keeps freed memory, unless the user set malloc up or turned this off."""

import platform

import pytest

from filmkit.train import allocator
from filmkit.train.allocator import HEAP_UP_TO, KEEP_FREE_UP_TO, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, tune_memory


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
    assert libc.calls == [(M_MMAP_THRESHOLD, HEAP_UP_TO), (M_TRIM_THRESHOLD, KEEP_FREE_UP_TO)]


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
