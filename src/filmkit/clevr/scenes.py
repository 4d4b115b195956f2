"""Random CLEVR scenes, sampled by the rules of the released CLEVR generator.

One scene: jitter the camera and the lights, draw the object count, then place objects one by one (size, a
position that keeps ``min_dist`` between surfaces and ``margin`` along the four ground directions, shape and
colour, yaw, material). An object that finds no place in 50 tries restarts the scene; so does a scene in which
an object shows fewer than the minimum number of pixels. Restarts are capped, so an impossible request (too
many objects, a colour rule that allows nothing) fails with a `SceneSamplingError` that says why.

Example::

    import numpy as np
    from filmkit.clevr.properties import load_properties
    from filmkit.clevr.scenes import SamplingRules, sample_scene

    scene = sample_scene(np.random.default_rng(0), load_properties(), SamplingRules(max_objects=5))
    print([(o["size"], o["color"], o["shape"]) for o in scene["objects"]])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from filmkit.clevr.camera import Camera
from filmkit.clevr.render import render_masks
from filmkit.clevr.scene_json import RELATIONS, SceneFileError, read_json

# pixel_coords follow the released data: projected at 480x320, whatever size the image is rendered at.
REFERENCE_SIZE = (480, 320)
PLACEMENT_DIRECTIONS = ("left", "right", "front", "behind")


class SceneSamplingError(RuntimeError):
    """No scene satisfies the request within the restart cap; the message says which rule kept failing."""


class ConditionError(ValueError):
    """A shape-colour condition that names unknown shapes or colours, or allows no colour for a shape."""


@dataclass(frozen=True)
class SamplingRules:
    """The knobs of scene sampling; the defaults are those of the released CLEVR generator.

    ``min_pixels`` is counted at 480x320 and scaled by pixel area to ``visibility_size``, the resolution of the
    visibility pass (a smaller pass is faster; the scene does not depend on the resolution of the final image).
    ``min_pixels=0`` turns the visibility check off.

    >>> SamplingRules().visibility_threshold()
    200
    >>> SamplingRules(visibility_size=(240, 160)).visibility_threshold()
    50
    """

    min_objects: int = 3
    max_objects: int = 10
    position_range: float = 3.0
    min_dist: float = 0.25
    margin: float = 0.4
    tries_per_object: int = 50
    max_restarts: int = 200
    min_pixels: int = 200
    visibility_size: tuple[int, int] = REFERENCE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"object count range {self.min_objects}..{self.max_objects} is empty or starts below 1")
        if self.max_restarts < 0 or self.tries_per_object < 1:
            raise ValueError("max_restarts must be >= 0 and tries_per_object >= 1")
        if min(self.visibility_size) < 1 or self.min_pixels < 0:
            raise ValueError("visibility_size must be positive and min_pixels >= 0")

    def visibility_threshold(self) -> int:
        """Minimum pixels per object in the visibility pass (``min_pixels`` scaled by pixel area)."""
        width, height = self.visibility_size
        scaled = self.min_pixels * width * height / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1])
        return max(1, round(scaled)) if self.min_pixels else 0


@dataclass
class SamplingStats:
    """What sampling cost: restarts by cause and time spent in the visibility pass."""

    placement_failures: int = 0
    visibility_failures: int = 0
    visibility_seconds: float = 0.0


def sample_scene(
    rng: np.random.Generator,
    properties,
    rules: SamplingRules = SamplingRules(),
    *,
    constraint: Mapping[str, Sequence[str]] | None = None,
    split: str = "new",
    image_index: int = 0,
    stats: SamplingStats | None = None,
) -> dict:
    """Sample one CLEVR v1.0 scene dict (plus ``camera`` and ``lights`` so it re-renders exactly).

    ``constraint`` maps each allowed shape to its allowed colours (CoGenT); shapes missing from it never appear.

    >>> from filmkit.clevr.properties import load_properties
    >>> scene = sample_scene(np.random.default_rng(1), load_properties())
    >>> sorted(scene)
    ['camera', 'directions', 'image_filename', 'image_index', 'lights', 'objects', 'relationships', 'split']
    """
    stats = stats if stats is not None else SamplingStats()
    palette = shape_color_choices(properties, constraint)
    # Jitter amounts live in the properties (CLEVR: camera U(-0.5, 0.5), lights U(-1, 1) per axis).
    base_camera = Camera.base(*REFERENCE_SIZE, properties.camera)
    base_directions = base_camera.ground_directions()
    camera = base_camera.jittered(rng, properties.camera.jitter)
    lights = [light.to_json() for light in properties.lights.jittered(rng)]
    num_objects = int(rng.integers(rules.min_objects, rules.max_objects + 1))
    scene = {
        "split": split,
        "image_index": image_index,
        "image_filename": image_filename(split, image_index),
        "objects": [],
        # The base camera's directions, not the jittered one's: the released data was made that way (its
        # generator read the camera's orientation before re-aiming it), and relationships follow them.
        "directions": {name: [float(v) for v in vector] for name, vector in base_directions.items()},
        "relationships": {},
        "camera": camera.to_json(),
        "lights": lights,
    }
    for _ in range(rules.max_restarts + 1):
        objects = place_objects(rng, properties, palette, num_objects, scene["directions"], rules)
        if objects is None:
            stats.placement_failures += 1
            continue
        scene["objects"] = objects
        add_pixel_coords(scene, properties)
        if _all_visible(scene, properties, rules, stats):
            scene["relationships"] = compute_relationships(objects, scene["directions"])
            return scene
        stats.visibility_failures += 1
    raise SceneSamplingError(_failure_reason(num_objects, rules, stats))


def place_objects(rng, properties, palette, num_objects, directions, rules: SamplingRules) -> list[dict] | None:
    """Place ``num_objects`` objects by the min_dist and margin rules; None when one finds no place."""
    sizes, materials = list(properties.sizes), list(properties.materials)
    axes = np.array([directions[name][:2] for name in PLACEMENT_DIRECTIONS], dtype=float)
    placed = np.empty((0, 3))  # x, y, radius of the objects so far
    objects = []
    for _ in range(num_objects):
        size = sizes[rng.integers(len(sizes))]
        radius = float(properties.sizes[size])
        # All tries are drawn at once and the first that fits is taken: the same rule as trying one by one.
        tries = rng.uniform(-rules.position_range, rules.position_range, size=(rules.tries_per_object, 2))
        fits = _fitting(tries, radius, placed, axes, rules)
        if not fits.any():
            return None
        x, y = (float(v) for v in tries[np.argmax(fits)])
        shape, colors = palette[rng.integers(len(palette))]
        color = colors[rng.integers(len(colors))]
        rotation = float(rng.uniform(0.0, 360.0))
        material = materials[rng.integers(len(materials))]
        placed = np.vstack([placed, [x, y, radius]])
        objects.append(
            {
                "shape": shape,
                "size": size,
                "material": material,
                "3d_coords": [x, y, radius],
                "rotation": rotation,
                "pixel_coords": [0, 0, 0.0],
                "color": color,
            }
        )
    return objects


def _fitting(tries: np.ndarray, radius: float, placed: np.ndarray, axes: np.ndarray, rules: SamplingRules):
    """For each candidate (x, y), whether it keeps min_dist and margin from every placed object."""
    offsets = tries[:, None, :] - placed[None, :, :2]  # (tries, placed, 2)
    gaps = np.hypot(offsets[..., 0], offsets[..., 1]) - radius - placed[None, :, 2]
    # As in CLEVR: along each ground direction, a positive offset smaller than the margin is too close.
    along = offsets @ axes.T  # (tries, placed, 4)
    too_close = (gaps < rules.min_dist).any(axis=1) | ((along > 0) & (along < rules.margin)).any(axis=(1, 2))
    return ~too_close


def shape_color_choices(properties, constraint: Mapping[str, Sequence[str]] | None) -> list[tuple[str, list[str]]]:
    """The (shape, allowed colours) pairs to draw from: every shape with every colour when unconstrained.

    >>> from filmkit.clevr.properties import load_properties
    >>> shape_color_choices(load_properties(), {"cube": ["red"]})
    [('cube', ['red'])]
    """
    if constraint is None:
        return [(shape, list(properties.colors)) for shape in properties.shapes]
    choices = [(shape, list(colors)) for shape, colors in constraint.items()]
    if not choices or not all(colors for _, colors in choices):
        raise ConditionError("the shape-colour condition allows no colour for some shape (or lists no shape)")
    return choices


def load_condition(spec: str | os.PathLike | None, properties) -> dict[str, list[str]] | None:
    """Resolve a shape-colour condition: None (any), "A" or "B" (CoGenT), or a JSON file ``{shape: [colours]}``.

    Shapes left out of a file never appear, as in CLEVR's generator.

    >>> from filmkit.clevr.properties import load_properties
    >>> load_condition("A", load_properties())["cube"]
    ['gray', 'blue', 'brown', 'yellow']
    """
    if spec is None:
        return None
    if str(spec).upper() in ("A", "B") and not os.path.exists(spec):
        source = f"CoGenT condition {str(spec).upper()}"
        document = json.loads(
            resources.files("filmkit.clevr")
            .joinpath(f"data/cogent_{str(spec).upper()}.json")
            .read_text(encoding="utf-8")
        )
    else:
        source = str(spec)
        try:
            document = read_json(spec)
        except SceneFileError as error:
            raise ConditionError(str(error)) from None
    return _checked_condition(document, source, properties)


def _checked_condition(document, source: str, properties) -> dict[str, list[str]]:
    if not isinstance(document, dict) or not document:
        raise ConditionError(
            f'{source}: expected an object mapping shapes to lists of colours, e.g. {{"cube": ["gray", "blue"]}}'
        )
    condition = {}
    for shape, colors in document.items():
        if shape not in properties.shapes:
            raise ConditionError(f"{source}: {shape}: unknown shape (known: {', '.join(properties.shapes)})")
        if not isinstance(colors, list) or not colors:
            raise ConditionError(f"{source}: {shape}: expected a non-empty list of colours, got {colors!r}")
        for index, color in enumerate(colors):
            if color not in properties.colors:
                raise ConditionError(
                    f"{source}: {shape}[{index}]: unknown color {color!r} (known: {', '.join(properties.colors)})"
                )
        condition[shape] = list(colors)
    return condition


def add_pixel_coords(scene: dict, properties) -> None:
    """Set each object's ``pixel_coords`` to [px, py, depth] from the scene camera at 480x320 (px, py rounded)."""
    camera = Camera.from_scene(scene, *REFERENCE_SIZE, properties)
    for obj in scene["objects"]:
        obj["pixel_coords"] = camera.pixel_coords(obj["3d_coords"])


def object_pixel_counts(scene: dict, properties, width: int, height: int) -> list[int]:
    """Visible pixels of each object in a ``width`` x ``height`` render of the instance masks.

    >>> from filmkit.clevr.properties import load_properties
    >>> props = load_properties()
    >>> scene = sample_scene(np.random.default_rng(0), props, SamplingRules(min_objects=3, max_objects=3))
    >>> counts = object_pixel_counts(scene, props, 480, 320)
    >>> len(counts), min(counts) >= 200
    (3, True)
    """
    camera = Camera.from_scene(scene, width, height, properties)
    masks = render_masks(scene, properties, width, height, camera=camera)
    counts = np.bincount(masks[masks >= 0].ravel(), minlength=len(scene["objects"]))
    return [int(count) for count in counts[: len(scene["objects"])]]


def compute_relationships(objects: Sequence[dict], directions: Mapping[str, Sequence[float]], eps: float = 0.2):
    """For each relation, per object i the sorted indices j with (c_j - c_i) . direction > eps.

    >>> dirs = {"right": [1, 0, 0], "left": [-1, 0, 0], "front": [0, -1, 0], "behind": [0, 1, 0]}
    >>> objs = [{"3d_coords": [0, 0, 0.7]}, {"3d_coords": [1, 0, 0.35]}]
    >>> compute_relationships(objs, dirs)["right"]
    [[1], []]
    """
    coords = np.array([obj["3d_coords"] for obj in objects], dtype=float).reshape(-1, 3)
    offsets = coords[None, :, :] - coords[:, None, :]  # offsets[i, j] = c_j - c_i
    relationships = {}
    for relation in RELATIONS:
        along = offsets @ np.asarray(directions[relation], dtype=float)
        relationships[relation] = [[int(j) for j in np.flatnonzero(row > eps)] for row in along]
    return relationships


def image_filename(split: str, image_index: int) -> str:
    """The released naming: ``CLEVR_<split>_<6 digits>.png``.

    >>> image_filename("val", 42)
    'CLEVR_val_000042.png'
    """
    return f"CLEVR_{split}_{image_index:06d}.png"


def _all_visible(scene: dict, properties, rules: SamplingRules, stats: SamplingStats) -> bool:
    if rules.min_pixels == 0:
        return True  # the check is turned off
    started = time.perf_counter()
    counts = object_pixel_counts(scene, properties, *rules.visibility_size)
    stats.visibility_seconds += time.perf_counter() - started
    return min(counts) >= rules.visibility_threshold()


def _failure_reason(num_objects: int, rules: SamplingRules, stats: SamplingStats) -> str:
    attempts = stats.placement_failures + stats.visibility_failures
    if stats.placement_failures >= stats.visibility_failures:
        cause = (
            f"objects found no place {stats.placement_failures} times (min_dist {rules.min_dist}, margin "
            f"{rules.margin}, {rules.tries_per_object} tries each): too many objects for the ground area"
        )
    else:
        cause = (
            f"some object was hidden {stats.visibility_failures} times (fewer than {rules.min_pixels} pixels "
            f"at 480x320)"
        )
    return f"gave up on a scene of {num_objects} objects after {attempts} attempts: {cause}; ask for fewer objects"
