"""A dataset too large for the disk is refused before any work, naming the preset and the sizes."""

import shutil
from collections import namedtuple

import pytest

from filmkit.clevr.dataset import build_dataset, estimated_bytes, get_preset

Usage = namedtuple("Usage", "total used free")


def test_a_preset_larger_than_the_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - 5 * 10**8, 5 * 10**8))
    with pytest.raises(OSError, match=r"preset 'clevr-cpu' writes about 1\.4 GB, but only 0\.5 GB are free"):
        build_dataset("clevr-cpu", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_estimates_grow_with_resolution_and_match_the_release_size():
    assert estimated_bytes(get_preset("clevr-full")) > 10 * estimated_bytes(get_preset("clevr-cpu"))
    assert 15e9 < estimated_bytes(get_preset("clevr-full")) < 20e9  # CLEVR v1.0's images and JSON: about 18 GB
