"""A small CLEVR-layout dataset covering all five Table 1 categories, its cache, tiny checkpoints and a stub model.

Each image is one flat colour whose red level encodes its index, so a stub model can read the index back from
the pixels and tests can predict its answers from the question files alone. Question indices are shuffled with
respect to file order, so that writing predictions "in question order" is a real check.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from filmkit.data.dataset import CachedSplit
from filmkit.data.preprocess import preprocess
from filmkit.data.vocab import Vocab, tokenize
from filmkit.vqa import FiLMVQA, FiLMVQAConfig, save_checkpoint

IMAGE_SIZE = (48, 32)  # (W, H) of the PNGs on disk
RESOLUTION = (16, 16)  # (W, H) the tiny models read
RED_STEP = 20
COLORS = ("red", "blue", "green")

# (question, final function, family, answer as a function of the image index)
QUESTION_KINDS = (
    ("How many cubes are there?", "count", 0, lambda i: str(i % 3)),
    ("Is there a red sphere?", "exist", 1, lambda i: "yes" if i % 2 else "no"),
    ("What color is the cube?", "query_color", 2, lambda i: COLORS[i % 3]),
    ("Are the cube and the sphere the same size?", "equal_size", 3, lambda i: "yes" if i % 3 == 0 else "no"),
    ("Are there fewer cubes than spheres?", "less_than", 4, lambda i: "no" if i % 2 else "yes"),
)
SPLITS = {"train": [0, 1, 2, 3, 4, 5], "val": [11, 7, 9, 12], "test": [2, 3]}


def write_split(root: Path, split: str, image_indices: list[int], with_answers: bool = True) -> list[dict]:
    """Images and a question file for one split; returns the question records in file order."""
    records = []
    for image_index in image_indices:
        name = f"CLEVR_{split}_{image_index:06d}.png"
        pixels = np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0], 3), dtype=np.uint8)
        pixels[..., 0] = image_index * RED_STEP
        pixels[..., 1] = 90
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / split / name)
        for text, function, family, answer in QUESTION_KINDS[: 3 + image_index % 3]:
            record = {
                "question": text,
                "program": [{"function": "scene", "inputs": []}, {"function": function, "inputs": [0]}],
                "question_family_index": family,
                "image_filename": name,
                "image_index": image_index,
                "split": split,
            }
            if with_answers:
                record["answer"] = answer(image_index)
            records.append(record)
    order = list(range(len(records)))
    random.Random(len(records)).shuffle(order)
    for record, question_index in zip(records, order, strict=True):
        record["question_index"] = question_index
    (root / "questions").mkdir(parents=True, exist_ok=True)
    path = root / "questions" / f"CLEVR_{split}_questions.json"
    path.write_text(json.dumps({"info": {"split": split}, "questions": records}))
    return records


def make_dataset(root: Path) -> dict[str, list[dict]]:
    """The dataset (train, val, test without answers) in ``root``; returns each split's records."""
    return {split: write_split(root, split, indices, split != "test") for split, indices in SPLITS.items()}


def make_cache(dataset: Path, cache: Path) -> Vocab:
    preprocess(dataset, cache, resolution=RESOLUTION, workers=1)
    return Vocab.load(cache / "vocab.json")


def tiny_model(vocab: Vocab, seed: int = 0, **overrides) -> FiLMVQA:
    torch.manual_seed(seed)
    sizes = dict(
        vocab_size=len(vocab.question_tokens),
        num_answers=len(vocab.answer_tokens),
        input_kind="pixels",
        in_channels=3,
        image_width=RESOLUTION[0],
        image_height=RESOLUTION[1],
        stem_num_layers=2,
        stem_kernel_size=4,
        stem_stride=2,
        embedding_dim=8,
        rnn_hidden_dim=16,
        module_dim=8,
        num_blocks=2,
        classifier_proj_dim=16,
        classifier_fc_dims=(16,),
    )
    config = FiLMVQAConfig(**{**sizes, **overrides})
    return FiLMVQA(config).eval()


def save_tiny_checkpoint(path: Path, model: FiLMVQA, vocab: Vocab, image_kind: str = "pixels") -> Path:
    metadata = {"kind": "film", "image_kind": image_kind, "resolution": list(RESOLUTION), "step": 7}
    return save_checkpoint(path, model, vocab=vocab.to_json(), metadata=metadata)


class PixelOracle(nn.Module):
    """Answers from the image's red level and the question's length, so predictions differ question by question."""

    def __init__(self, num_answers: int):
        super().__init__()
        self.num_answers = num_answers

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        image_index = (images[:, 0, 0, 0] * 255 / RED_STEP).round().long()
        length = (questions != 0).sum(dim=1)
        choice = 4 + (image_index + length) % (self.num_answers - 4)
        return nn.functional.one_hot(choice, self.num_answers).float()


def oracle_answer(record: dict, vocab: Vocab) -> str:
    """What :class:`PixelOracle` answers for a question record, computed from the record alone."""
    real_answers = len(vocab.answer_tokens) - 4
    return vocab.answer_tokens[4 + (record["image_index"] + len(tokenize(record["question"]))) % real_answers]


def trained_tiny_model(vocab: Vocab, cache: Path, steps: int = 20) -> FiLMVQA:
    """A tiny model fitted for a few full-batch steps on the train split: its answers vary with the question.

    Twenty steps: at this learning rate, longer runs collapse onto one or two answers (40 steps did after a
    change in the GRU's float rounding), and the tests need a model whose answers differ.
    """
    model = tiny_model(vocab).train()
    split = CachedSplit(cache, "train", vocab)
    batch = split[list(range(len(split)))]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors this small train fastest on one thread, even beside busy neighbours
    try:
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(batch["images"], batch["questions"]), batch["answers"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def trained_world(root: Path) -> dict:
    """A dataset, its cache, a tiny trained model and its checkpoint under ``root``, for tests of trained models."""
    make_dataset(root / "dataset")
    vocab = make_cache(root / "dataset", root / "cache")
    model = trained_tiny_model(vocab, root / "cache")
    checkpoint = save_tiny_checkpoint(root / "run" / "best.pt", model, vocab)
    return {"root": root, "vocab": vocab, "cache": root / "cache", "model": model, "checkpoint": checkpoint}
