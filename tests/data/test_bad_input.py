import json

import pytest
from fixtures import clevr_dataset, clevr_split, write_questions

from filmkit.data.dataset import CachedSplit, make_loader
from filmkit.data.preprocess import preprocess


def test_missing_image_file_is_named(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    (data / "images" / "val" / "CLEVR_val_000013.png").unlink()
    with pytest.raises(ValueError, match=r"CLEVR_val_questions.json: 1 question image\(s\) missing.*000013.png"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))


def test_question_about_an_image_that_does_not_exist(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    path = data / "questions" / "CLEVR_val_questions.json"
    questions = json.loads(path.read_text())["questions"]
    questions[0]["image_index"], questions[0]["image_filename"] = 99, "CLEVR_val_000099.png"
    write_questions(path, questions)
    with pytest.raises(ValueError, match="CLEVR_val_000099.png"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))


def test_malformed_json_names_file_and_position(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    (data / "questions" / "CLEVR_val_questions.json").write_text('{"questions": [\n  {"question": "Is it",}\n]}')
    with pytest.raises(ValueError, match=r"CLEVR_val_questions.json: line 2, column 24: malformed JSON"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))


def test_question_without_text_is_named(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    path = data / "questions" / "CLEVR_val_questions.json"
    questions = json.loads(path.read_text())["questions"]
    del questions[2]["question"]
    write_questions(path, questions)
    expected = r"CLEVR_val_questions.json: questions\[2\].question: expected the question text"
    with pytest.raises(ValueError, match=expected):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))


def test_unknown_answers_are_refused_in_training_and_allowed_elsewhere(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    path = data / "questions" / "CLEVR_val_questions.json"
    questions = json.loads(path.read_text())["questions"]
    questions[0]["answer"] = "maybe"
    write_questions(path, questions)
    manifest = preprocess(data, tmp_path / "cache", resolution=(8, 8))
    assert manifest["splits"]["val"]["unknown_answers"] == 1
    assert CachedSplit(tmp_path / "cache", "val")[[0]]["answers"].item() == -1

    other = clevr_dataset(tmp_path / "other")
    path = other / "questions" / "CLEVR_train_questions.json"
    questions = json.loads(path.read_text())["questions"]
    questions[0]["answer"] = "maybe"
    write_questions(path, questions)
    with pytest.raises(ValueError, match="answers missing from the answer vocabulary"):
        preprocess(
            other,
            tmp_path / "cache2",
            resolution=(8, 8),
            vocab_path=tmp_path / "cache" / "vocab.json",
            splits=["train"],
        )


def test_empty_split(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    write_questions(data / "questions" / "CLEVR_val_questions.json", [])
    with pytest.raises(ValueError, match="the split 'val' has no questions"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))


def test_fewer_images_than_one_batch(tmp_path):
    clevr_split(tmp_path / "small", "train", [0])
    preprocess(tmp_path / "small", tmp_path / "cache", resolution=(8, 8))
    loader, _ = make_loader(CachedSplit(tmp_path / "cache", "train"), batch_size=64)
    batches = list(loader)
    assert len(batches) == 1 and len(batches[0]["answers"]) == 2


def test_refuses_a_directory_that_is_not_a_cache(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="is not a filmkit cache"):
        preprocess(data, tmp_path / "notes", resolution=(8, 8))
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"


def test_resumes_after_an_interruption(tmp_path, monkeypatch):
    import filmkit.data.preprocess as module

    data = clevr_dataset(tmp_path / "clevr")
    monkeypatch.setattr(module, "BLOCK", 2)
    calls = {"n": 0}
    original = module._load_image_job

    def flaky(job):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(job)

    monkeypatch.setattr(module, "_load_image_job", flaky)
    with pytest.raises(KeyboardInterrupt):
        preprocess(data, tmp_path / "cache", resolution=(8, 8), splits=["train"])
    assert (tmp_path / "cache" / "train_images.h5.partial").exists()
    assert not (tmp_path / "cache" / "train_images.h5").exists()
    monkeypatch.setattr(module, "_load_image_job", original)
    decoded = []
    monkeypatch.setattr(module, "_load_image_job", lambda job: decoded.append(job) or original(job))
    preprocess(data, tmp_path / "cache", resolution=(8, 8), splits=["train"])
    assert len(decoded) == 6 - 4  # the 4 images written before the interruption are not decoded again
    split = CachedSplit(tmp_path / "cache", "train")
    batch = split[list(range(len(split)))]
    assert sorted({round(v * 255) for v in batch["images"][:, 0, 0, 0].tolist()}) == [0, 10, 20, 30, 40, 50]


def test_a_cache_is_never_reencoded_with_another_vocabulary(tmp_path):
    import json as _json

    data = clevr_dataset(tmp_path / "clevr")
    preprocess(data, tmp_path / "cache", resolution=(8, 8))
    other = _json.loads((tmp_path / "cache" / "vocab.json").read_text())
    other["question_token_to_idx"]["zebra"] = len(other["question_token_to_idx"])
    (tmp_path / "other.json").write_text(_json.dumps(other))
    with pytest.raises(ValueError, match="already encoded with another vocabulary"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8), vocab_path=tmp_path / "other.json")


def test_a_cache_notices_that_its_questions_changed(tmp_path, monkeypatch):
    data = clevr_dataset(tmp_path / "clevr")
    first = preprocess(data, tmp_path / "cache", resolution=(8, 8))
    with monkeypatch.context() as patched:  # unchanged: nothing to do, not even reading the question files
        patched.setattr("filmkit.data.preprocess.read_questions", lambda *args: pytest.fail("read the questions"))
        assert preprocess(data, tmp_path / "cache", resolution=(8, 8)) == first
    path = data / "questions" / "CLEVR_val_questions.json"
    questions = json.loads(path.read_text())["questions"]
    questions[0]["answer"] = "no" if questions[0]["answer"] != "no" else "yes"
    write_questions(path, questions)
    with pytest.raises(ValueError, match="split 'val' was cached from another version of .*CLEVR_val_questions.json"):
        preprocess(data, tmp_path / "cache", resolution=(8, 8))
