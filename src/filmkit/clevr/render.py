"""Render CLEVR v1.0 scenes with the CLEVR look, in numpy on one CPU core: no Blender, no OpenGL, no GPU.

Rays are cast analytically from the CLEVR camera against the ground plane and the objects, each object tested only
inside its screen-space bounding box; the visible surfaces are lit by :mod:`filmkit.clevr.shading`; the samples of
each pixel (``supersample`` x ``supersample`` of them) are averaged in linear light and tone-mapped to sRGB.

Example::

    from filmkit.clevr.properties import load_properties
    from filmkit.clevr.render import render_scene, save_png

    scene = {"objects": [
        {"shape": "sphere", "size": "large", "material": "metal", "color": "cyan",
         "3d_coords": [0.0, 0.0, 0.7], "rotation": 0.0},
        {"shape": "cube", "size": "small", "material": "rubber", "color": "red",
         "3d_coords": [1.5, -1.0, 0.35], "rotation": 30.0},
    ]}
    result = render_scene(scene, load_properties(), 480, 320)
    result.image.shape, result.masks.shape   # (320, 480, 3) (320, 480)
    save_png("scene.png", result.image)
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from filmkit.atomic import atomic_output
from filmkit.clevr.camera import Camera, lights_from_scene
from filmkit.clevr.geometry import Solid, hit_distance
from filmkit.clevr.properties import Light, Properties
from filmkit.clevr.shading import Hits, downsample, shade, srgb_to_linear, tone_map

# Which solid each CLEVR shape name is drawn as, and which material names are shiny.
SOLID_OF_SHAPE = {"sphere": "sphere", "cube": "cube", "cylinder": "cylinder"}
LOOK_OF_MATERIAL = {"rubber": False, "metal": True}


@dataclass(frozen=True)
class RenderResult:
    """A rendered scene: ``image`` (H, W, 3) uint8 sRGB and ``masks`` (H, W) int16 object index, -1 for ground."""

    image: np.ndarray
    masks: np.ndarray


def scene_solids(scene: Mapping[str, Any], properties: Properties) -> list[Solid]:
    """The objects of a CLEVR scene dict as :class:`~filmkit.clevr.geometry.Solid` s, checked against ``properties``.

    Raises ``ValueError`` naming the object index and the field for an unknown shape, colour, size or material.

    >>> from filmkit.clevr.properties import load_properties
    >>> obj = {"shape": "cube", "size": "small", "material": "metal", "color": "red",
    ...        "3d_coords": [1, 2, 0.35], "rotation": 90}
    >>> scene_solids({"objects": [obj]}, load_properties())[0].radius
    0.35
    """
    solids = []
    for index, obj in enumerate(scene.get("objects", [])):

        def field(name: str, known: Mapping[str, Any], index: int = index, obj: Mapping[str, Any] = obj) -> Any:
            value = obj.get(name)
            if value not in known:
                choices = ", ".join(sorted(known))
                raise ValueError(f"object {index}: unknown {name} {value!r} (expected one of: {choices})")
            return value

        shape = field("shape", properties.shapes)
        if shape not in SOLID_OF_SHAPE:
            raise ValueError(f"object {index}: shape {shape!r} has no geometry in the renderer")
        material = field("material", properties.materials)
        if material not in LOOK_OF_MATERIAL:
            raise ValueError(f"object {index}: material {material!r} has no look in the renderer")
        radius = properties.sizes[field("size", properties.sizes)]
        colour = properties.colors[field("color", properties.colors)]
        coords = obj.get("3d_coords")
        if not isinstance(coords, (list, tuple)) or len(coords) != 3:
            raise ValueError(f"object {index}: 3d_coords must be 3 numbers")
        x, y, _ = (float(c) for c in coords)
        solids.append(
            Solid(
                kind=SOLID_OF_SHAPE[shape],
                # Objects rest on the ground whatever z the file stores.
                center=(x, y, float(radius)),
                radius=float(radius),
                yaw=math.radians(float(obj.get("rotation", 0.0))),
                albedo=_albedo(colour, LOOK_OF_MATERIAL[material]),
                metal=LOOK_OF_MATERIAL[material],
            )
        )
    return solids


def _albedo(colour: Sequence[int], metal: bool) -> tuple[float, float, float]:
    """Linear reflectance of a palette colour.

    Rubber is decoded from sRGB so that a lit face shows the palette colour. Metal keeps that hue but its
    strongest channel is the palette's 0-255 value over 255, as clevr-dataset-gen's Blender material read it; this
    keeps dark metals (gray, brown) from mirroring as black.
    """
    linear = srgb_to_linear(colour)
    if not metal:
        return linear
    scale = max(colour) / 255.0 / max(max(linear), 1e-6)
    r, g, b = (c * scale for c in linear)
    return (r, g, b)


def render_scene(
    scene: Mapping[str, Any],
    properties: Properties,
    width: int = 480,
    height: int = 320,
    *,
    supersample: int = 2,
    shadows: bool = True,
    camera: Camera | None = None,
    lights: Sequence[Light] | None = None,
) -> RenderResult:
    """Render a CLEVR scene dict to an sRGB image and its object masks.

    The camera and lights default to those the scene stores, else those recovered from it (see
    :meth:`Camera.from_scene`); a given ``camera`` is used at ``width`` x ``height``. Each pixel averages
    ``supersample`` x ``supersample`` samples; masks come from the ray through each pixel's centre, exactly as
    :func:`render_masks` gives them.

    >>> from filmkit.clevr.properties import load_properties
    >>> obj = {"shape": "sphere", "size": "large", "material": "rubber", "color": "blue",
    ...        "3d_coords": [0, 0, 0.7], "rotation": 0}
    >>> result = render_scene({"objects": [obj]}, load_properties(), 64, 48)
    >>> result.image.shape, int(result.masks[24, 32])
    ((48, 64, 3), 0)
    """
    if supersample < 1:
        raise ValueError(f"supersample must be at least 1, got {supersample}")
    solids = scene_solids(scene, properties)
    cam = _camera(scene, properties, width, height, camera)
    light_list = tuple(lights) if lights is not None else lights_from_scene(scene, properties)
    hits = _primary(cam, solids, supersample)
    radiance = shade(hits, solids, light_list, properties.lights.sun, shadows, _rect_finder(cam, supersample))
    image = tone_map(downsample(radiance, supersample))
    masks = hits.ids if supersample == 1 else _primary(cam, solids, 1).ids
    return RenderResult(image=image, masks=masks)


def render_masks(
    scene: Mapping[str, Any], properties: Properties, width: int = 480, height: int = 320, camera: Camera | None = None
) -> np.ndarray:
    """Object index (int16, -1 for the ground) seen through the centre of each pixel; no shading, fast.

    Use it to check that every object shows enough pixels before paying for a full render.

    >>> from filmkit.clevr.properties import load_properties
    >>> obj = {"shape": "cylinder", "size": "small", "material": "metal", "color": "gray",
    ...        "3d_coords": [0, 0, 0.35], "rotation": 0}
    >>> masks = render_masks({"objects": [obj]}, load_properties(), 64, 48)
    >>> int((masks == 0).sum()) > 10
    True
    """
    solids = scene_solids(scene, properties)
    return _primary(_camera(scene, properties, width, height, camera), solids, 1).ids


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W, 4) uint8 image as PNG, atomically and byte-for-byte reproducibly.

    The bytes go to a temporary file in the same directory that then replaces ``path``, so a reader never sees a
    half-written image; no timestamp or other varying metadata is stored.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "black.png")
    >>> save_png(path, np.zeros((4, 4, 3), np.uint8))
    >>> os.path.getsize(path) > 0
    True
    """
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"save_png expects an (H, W, 3|4) uint8 array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=6)
    with atomic_output(path) as handle:
        handle.write(buffer.getvalue())


def _camera(scene, properties: Properties, width: int, height: int, camera: Camera | None) -> Camera:
    if camera is not None:
        return camera.with_size(width, height)
    return Camera.from_scene(scene, width, height, properties)


def _rect_finder(camera: Camera, factor: int):
    """A function from world points to the (rows, cols) slices of the sample grid their projection spans."""
    rows, cols = camera.height * factor, camera.width * factor

    def rect_of(points: np.ndarray) -> tuple[slice, slice] | None:
        if not np.all(np.isfinite(points)):
            return slice(0, rows), slice(0, cols)
        x, y, depth = camera.project(points).T
        if np.any(depth <= 1e-3):  # part of it is behind the camera: no bound on screen
            return slice(0, rows), slice(0, cols)
        x0, x1 = max(math.floor(x.min() * factor) - 1, 0), min(math.ceil(x.max() * factor) + 1, cols)
        y0, y1 = max(math.floor(y.min() * factor) - 1, 0), min(math.ceil(y.max() * factor) + 1, rows)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    return rect_of


def _primary(camera: Camera, solids: Sequence[Solid], factor: int) -> Hits:
    """Nearest surface along the ray through each of ``factor`` x ``factor`` sample points per pixel."""
    rows, cols = camera.height * factor, camera.width * factor
    xs = (np.arange(cols, dtype=np.float32) + 0.5) / factor
    ys = (np.arange(rows, dtype=np.float32) + 0.5) / factor
    direction = camera.ray_directions(xs[None, :], ys[:, None])
    ox, oy, oz = camera.location
    dz = direction[2]
    with np.errstate(divide="ignore"):
        t = np.where(dz < 0.0, -oz / dz, np.inf).astype(np.float32)
    ids = np.full((rows, cols), -1, dtype=np.int16)
    rect_of = _rect_finder(camera, factor)
    for k, solid in enumerate(solids):
        rect = rect_of(solid.corners())
        if rect is None:
            continue
        tk = hit_distance(solid, camera.location, tuple(d[rect] for d in direction))
        closer = tk < t[rect]
        t[rect] = np.where(closer, tk, t[rect])
        ids[rect][closer] = k
    sky = ~np.isfinite(t)
    if sky.any():
        t[sky] = 0.0  # keeps positions finite; sky samples are coloured separately
    else:
        sky = None
    position = (ox + t * direction[0], oy + t * direction[1], oz + t * direction[2])
    return Hits(direction=direction, position=position, ids=ids, sky=sky)
