import errno
import os

import pytest
import torch

from conftest import tiny_batch, tiny_config
from filmkit import atomic
from filmkit.vqa import CheckpointError, FiLMVQA, load_checkpoint, save_checkpoint

VOCAB = {"question_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3}}


def test_round_trip_restores_config_weights_vocab_and_metadata(tmp_path):
    model = FiLMVQA(tiny_config(film_placement="relu-film", condition_pattern=(True, False))).eval()
    path = save_checkpoint(tmp_path / "model.pt", model, vocab=VOCAB, metadata={"step": 7}, extra={"x": [1, 2]})
    loaded = load_checkpoint(path)
    assert loaded.model.config == model.config
    assert loaded.vocab == VOCAB and loaded.metadata == {"step": 7} and loaded.extra == {"x": [1, 2]}
    assert not loaded.model.training
    images, questions, _ = tiny_batch(model.config)
    assert torch.equal(loaded.model(images, questions), model(images, questions))


def test_saving_leaves_no_temporary_files(tmp_path):
    save_checkpoint(tmp_path / "model.pt", FiLMVQA(tiny_config()))
    assert os.listdir(tmp_path) == ["model.pt"]


class _DiskFillsUp:
    """A file handle whose disk fills up once ``room`` bytes were written: the write fails midway."""

    def __init__(self, handle, room: int):
        self.handle, self.room, self.written, self.refused = handle, room, 0, 0

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        return self.handle.__exit__(*exception)

    def write(self, data) -> int:
        data = bytes(data)
        if self.written + len(data) > self.room:
            self.written += self.handle.write(data[: self.room - self.written])
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += self.handle.write(data)
        return len(data)


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", FiLMVQA(tiny_config()), metadata={"version": "old"})
    before = path.read_bytes()
    handles = []

    def open_on_a_full_disk(file, mode):
        handles.append(_DiskFillsUp(open(file, mode), room=len(before) // 2))  # noqa: SIM115 (closed by its with)
        return handles[-1]

    monkeypatch.setattr(atomic, "open", open_on_a_full_disk, raising=False)  # the atomic write's own open()
    with pytest.raises((OSError, RuntimeError)):  # torch.save reports the failed write as a RuntimeError
        save_checkpoint(path, FiLMVQA(tiny_config()), metadata={"version": "new"})
    [handle] = handles
    assert handle.refused and handle.written == len(before) // 2  # half the new file was on disk, then no more
    assert path.read_bytes() == before and load_checkpoint(path).metadata == {"version": "old"}
    assert os.listdir(tmp_path) == ["model.pt"]  # and the half-written temporary file is gone


def test_an_unstorable_entry_is_refused_before_anything_is_written(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", FiLMVQA(tiny_config()), metadata={"version": "old"})
    with pytest.raises(TypeError, match=r"metadata\['not storable'\] is a object"):
        save_checkpoint(path, FiLMVQA(tiny_config()), metadata={"not storable": object()})
    assert load_checkpoint(path).metadata == {"version": "old"}
    assert os.listdir(tmp_path) == ["model.pt"]


def test_missing_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="garbage.pt: not a filmkit checkpoint") as caught:
        load_checkpoint(garbage)
    assert "weights_only" not in str(caught.value)  # never the advice to unpickle it
    truncated = tmp_path / "truncated.pt"
    whole = save_checkpoint(tmp_path / "whole.pt", FiLMVQA(tiny_config())).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: a torch file, but not a VQA model checkpoint"):
        load_checkpoint(foreign)


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_loading_never_executes_pickled_code(tmp_path):
    marker = tmp_path / "payload-ran"
    payload = _RunsCodeWhenUnpickled()
    payload.target = str(marker)
    path = tmp_path / "malicious.pt"
    torch.save({"format": "filmkit-checkpoint", "config": {}, "state_dict": {}, "evil": payload}, path)
    with pytest.raises(CheckpointError, match="malicious.pt"):
        load_checkpoint(path)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_config_are_reported(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", FiLMVQA(tiny_config()))
    payload = torch.load(path, weights_only=True)
    payload["config"]["module_dim"] = 4
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="config and weights do not form a model"):
        load_checkpoint(path)
