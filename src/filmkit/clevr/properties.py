"""The CLEVR world's vocabulary and fixed set-up: one source of truth for shapes, colours, sizes, materials,
the camera and the lights.

The file format is the one of clevr-dataset-gen's ``properties.json`` (``shapes``, ``colors``, ``materials``,
``sizes``), with two optional extra keys, ``camera`` and ``lights``, that default to the CLEVR set-up. The default
file ships with the package, so ``load_properties()`` with no argument gives the released CLEVR world.

Example::

    from filmkit.clevr.properties import load_properties

    props = load_properties()
    props.colors["red"]          # (173, 35, 35)
    props.sizes["large"]         # 0.7
    props.lights.sources[0].name  # 'key'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from filmkit.jsonfiles import read_json

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Light:
    """One area light: its centre, its size (scene units; larger means softer shadows) and its relative energy.

    >>> Light("key", (6.447, -2.905, 4.258), 0.5).to_json()["name"]
    'key'
    """

    name: str
    location: Vec3
    size: float
    energy: float = 1.0

    def jittered(self, rng: np.random.Generator, amount: float) -> Light:
        """The same light moved by U(-amount, amount) along each axis, as clevr-dataset-gen does per scene.

        >>> light = Light("key", (0.0, 0.0, 4.0), 0.5)
        >>> abs(light.jittered(np.random.default_rng(0), 1.0).location[2] - 4.0) <= 1.0
        True
        """
        offset = rng.uniform(-amount, amount, size=3)
        return replace(self, location=_vec3(np.asarray(self.location) + offset))

    def to_json(self) -> dict[str, Any]:
        """The light as a JSON-ready dict (the form a scene's ``lights`` list holds)."""
        return {"name": self.name, "location": list(self.location), "size": self.size, "energy": self.energy}


@dataclass(frozen=True)
class CameraSettings:
    """The base camera of every scene and how much each scene jitters its location."""

    location: Vec3 = (7.481, -6.508, 5.344)
    look_at: Vec3 = (0.0, 0.0, 0.0)
    focal_mm: float = 35.0
    sensor_mm: float = 32.0
    jitter: float = 0.5


@dataclass(frozen=True)
class LightRig:
    """The three area lights (key, fill, back), their per-scene jitter and a weak overhead sun."""

    sources: tuple[Light, ...] = (
        Light("key", (6.447, -2.905, 4.258), 0.5, 1.0),
        Light("fill", (-4.671, -4.014, 3.011), 0.5, 0.35),
        Light("back", (-1.169, 2.646, 5.816), 1.0, 0.5),
    )
    jitter: float = 1.0
    sun: float = 0.15

    def jittered(self, rng: np.random.Generator) -> tuple[Light, ...]:
        """Every source moved by U(-jitter, jitter) per axis: the lights of one sampled scene.

        >>> len(LightRig().jittered(np.random.default_rng(0)))
        3
        """
        return tuple(light.jittered(rng, self.jitter) for light in self.sources)


@dataclass(frozen=True)
class Properties:
    """Everything a scene may contain, and how it is seen and lit.

    ``shapes`` and ``materials`` map a CLEVR name to the Blender-style name of clevr-dataset-gen; ``colors`` map a
    name to an sRGB triple 0-255; ``sizes`` map a name to the object radius in scene units.
    """

    shapes: dict[str, str]
    colors: dict[str, tuple[int, int, int]]
    materials: dict[str, str]
    sizes: dict[str, float]
    camera: CameraSettings = field(default_factory=CameraSettings)
    lights: LightRig = field(default_factory=LightRig)


DEFAULT_PROPERTIES_FILE = "properties.json"


def load_properties(path: str | Path | None = None) -> Properties:
    """Read a clevr-dataset-gen style ``properties.json``; with no path, the CLEVR world shipped with filmkit.

    Raises ``ValueError`` naming the file and the field when the file is malformed.

    >>> props = load_properties()
    >>> sorted(props.shapes)
    ['cube', 'cylinder', 'sphere']
    >>> props.camera.focal_mm
    35.0
    """
    if path is None:
        path = Path(str(resources.files("filmkit.clevr").joinpath("data", DEFAULT_PROPERTIES_FILE)))
    return _parse(read_json(path), _Checker(str(path)))


class _Checker:
    """Turns a malformed field into ``ValueError('<file>: <field> must be ...')``."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name

    def fail(self, where: str, what: str) -> ValueError:
        return ValueError(f"{self.file_name}: {where} {what}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.fail(where, "must be a non-empty object")
        return value

    def name_map(self, value: Any, where: str) -> dict[str, str]:
        for key, item in self.mapping(value, where).items():
            if not isinstance(item, str) or not item:
                raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return dict(value)

    def number(self, value: Any, where: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise self.fail(where, "must be a number")
        if positive and value <= 0:
            raise self.fail(where, "must be a positive number")
        return float(value)

    def vec3(self, value: Any, where: str) -> Vec3:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise self.fail(where, "must be 3 numbers")
        return tuple(self.number(v, where) for v in value)  # type: ignore[return-value]

    def rgb(self, value: Any, where: str) -> tuple[int, int, int]:
        ok = isinstance(value, (list, tuple)) and len(value) == 3
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
        if not ok:
            raise self.fail(where, "must be 3 integers 0-255")
        return tuple(value)  # type: ignore[return-value]


def _parse(raw: Any, check: _Checker) -> Properties:
    raw = check.mapping(raw, "the top level")
    for key in ("shapes", "colors", "materials", "sizes"):
        if key not in raw:
            raise check.fail(key, "is missing")
    colors = {name: check.rgb(v, f"colors.{name}") for name, v in check.mapping(raw["colors"], "colors").items()}
    sizes = {
        name: check.number(v, f"sizes.{name}", positive=True)
        for name, v in check.mapping(raw["sizes"], "sizes").items()
    }
    return Properties(
        shapes=check.name_map(raw["shapes"], "shapes"),
        colors=colors,
        materials=check.name_map(raw["materials"], "materials"),
        sizes=sizes,
        camera=_parse_camera(raw.get("camera", {}), check),
        lights=_parse_lights(raw.get("lights", {}), check),
    )


def _parse_camera(raw: Any, check: _Checker) -> CameraSettings:
    if not isinstance(raw, dict):
        raise check.fail("camera", "must be an object")
    base = CameraSettings()
    return CameraSettings(
        location=check.vec3(raw.get("location", base.location), "camera.location"),
        look_at=check.vec3(raw.get("look_at", base.look_at), "camera.look_at"),
        focal_mm=check.number(raw.get("focal_mm", base.focal_mm), "camera.focal_mm", positive=True),
        sensor_mm=check.number(raw.get("sensor_mm", base.sensor_mm), "camera.sensor_mm", positive=True),
        jitter=check.number(raw.get("jitter", base.jitter), "camera.jitter"),
    )


def _parse_lights(raw: Any, check: _Checker) -> LightRig:
    if not isinstance(raw, dict):
        raise check.fail("lights", "must be an object")
    base = LightRig()
    sources = base.sources
    if "sources" in raw:
        if not isinstance(raw["sources"], list) or not raw["sources"]:
            raise check.fail("lights.sources", "must be a non-empty list")
        sources = tuple(parse_light(item, f"lights.sources[{i}]", check) for i, item in enumerate(raw["sources"]))
    return LightRig(
        sources=sources,
        jitter=check.number(raw.get("jitter", base.jitter), "lights.jitter"),
        sun=check.number(raw.get("sun", base.sun), "lights.sun"),
    )


def parse_light(raw: Any, where: str, check: _Checker | None = None) -> Light:
    """A :class:`Light` from its JSON form ``{"name", "location", "size", "energy"?}``.

    ``where`` names the field in error messages.

    >>> parse_light({"name": "key", "location": [1, 2, 3], "size": 0.5}, "lights[0]").energy
    1.0
    """
    check = check or _Checker("scene")
    if not isinstance(raw, dict):
        raise check.fail(where, "must be an object")
    for key in ("location", "size"):
        if key not in raw:
            raise check.fail(f"{where}.{key}", "is missing")
    return Light(
        name=str(raw.get("name", "")),
        location=check.vec3(raw["location"], f"{where}.location"),
        size=check.number(raw["size"], f"{where}.size", positive=True),
        energy=check.number(raw.get("energy", 1.0), f"{where}.energy"),
    )


def _vec3(values: Any) -> Vec3:
    x, y, z = (float(v) for v in values)
    return (x, y, z)
