"""The images `filmkit serve` can show: a dataset's own, fresh ones from the generator, and uploads kept in memory.

Every image has an id the page passes back: ``data-<position>`` (the position in the dataset split's image list),
``seed-<n>`` (scene ``n`` drawn by the generator), ``upload-<hex>``. Images are held as uint8 (H, W, 3) arrays
at the size the model reads, made exactly as `filmkit.train.ask.prepare_image` makes them; uploads are decoded in
memory and never written to disk, and only the last MAX_UPLOADS are kept.

Example::

    store = SceneStore((64, 64), dataset="data/clevr-cpu")
    scene_id = store.generate(seed=7)
    store.image(scene_id).shape        # (64, 64, 3)
    store.questions(store.dataset_ids()[0])[:1]   # [{'question': ..., 'answer': ..., 'family': ...}]
"""

from __future__ import annotations

import io
import secrets
import warnings
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from filmkit.clevr.generate import image_rng
from filmkit.clevr.properties import load_properties
from filmkit.clevr.render import render_scene
from filmkit.clevr.scenes import sample_scene
from filmkit.data.readers import find_splits, read_questions
from filmkit.train.ask import prepare_image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096  # larger images are refused before they are decoded (decompression bombs)
UPLOAD_FORMATS = {"PNG", "JPEG"}
MAX_UPLOADS = 32
MAX_SEED = 2**31 - 1
PREFERRED_SPLITS = ("val", "valA", "test", "testA", "train", "trainA")


class SceneError(ValueError):
    """A request for an image that cannot be met: a bad upload, a seed out of range, a dataset without images."""


class UnknownImageError(SceneError):
    """An image id that names no image (or an upload no longer kept)."""


class SceneStore:
    """Images at the model's ``size`` = (W, H), by id; see the module docstring."""

    def __init__(self, size: tuple[int, int], dataset: str | Path | None = None, split: str | None = None) -> None:
        self.size = size
        self.split = None
        self._dataset_paths: list[Path] = []
        self._questions: dict[str, list[dict]] = defaultdict(list)
        self._generated: dict[int, np.ndarray] = {}
        self._uploads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._properties = load_properties()
        if dataset is not None:
            self._load_dataset(Path(dataset), split)

    def _load_dataset(self, root: Path, split: str | None) -> None:
        """The split's images, in the order its question file names them, or its image folder's order without one."""
        try:
            with_questions = find_splits(root)
        except ValueError:  # no question files: images alone (say, from filmkit generate scenes) are shown too
            with_questions = {}
        image_folders = {folder.name for folder in (root / "images").glob("*") if folder.is_dir()}
        names = sorted(set(with_questions) | image_folders)
        if not names:
            raise SceneError(f"{root}: neither images/<split>/ folders nor question files: not a CLEVR-layout dataset")
        split = split or next((name for name in PREFERRED_SPLITS if name in names), names[0])
        if split not in names:
            raise SceneError(f"{root}: no split {split!r} (it has: {', '.join(names)})")
        paths: dict[Path, int] = {}
        if split in with_questions:
            source = with_questions[split]
            for record in read_questions(source):
                position = paths.setdefault(source.image_path(record), len(paths))
                self._questions[f"data-{position}"].append(
                    {"question": record.question, "answer": record.answer, "family": record.family}
                )
        else:
            paths = {path: position for position, path in enumerate(sorted((root / "images" / split).glob("*.png")))}
        missing = [path for path in list(paths)[:5] if not path.is_file()]
        if missing:
            raise SceneError(f"{root}: the {split} questions name images that are not there, e.g. {missing[0]}")
        self.split, self._dataset_paths = split, list(paths)

    def dataset_ids(self) -> list[str]:
        """The ids of the dataset's images, in the order its question file first names them."""
        return [f"data-{position}" for position in range(len(self._dataset_paths))]

    def dataset_filename(self, scene_id: str) -> str:
        return self._dataset_paths[self._position(scene_id)].name

    def image(self, scene_id: str) -> np.ndarray:
        """The uint8 (H, W, 3) image the model reads for ``scene_id``."""
        kind, _, key = scene_id.partition("-")
        if kind == "data":
            path = self._dataset_paths[self._position(scene_id)]
            return prepare_image(path, self.size).transpose(1, 2, 0)
        if kind == "seed" and key.isdigit() and int(key) in self._generated:
            return self._generated[int(key)]
        if kind == "upload" and key in self._uploads:
            return self._uploads[key]
        raise UnknownImageError(f"no image {scene_id!r} (uploads are kept only for the last {MAX_UPLOADS})")

    def questions(self, scene_id: str) -> list[dict]:
        """A dataset image's own questions with their true answers; none for other images. An unknown id raises
        `UnknownImageError`, as `image` does, without decoding anything."""
        if scene_id.startswith("data-"):
            self._position(scene_id)
        else:
            self.image(scene_id)  # generated and uploaded images are held in memory: a lookup
        return list(self._questions.get(scene_id, []))

    def generate(self, seed: int) -> str:
        """Draw scene ``seed`` with CLEVR's rules and render it at the model's size; returns its id."""
        if not 0 <= seed <= MAX_SEED:
            raise SceneError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        if seed not in self._generated:
            scene = sample_scene(image_rng(seed, "serve", 0), self._properties, split="serve")
            rendered = render_scene(scene, self._properties, *self.size).image
            self._generated[seed] = rendered
        return f"seed-{seed}"

    def upload(self, data: bytes) -> tuple[str, tuple[int, int]]:
        """Decode an uploaded PNG or JPEG in memory and resize it to the model's size: (id, original (W, H))."""
        if not data:
            raise SceneError("the upload is empty: choose a PNG or JPEG file")
        if len(data) > MAX_UPLOAD_BYTES:
            raise SceneError(f"the upload is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as picture:
                    if picture.format not in UPLOAD_FORMATS:
                        raise SceneError(f"the upload is a {picture.format} image; send a PNG or JPEG")
                    if picture.width * picture.height > MAX_UPLOAD_PIXELS:
                        raise SceneError(
                            f"the upload is {picture.width}x{picture.height} pixels; the limit is "
                            f"{MAX_UPLOAD_PIXELS} pixels in all"
                        )
                    original = picture.size
                    pixels = prepare_image(picture, self.size).transpose(1, 2, 0)
        except SceneError:
            raise
        except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise SceneError(f"the upload is not an image Pillow can read ({error})") from None
        key = secrets.token_hex(8)
        self._uploads[key] = pixels
        while len(self._uploads) > MAX_UPLOADS:
            self._uploads.popitem(last=False)
        return f"upload-{key}", original

    def _position(self, scene_id: str) -> int:
        key = scene_id.removeprefix("data-")
        if not key.isdigit() or int(key) >= len(self._dataset_paths):
            raise UnknownImageError(f"no dataset image {scene_id!r} ({len(self._dataset_paths)} in this dataset)")
        return int(key)


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
