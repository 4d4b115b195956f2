"""filmkit.atomic: the new file reaches the disk, then its name does (the directory is flushed after the rename)."""

import os
import stat

import pytest

from filmkit.atomic import atomic_output


def record_fsyncs(monkeypatch, target):
    """Replace os.fsync by one that notes, for each call, what it flushed and what ``target`` held then."""
    calls = []
    real_fsync = os.fsync

    def fsync(descriptor):
        status = os.fstat(descriptor)
        held = target.read_text() if target.exists() else None
        calls.append({"directory": stat.S_ISDIR(status.st_mode), "inode": status.st_ino, "target_holds": held})
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_the_file_then_its_directory_are_flushed_after_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("old")
    calls = record_fsyncs(monkeypatch, target)
    with atomic_output(target, "w") as handle:
        handle.write("new")
    assert target.read_text() == "new"
    directory = os.stat(tmp_path).st_ino
    # First the temporary file's data (the target still old), then the directory, once the rename made it new.
    assert [(call["directory"], call["target_holds"]) for call in calls] == [(False, "old"), (True, "new")]
    assert calls[0]["inode"] == os.stat(target).st_ino and calls[1]["inode"] == directory


def test_a_failed_write_flushes_no_directory(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    calls = record_fsyncs(monkeypatch, target)
    with pytest.raises(RuntimeError, match="interrupted"), atomic_output(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert calls == [] and os.listdir(tmp_path) == []


def test_where_directories_cannot_be_opened_the_write_still_succeeds(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    real_open = os.open

    def open_no_directories(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(13, "Permission denied", str(path))  # what Windows answers
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_no_directories)
    with atomic_output(target, "w") as handle:
        handle.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["report.txt"]
