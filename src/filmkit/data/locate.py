"""Accept either a cache or a dataset folder wherever the data goes in; preprocess a dataset the first time."""

from __future__ import annotations

from pathlib import Path

from filmkit.atomic import OVERWRITE_HINT
from filmkit.clevr.dataset import CACHE_FOLDER
from filmkit.data.cache import MANIFEST, read_manifest
from filmkit.data.preprocess import CacheConflictError, Progress, preprocess


def is_cache(path: Path) -> bool:
    """A filmkit cache (has a manifest) or a reference-implementation cache (questions .h5 files)."""
    return (path / MANIFEST).exists() or any(path.glob("*_questions.h5"))


def default_cache_dir(dataset: Path, resolution: tuple[int, int], features: str | None = None) -> Path:
    """Where a dataset's cache goes when the user names none: beside the data, one per resolution (and kind)."""
    return dataset / CACHE_FOLDER / f"{features or 'cache'}-{resolution[0]}x{resolution[1]}"


def locate_cache(
    data: str | Path,
    resolution: tuple[int, int],
    *,
    vocab_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    features: str | None = None,
) -> Path:
    """The cache to read for ``data``: ``data`` itself if it is a cache, else the dataset's cache at
    ``resolution`` (W, H), built or finished first (of ``features`` instead of pixels when given, e.g.
    ``"scene-maps"``). A cache at another resolution is refused. The dataset's own
    cache (under ``DATASET/.filmkit/``) is rebuilt when its questions changed; one in ``cache_dir`` is refused.

    Example::

        cache = locate_cache("data/tiny", (64, 64))      # preprocesses data/tiny on first use
    """
    data = Path(data)
    if not data.exists():
        raise ValueError(f"{data}: no such dataset or cache")
    if is_cache(data):
        manifest = read_manifest(data)
        if manifest and manifest.get("image_kind") == "pixels" and tuple(manifest["resolution"]) != tuple(resolution):
            raise ValueError(
                f"{data}: cache images are {manifest['resolution'][0]}x{manifest['resolution'][1]}, "
                f"the model reads {resolution[0]}x{resolution[1]}"
            )
        return data
    target = Path(cache_dir) if cache_dir else default_cache_dir(data, resolution, features)
    arguments = dict(
        resolution=resolution, vocab_path=vocab_path, workers=workers, progress=progress, features=features
    )
    try:
        preprocess(data, target, **arguments)
    except CacheConflictError as error:
        if cache_dir:  # the user's cache: theirs to replace, with the command that makes caches
            raise ValueError(str(error).replace(OVERWRITE_HINT, "filmkit preprocess --overwrite replaces it")) from None
        preprocess(data, target, overwrite=True, **arguments)  # filmkit's own cache of the dataset, gone stale
    return target
