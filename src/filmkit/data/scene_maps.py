"""Scene maps: a cache whose "features" are the true scenes, to tell what a model cannot see from what it cannot reason.

`filmkit preprocess --features scene-maps --resolution 8x8` writes, for every image, an (1 + 15, H, W) float map
instead of its pixels: in each cell, 1 where an object's centre falls, then one-hot colour (8), shape (3), material
(2) and size (2) of that object (the nearer one where two centres share a cell, as in scene supervision). The maps
come from the dataset's scene files, so they are exactly what a perfect stem would report. A FiLM model trained on
them (`filmkit speedrun --recipe scene-maps`) needs no vision: whatever it still gets wrong is the question
encoder, the FiLM generator and the FiLMed blocks, the part of the model that reasons.

Example::

    maps = scene_map_features(scenes, (8, 8))     # (len(scenes), 16, 8, 8) float32
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from filmkit.atomic import atomic_output
from filmkit.jsonfiles import read_json
from filmkit.train.scene_supervision import ATTRIBUTES, EMPTY, scene_classes, target_maps

SCENE_MAPS = "scene-maps"


def scene_map_channels() -> int:
    """Channels of a scene map: objectness, then each attribute's one-hot values (ATTRIBUTES order)."""
    return 1 + sum(scene_classes())


def scene_map_features(scenes: list[dict], map_size: tuple[int, int], source: str = "scenes") -> np.ndarray:
    """(len(scenes), channels, H, W) float32 maps of the objects whose centres fall in each cell."""
    targets = target_maps(scenes, map_size, source)
    maps = np.zeros((len(scenes), scene_map_channels(), *map_size), dtype=np.float32)
    maps[:, 0] = targets[:, 0] != EMPTY
    channel = 1
    for position, count in enumerate(scene_classes()):
        for value in range(count):
            maps[:, channel] = targets[:, position] == value
            channel += 1
    return maps


def scenes_for_images(data_dir: Path, split: str, image_paths: list[Path]) -> list[dict]:
    """The scene of each image (matched by file name) from ``<data_dir>/scenes/CLEVR_<split>_scenes.json``."""
    scene_path = data_dir / "scenes" / f"CLEVR_{split}_scenes.json"
    if not scene_path.is_file():
        raise ValueError(f"--features {SCENE_MAPS} needs the scene file {scene_path} (none there)")
    try:
        by_name = {scene["image_filename"]: scene for scene in read_json(scene_path)["scenes"]}
    except (KeyError, TypeError) as error:
        raise ValueError(
            f"{scene_path}: not a CLEVR scene file (a 'scenes' list with 'image_filename'): {error!r}"
        ) from None
    missing = [path.name for path in image_paths if path.name not in by_name]
    if missing:
        raise ValueError(f"{scene_path}: no scene for {missing[0]} ({len(missing)} images without one)")
    return [by_name[path.name] for path in image_paths]


def write_scene_maps(scenes: list[dict], out_path: Path, map_size: tuple[int, int], source: str) -> None:
    """Write the scenes' maps as the ``features`` dataset of ``out_path``, atomically."""
    with atomic_output(out_path, "w+b") as handle, h5py.File(handle, "w") as h5:
        h5.create_dataset("features", data=scene_map_features(scenes, map_size, source))  # contiguous: memmappable
        h5.attrs["channels"] = ",".join(("object", *ATTRIBUTES))
