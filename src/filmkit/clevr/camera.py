"""The CLEVR pinhole camera: projection, viewing rays, ground directions, and recovering a scene's camera.

Conventions follow Blender, which rendered CLEVR: the camera looks along its -Z axis with +Y up, aimed at
``look_at`` with the world's +Z as up; the sensor width maps to the image width, so ``fx = W * focal / sensor``
pixels (525 at W=480), with the principal point at the image centre. Every image shows CLEVR's 3:2 view
(``frame_aspect``) whatever its pixel size: a 128x128 image is the 480x320 view squeezed, exactly like a released
CLEVR image resized to 128x128 for training, so generated and released data look alike at any resolution
(``fy = H * focal / (sensor / frame_aspect)``; fx = fy = 525 at 480x320). Pixel coordinates have their origin at the
top-left corner of the image, x to the right and y down; pixel (i, j) covers [j, j+1) x [i, i+1).

Example::

    from filmkit.clevr.camera import Camera

    cam = Camera.base(480, 320)
    cam.project([[0, 0, 0]])          # [[240., 160., 11.2...]]: the origin is at the image centre
    cam.ground_directions()["left"]   # (-0.656..., -0.754..., 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from filmkit.clevr.properties import CameraSettings, Light, LightRig, Properties, Vec3, parse_light

# Released CLEVR stores pixel_coords for 480x320 renders, whatever size the images are used at.
CLEVR_WIDTH, CLEVR_HEIGHT = 480, 320
WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera aimed at ``look_at``; ``width`` x ``height`` pixels.

    >>> cam = Camera((7.481, -6.508, 5.344), (0.0, 0.0, 0.0), 35.0, 32.0, 480, 320)
    >>> cam.focal_px
    525.0
    """

    location: Vec3
    look_at: Vec3 = (0.0, 0.0, 0.0)
    focal_mm: float = 35.0
    sensor_mm: float = 32.0
    width: int = CLEVR_WIDTH
    height: int = CLEVR_HEIGHT
    frame_aspect: float = CLEVR_WIDTH / CLEVR_HEIGHT  # width / height of the view, whatever the pixel size

    @classmethod
    def base(
        cls, width: int = CLEVR_WIDTH, height: int = CLEVR_HEIGHT, settings: CameraSettings | None = None
    ) -> Camera:
        """The unjittered CLEVR camera (or the one ``settings`` describe) at the given resolution.

        >>> Camera.base(128, 128).focal_px
        140.0
        """
        s = settings or CameraSettings()
        return cls(s.location, s.look_at, s.focal_mm, s.sensor_mm, width, height)

    @property
    def focal_px(self) -> float:
        """Horizontal focal length in pixels."""
        return self.width * self.focal_mm / self.sensor_mm

    @property
    def focal_px_y(self) -> float:
        """Vertical focal length in pixels: equal to ``focal_px`` when the image has the frame's aspect.

        >>> Camera.base(128, 128).focal_px_y
        210.0
        """
        return self.height * self.frame_aspect * self.focal_mm / self.sensor_mm

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World-space unit vectors (right, up, forward) of the camera; forward points at ``look_at``.

        Computed once per camera (projection asks for them for every object) and returned read-only.

        >>> right, up, forward = Camera.base().axes()
        >>> round(float(up @ forward), 6)
        0.0
        """
        return self._axes

    @cached_property
    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        forward = np.subtract(self.look_at, self.location, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, WORLD_UP)
        norm = np.linalg.norm(right)
        if norm < 1e-9:
            raise ValueError("camera looks straight up or down; the CLEVR camera needs a tilted view")
        right /= norm
        axes = (right, np.cross(right, forward), forward)
        for axis in axes:
            axis.setflags(write=False)
        return axes

    def project(self, points: Any) -> np.ndarray:
        """Pixel x, pixel y (floats, origin top-left) and depth along the camera axis of (N, 3) world points.

        >>> Camera.base(480, 320).project([[0, 0, 0]])[0, :2].round(6).tolist()
        [240.0, 160.0]
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3) - np.asarray(self.location)
        right, up, forward = self.axes()
        depth = pts @ forward
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        x = self.width / 2 + self.focal_px * (pts @ right) / safe
        y = self.height / 2 - self.focal_px_y * (pts @ up) / safe
        return np.stack([x, y, depth], axis=1)

    def pixel_coords(self, point: Sequence[float]) -> list[float]:
        """CLEVR's ``pixel_coords`` of one world point: [px, py, depth], pixel positions rounded as clevr-dataset-gen
        rounds them.

        >>> Camera.base(480, 320).pixel_coords([0, 0, 0])[:2]
        [240, 160]
        """
        x, y, depth = self.project([point])[0]
        return [int(round(x)), int(round(y)), float(depth)]

    def ray_directions(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit world-space directions (dx, dy, dz) of the rays through pixel positions ``xs``, ``ys``.

        Inputs broadcast against each other (pass a column and a row to get a grid); outputs are float32.

        >>> cam = Camera.base(480, 320)
        >>> d = cam.ray_directions(np.array([240.0]), np.array([160.0]))
        >>> np.allclose(np.concatenate(d), cam.axes()[2])
        True
        """
        right, up, forward = (a.astype(np.float32) for a in self.axes())
        a = (np.asarray(xs, dtype=np.float32) - np.float32(self.width / 2)) / np.float32(self.focal_px)
        b = (np.float32(self.height / 2) - np.asarray(ys, dtype=np.float32)) / np.float32(self.focal_px_y)
        inv_len = 1.0 / np.sqrt(a * a + b * b + 1.0)
        return tuple((a * right[k] + b * up[k] + forward[k]) * inv_len for k in range(3))  # type: ignore[return-value]

    def ground_directions(self) -> dict[str, tuple[float, float, float]]:
        """CLEVR's ``directions``: camera-relative unit vectors on the ground plane, plus above and below.

        ``behind`` is the viewing direction and ``left`` the camera's -X axis, each projected onto the ground and
        normalised; ``front`` and ``right`` are their negatives. Released CLEVR stores the *base* camera's
        directions in every scene, jittered or not (clevr-dataset-gen read the camera's orientation before Blender
        re-aimed the moved camera), so ``Camera.base().ground_directions()`` reproduces the released values.

        >>> [round(v, 4) for v in Camera.base().ground_directions()["behind"]]
        [-0.7545, 0.6563, 0.0]
        """
        right, _, forward = self.axes()

        def flat(v: np.ndarray) -> tuple[float, float, float]:
            v = np.array([v[0], v[1], 0.0])
            v /= np.linalg.norm(v)
            return (float(v[0]), float(v[1]), 0.0)

        behind, left = flat(forward), flat(-right)
        return {
            "behind": behind,
            "front": tuple(-c + 0.0 for c in behind),
            "left": left,
            "right": tuple(-c + 0.0 for c in left),
            "above": (0.0, 0.0, 1.0),
            "below": (0.0, 0.0, -1.0),
        }  # type: ignore[return-value]

    def jittered(self, rng: np.random.Generator, amount: float) -> Camera:
        """This camera moved by U(-amount, amount) along each axis (still aimed at ``look_at``).

        >>> cam = Camera.base().jittered(np.random.default_rng(0), 0.5)
        >>> bool(np.all(np.abs(np.subtract(cam.location, Camera.base().location)) <= 0.5))
        True
        """
        offset = rng.uniform(-amount, amount, size=3)
        return replace(self, location=_vec3(np.asarray(self.location) + offset))

    def with_size(self, width: int, height: int) -> Camera:
        """The same view rendered at another resolution (the view itself does not change)."""
        return replace(self, width=int(width), height=int(height))

    def to_json(self) -> dict[str, list[float]]:
        """The extra ``camera`` key a generated scene stores: ``{"location": [...], "look_at": [...]}``."""
        return {"location": list(self.location), "look_at": list(self.look_at)}

    @classmethod
    def from_scene(
        cls, scene: Mapping[str, Any], width: int, height: int, properties: Properties | None = None
    ) -> Camera:
        """The camera that rendered ``scene``, at ``width`` x ``height``.

        Uses the scene's ``camera`` key when there is one (scenes generated by filmkit). Released CLEVR scenes do
        not store the camera, so otherwise its location is fitted by least squares to the objects' ``3d_coords``
        and ``pixel_coords`` (480x320 units) with the known lens, aimed at ``look_at``; with fewer than two usable
        objects the unjittered base camera is returned.

        >>> scene = {"objects": [], "camera": {"location": [7.0, -6.0, 5.0]}}
        >>> Camera.from_scene(scene, 128, 128).location
        (7.0, -6.0, 5.0)
        """
        settings = properties.camera if properties is not None else CameraSettings()
        base = cls.base(width, height, settings)
        stored = scene.get("camera")
        if stored is not None:
            location = _vec3(stored["location"])
            look_at = _vec3(stored.get("look_at", settings.look_at))
            return replace(base, location=location, look_at=look_at)
        points, observed = [], []
        for obj in scene.get("objects", []):
            if "3d_coords" in obj and "pixel_coords" in obj:
                points.append(obj["3d_coords"])
                observed.append(obj["pixel_coords"])
        if len(points) < 2:
            return base
        fitted = _fit_location(base.with_size(CLEVR_WIDTH, CLEVR_HEIGHT), np.array(points), np.array(observed))
        return replace(base, location=fitted)


def lights_from_scene(scene: Mapping[str, Any], properties: Properties | None = None) -> tuple[Light, ...]:
    """The area lights of ``scene``: its ``lights`` key when present, else the unjittered base lights.

    >>> [light.name for light in lights_from_scene({"objects": []})]
    ['key', 'fill', 'back']
    """
    stored = scene.get("lights")
    if stored is None:
        return (properties.lights if properties is not None else LightRig()).sources
    return tuple(parse_light(item, f"lights[{i}]") for i, item in enumerate(stored))


# The depth in pixel_coords is stored unrounded, so it pins the distance far better than the rounded pixel
# positions; this weight turns one scene unit of depth error into as many "pixels" of residual.
_DEPTH_WEIGHT = 1e4


def _fit_location(camera: Camera, points: np.ndarray, observed: np.ndarray) -> Vec3:
    """Gauss-Newton on the camera location so projected points match rounded pixel coords and depths."""
    target = observed.astype(np.float64)
    target[:, 2] *= _DEPTH_WEIGHT

    def residual(location: np.ndarray) -> np.ndarray:
        projected = replace(camera, location=_vec3(location)).project(points)
        projected[:, 2] *= _DEPTH_WEIGHT
        return (projected - target).ravel()

    location = np.asarray(camera.location, dtype=np.float64)
    step = 1e-5
    for _ in range(20):
        r = residual(location)
        jac = np.stack([(residual(location + step * e) - r) / step for e in np.eye(3)], axis=1)
        delta = np.linalg.lstsq(jac, -r, rcond=None)[0]
        location = location + delta
        if np.linalg.norm(delta) < 1e-7:
            break
    return _vec3(location)


def _vec3(values: Any) -> Vec3:
    x, y, z = (float(v) for v in values)
    return (x, y, z)
