"""Small datasets in the released formats, written by hand for the data tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLORS = ["red", "blue", "green", "gray"]


def write_image(path: Path, index: int, size=(48, 32)) -> None:
    """A PNG whose pixels encode its index (so tests can check which image a question got)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 4), 255, dtype=np.uint8)
    pixels[..., 0] = index * 10 % 256
    pixels[..., 1] = 7
    Image.fromarray(pixels, "RGBA").save(path)


def program_count(color: str, key: str = "function") -> list[dict]:
    return [
        {key: "scene", "inputs": [], "value_inputs": []},
        {key: "filter_color", "inputs": [0], "value_inputs": [color]},
        {key: "count", "inputs": [1], "value_inputs": []},
    ]


def program_exist(color: str) -> list[dict]:
    return [
        {"function": "scene", "inputs": [], "value_inputs": []},
        {"function": "filter_color", "inputs": [0], "value_inputs": [color]},
        {"function": "exist", "inputs": [1], "value_inputs": []},
    ]


def clevr_split(root: Path, split: str, image_indices: list[int], with_answers: bool = True) -> list[dict]:
    """Images and a question file for one split in the CLEVR v1.0 layout; returns the questions written."""
    questions = []
    for image_index in image_indices:
        filename = f"CLEVR_{split}_{image_index:06d}.png"
        write_image(root / "images" / split / filename, image_index)
        for offset, color in enumerate(COLORS[: 2 + image_index % 2]):
            exist = offset % 2 == 1
            question = {
                "question": f"Is there a {color} thing?" if exist else f"How many {color} things are there?",
                "program": program_exist(color) if exist else program_count(color),
                "question_family_index": 3 if exist else 7,
                "image_filename": filename,
                "image_index": image_index,
                "question_index": len(questions),
                "split": split,
            }
            if with_answers:
                question["answer"] = "yes" if exist and image_index % 2 else ("no" if exist else str(offset))
            questions.append(question)
    write_questions(root / "questions" / f"CLEVR_{split}_questions.json", questions)
    return questions


def write_questions(path: Path, questions: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {"split": "x"}, "questions": questions}))


def clevr_dataset(root: Path) -> Path:
    """A CLEVR v1.0-layout dataset: train (images 0..5), val (non-contiguous indices), test without answers."""
    clevr_split(root, "train", list(range(6)))
    clevr_split(root, "val", [10, 13, 17])
    clevr_split(root, "test", [2, 3], with_answers=False)
    return root


def generated_micro_dataset(root: Path) -> Path:
    """A dataset made by the real generator at its smallest (4 train / 2 val images at 32x32), with scene files."""
    from filmkit.clevr.dataset import Preset, SplitPlan, build_dataset

    micro = Preset("micro", "4/2 images at 32x32", 32, 32, (SplitPlan("train", 4), SplitPlan("val", 2)), 3, 3, 5)
    build_dataset(micro, root / "data", workers=1)
    return root / "data"
