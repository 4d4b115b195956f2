"""Denormals are flushed to zero in the filmkit command's process and in the threads torch starts after."""

import subprocess
import sys

PROBE = """
import torch
from filmkit.cli.app import prepare_process
prepare_process("train")  # what the filmkit command runs before a command that computes with torch
tiny = torch.full((4096, 64), 1e-39)  # denormal in fp32
print(int((tiny * 1.0).count_nonzero()), int((tiny @ torch.ones(64, 64)).count_nonzero()))
"""


def test_the_command_flushes_denormals_in_every_thread():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]  # without the flush: 262144 denormal products survive


def test_without_the_flush_denormals_survive():
    probe = PROBE.replace('prepare_process("train")', "pass")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] != "0"  # the test above can fail: the flag is what zeroes them
