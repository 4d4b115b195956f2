"""Scene supervision: the stem also learns to name the object centred in each cell of its feature map.

CLEVR's training split ships a scene graph per image (every object's colour, shape, material, size and where it
lies in the image); filmkit's generated data writes the same files. With ``TrainConfig.scene_loss_weight`` above 0
the model gets a 1x1 convolution on the stem's maps (``FiLMVQAConfig.scene_classes``) that predicts, in every
cell, whether an object's centre falls there and, where one does, its four attributes. The loss is added to the
answer loss; the head is not used to answer. This is a departure from the paper, whose model learns from
question-answer pairs alone: it tests whether FiLM's plateau is the visual grounding (material and shape at the
question-only guess after a million questions) by teaching the unconditioned stem to see objects directly.

Targets are computed once per split from the scene file (``<dataset>/scenes/CLEVR_<split>_scenes.json``) and the
cache's image order: an int8 array (images, 4, H, W) with the attribute's index, or EMPTY where no object is
centred. Where two centres fall in one cell the one nearer the camera (smaller depth) names it: it is the visible one.

Example::

    targets = split_targets(cache_dir, "train", map_size=(8, 8))     # (images, 4, 8, 8) int8
    loss, correct, found = scene_loss(scene_logits, torch.from_numpy(targets[:2]).long())
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from filmkit.clevr.properties import load_properties
from filmkit.data.cache import questions_file, read_manifest
from filmkit.data.dataset import to_unit_range

ATTRIBUTES = ("color", "shape", "material", "size")
EMPTY = -1
# CLEVR's scene files give pixel positions in units of its 480x320 renders, whatever size the images are used at.
SOURCE_WIDTH, SOURCE_HEIGHT = 480, 320


@functools.cache  # read once per process: scene_loss asks at every training step
def attribute_names() -> dict[str, tuple[str, ...]]:
    """Each attribute's values in a fixed order (sorted names of the CLEVR world): the head's class indices."""
    properties = load_properties()
    groups = {"color": properties.colors, "shape": properties.shapes, "material": properties.materials}
    return {**{name: tuple(sorted(values)) for name, values in groups.items()}, "size": tuple(sorted(properties.sizes))}


def scene_classes() -> tuple[int, ...]:
    """The number of values of each attribute, in ATTRIBUTES order: what the model's scene head predicts."""
    names = attribute_names()
    return tuple(len(names[attribute]) for attribute in ATTRIBUTES)


def target_maps(scenes: list[dict], map_size: tuple[int, int], source: str = "scenes") -> np.ndarray:
    """(len(scenes), 4, H, W) int8 attribute indices of the object centred in each cell; EMPTY elsewhere."""
    height, width = map_size
    names = attribute_names()
    index_of = {attribute: {name: i for i, name in enumerate(names[attribute])} for attribute in ATTRIBUTES}
    maps = np.full((len(scenes), len(ATTRIBUTES), height, width), EMPTY, dtype=np.int8)
    for row, scene in enumerate(scenes):
        nearest = np.full((height, width), np.inf)
        for number, obj in enumerate(scene.get("objects", [])):
            where = f"{source}: scene {scene.get('image_index', row)} object {number}"
            try:
                x, y, depth = obj["pixel_coords"]
                values = [index_of[attribute][obj[attribute]] for attribute in ATTRIBUTES]
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{where}: cannot read its pixel_coords and attributes ({error!r})") from None
            column = min(width - 1, max(0, int(x * width / SOURCE_WIDTH)))
            line = min(height - 1, max(0, int(y * height / SOURCE_HEIGHT)))
            if depth < nearest[line, column]:
                nearest[line, column] = depth
                maps[row, :, line, column] = values
    return maps


def scene_file(cache_dir: str | Path, split: str) -> Path:
    """Where the scene graphs of a cached split are: in the dataset folder the cache was made from."""
    source = Path((read_manifest(cache_dir) or {}).get("source", cache_dir))
    return source / "scenes" / f"CLEVR_{split}_scenes.json"


def split_scenes(cache_dir: str | Path, split: str, why: str = "scene supervision") -> list[dict]:
    """The scene of every image row of a cached split, read from the scene file of the dataset it was cached from."""
    cache_dir = Path(cache_dir)
    scene_path = scene_file(cache_dir, split)
    if not scene_path.is_file():
        raise ValueError(f"{why} needs {scene_path} (the scene graphs of split {split!r})")
    with h5py.File(questions_file(cache_dir, split), "r") as handle:
        if "image_index" not in handle:
            raise ValueError(f"{questions_file(cache_dir, split)}: no 'image_index' dataset to match scenes by")
        image_index, rows = handle["image_index"][()], handle["image_idxs"][()]
    image_of_row = np.zeros(int(rows.max()) + 1, dtype=np.int64)
    image_of_row[rows] = image_index
    scenes = {scene["image_index"]: scene for scene in json.loads(scene_path.read_text())["scenes"]}
    missing = [int(index) for index in image_of_row if int(index) not in scenes]
    if missing:
        raise ValueError(f"{scene_path}: no scene for image_index {missing[0]} ({len(missing)} images without one)")
    return [scenes[int(index)] for index in image_of_row]


def split_targets(cache_dir: str | Path, split: str, map_size: tuple[int, int]) -> np.ndarray:
    """Targets for every image row of a cached split (`split_scenes`, then `target_maps`)."""
    why = "scene supervision (set scene_loss_weight=0 to train without it)"
    return target_maps(split_scenes(cache_dir, split, why), map_size, source=str(scene_file(cache_dir, split)))


def scene_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Objectness (binary, every cell) plus each attribute's cross-entropy (cells with an object centre).

    ``logits`` is (N, 1 + sum(classes), H, W), the head's output; ``targets`` (N, 4, H, W) long. Also returns the
    cells predicted right per attribute (4,) and the cells with an object centre, as tensors (no host sync).
    """
    logits = logits.float()
    occupied = targets[:, 0] != EMPTY
    loss = F.binary_cross_entropy_with_logits(logits[:, 0], occupied.float())
    attribute_logits = torch.split(logits[:, 1:], scene_classes(), dim=1)
    correct = []
    for position, scores in enumerate(attribute_logits):
        target = targets[:, position]
        # Mean over occupied cells; a batch without any object centre adds nothing (and no NaN).
        per_cell = F.cross_entropy(scores, target.clamp(min=0), reduction="none")
        loss = loss + (per_cell * occupied).sum() / occupied.sum().clamp(min=1)
        correct.append(((scores.argmax(dim=1) == target) & occupied).sum())
    return loss, torch.stack(correct), occupied.sum()


@torch.no_grad()
def scene_accuracy(model, split, targets: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Percent of object centres whose attribute the scene head names right, on every image of ``split``.

    It says what the stem can read at this resolution: a shape or material the head cannot name is one the
    blocks cannot filter on either. ``objectness`` is the percent of cells whose object-or-empty call is right.
    """
    model.eval()
    device = next(model.parameters()).device
    first_question = {}
    for position, row in enumerate(split.arrays.image_rows.tolist()):
        first_question.setdefault(row, position)
    rows = sorted(first_question)
    correct, found, cells, objectness = torch.zeros(len(ATTRIBUTES)), 0, 0, 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        batch = split[[first_question[row] for row in chunk]]
        images = batch["images"].to(device)
        images = to_unit_range(images) if images.dtype == torch.uint8 else images
        _, scene_logits = model(images, batch["questions"].to(device), with_scene=True)
        target = torch.from_numpy(targets[chunk]).long().to(device)
        _, right, count = scene_loss(scene_logits, target)
        correct += right.cpu()
        found += int(count)
        occupied = target[:, 0] != EMPTY
        objectness += int(((scene_logits[:, 0] > 0) == occupied).sum())
        cells += occupied.numel()
    by_attribute = {
        name: round(100 * float(value) / max(found, 1), 2) for name, value in zip(ATTRIBUTES, correct, strict=True)
    }
    return {**by_attribute, "objectness": round(100 * objectness / max(cells, 1), 2)}
