"""Every dataset format the project reads, from small fixtures written by hand."""

import json

import h5py
import numpy as np
import pytest
import torch
from fixtures import clevr_dataset, clevr_split, program_count, write_questions

from filmkit.data.cache import list_splits
from filmkit.data.dataset import CachedSplit
from filmkit.data.preprocess import preprocess
from filmkit.data.readers import find_splits, read_questions
from filmkit.data.vocab import Vocab, build_vocab, expand_vocab, tokenize


def test_cogent_splits(tmp_path):
    for split in ("trainA", "valA", "valB"):
        clevr_split(tmp_path / "cogent", split, [0, 1, 2])
    clevr_split(tmp_path / "cogent", "testB", [0, 1], with_answers=False)
    manifest = preprocess(tmp_path / "cogent", tmp_path / "cache", resolution=(8, 8))
    assert manifest["vocab_split"] == "trainA"
    assert list_splits(tmp_path / "cache") == ["testB", "trainA", "valA", "valB"]
    assert len(CachedSplit(tmp_path / "cache", "valB")) == len(read_questions(find_splits(tmp_path / "cogent")["valB"]))


@pytest.mark.parametrize("name", ["CLEVR-Humans-{}.json", "CLEVR_humans_{}.json"])
def test_clevr_humans_over_clevr_images(tmp_path, name):
    clevr = clevr_dataset(tmp_path / "clevr")
    humans_dir = tmp_path / "humans"
    humans_dir.mkdir()
    rows = {
        "train": [("What colour is the biggest object", "red", 3), ("How many shiny things", "2", 4)],
        "val": [("Is anything purple", "no", 13)],
    }
    for split, questions in rows.items():
        image_split = "train" if split == "train" else "val"
        entries = [
            {
                "question": text,
                "answer": answer,
                "image_index": index,
                "image_filename": f"CLEVR_{image_split}_{index:06d}.png",
            }
            for text, answer, index in questions
        ]
        (humans_dir / name.format(split)).write_text(json.dumps({"questions": entries}))
    preprocess(humans_dir, tmp_path / "cache", resolution=(8, 8), images_root=clevr)
    val = CachedSplit(tmp_path / "cache", "val")
    batch = val[[0]]
    assert round(batch["images"][0, 0, 4, 4].item() * 255) == 130  # image 13 of the CLEVR val folder
    assert batch["categories"].item() == -1 and batch["families"].item() == -1  # no programs in Humans


def test_generator_output_with_type_keys_and_bool_int_answers(tmp_path):
    clevr_split(tmp_path / "gen", "train", [0, 1])
    path = tmp_path / "gen" / "questions" / "CLEVR_train_questions.json"
    questions = json.loads(path.read_text())["questions"]
    questions[0]["answer"], questions[0]["program"] = 2, program_count("red", key="type")
    questions[1]["answer"] = True
    write_questions(path, questions)
    records = read_questions(find_splits(tmp_path / "gen")["train"])
    assert (records[0].answer, records[1].answer) == ("2", "yes")
    assert records[0].program[-1]["function"] == "count"
    assert records[0].program[1]["value_inputs"] == ["red"]


def test_tokenizer_follows_the_reference_rules():
    assert tokenize("Are there any cubes, or spheres; what size?") == [
        "<START>",
        "Are",
        "there",
        "any",
        "cubes",
        ",",
        "or",
        "spheres",
        ";",
        "what",
        "size",
        "<END>",
    ]


def test_vocab_json_is_compatible_both_ways(tmp_path):
    # A vocab.json as the reference preprocessing writes it (also with idx_to_token keys it may carry).
    reference = {
        "question_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "Is": 4, "cube": 5},
        "program_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "count": 4, "scene": 5},
        "answer_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "no": 4, "yes": 5},
    }
    (tmp_path / "vocab.json").write_text(json.dumps(reference))
    vocab = Vocab.load(tmp_path / "vocab.json")
    assert vocab.encode_question("Is cube?") == ([1, 4, 5, 2], [])
    vocab.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == reference


def test_vocab_indices_and_unknown_words():
    vocab = build_vocab([{"question": "Is the cube red?", "answer": "yes"}, {"question": "Any cube?", "answer": "no"}])
    assert list(vocab.question_token_to_idx)[:4] == ["<NULL>", "<START>", "<END>", "<UNK>"]
    assert list(vocab.question_token_to_idx)[4:] == sorted(["Is", "the", "cube", "red", "Any"])
    ids, unknown = vocab.encode_question("Is the ball red?")
    assert ids[3] == 3 and unknown == ["ball"]
    assert list(vocab.answer_token_to_idx) == ["<NULL>", "<START>", "<END>", "<UNK>", "no", "yes"]


def test_vocab_expansion_keeps_old_indices_and_honours_the_threshold():
    vocab = build_vocab([{"question": "Is there a cube?", "answer": "yes"}])
    bigger, added = expand_vocab(vocab, ["Is there a shiny block?", "Which block is shiny?", "Huh?"], min_count=2)
    assert added == ["block", "shiny"]
    for token, index in vocab.question_token_to_idx.items():
        assert bigger.question_token_to_idx[token] == index
    assert bigger.encode_question("Huh block?") == ([1, 3, len(vocab.question_token_to_idx), 2], ["Huh"])


def test_reference_cache_is_read_directly(tmp_path):
    # questions.h5 + features.h5 + vocab.json as the reference preprocessing writes them; no manifest.
    vocab = {
        "question_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "How": 4, "many": 5},
        "program_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "count": 4, "exist": 5, "scene": 6},
        "answer_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "1": 4, "yes": 5},
    }
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    with h5py.File(tmp_path / "val_questions.h5", "w") as handle:
        handle["questions"] = np.array([[1, 4, 5, 2], [1, 4, 2, 0]], dtype=np.int64)
        handle["image_idxs"] = np.array([1, 0])
        handle["orig_idxs"] = np.array([0, 1])
        handle["programs"] = np.array([[1, 4, 6, 2], [1, 5, 6, 2]])
        handle["answers"] = np.array([4, 5])
        handle["types"] = np.array([9, 3])  # the reference's own, unstable codes: ignored
    features = np.random.default_rng(0).random((2, 16, 4, 4), dtype=np.float32)
    with h5py.File(tmp_path / "val_features.h5", "w") as handle:
        handle.create_dataset("features", data=features, chunks=(1, 16, 4, 4))  # chunked: read through h5py
    split = CachedSplit(tmp_path, "val")
    batch = split[[0, 1]]
    torch.testing.assert_close(batch["images"], torch.from_numpy(features[[1, 0]]))
    assert batch["categories"].tolist() == [0, 1]  # count, exist: from the program roots
    assert batch["questions"].tolist() == [[1, 4, 5, 2], [1, 4, 2, 0]]
