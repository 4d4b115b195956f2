"""Analytic geometry of the three CLEVR solids: ray hits, surface normals and signed distances.

Every solid of radius r rests on the ground z=0 with its centre at z=r: a sphere of radius r, a cube of half-side r
turned by a yaw angle, and an upright cylinder of radius r and height 2r. Vectors travel as tuples of three
same-shape float32 arrays (x, y, z) rather than (N, 3) arrays, so that every step is a contiguous elementwise
numpy operation; a component may also be a plain float (a ray origin shared by every ray, say).

Cubes and cylinders are hit as sharp-edged solids but shaded with rounded edges: the normal of a point is taken
from the nearest point of a slightly smaller "core" solid, which turns the last ``BEVEL`` fraction of each face
towards its neighbour, as clevr-dataset-gen's smoothed meshes do.

Example::

    import numpy as np
    from filmkit.clevr.geometry import Solid, hit_distance

    ball = Solid("sphere", (0.0, 0.0, 0.7), 0.7)
    origin, down = (0.0, 0.0, 5.0), tuple(np.array([v], np.float32) for v in (0.0, 0.0, -1.0))
    hit_distance(ball, origin, down)   # array([3.6], dtype=float32): the top of the ball at z=1.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KINDS = ("sphere", "cube", "cylinder")
BEVEL = {"cube": 0.12, "cylinder": 0.08, "sphere": 0.0}  # rounded-edge width as a fraction of the radius
EPS = 1e-4  # rays start this far past their origin so a surface does not hit itself
MISS = np.float32(np.inf)


@dataclass(frozen=True)
class Solid:
    """One object of a scene resolved to numbers: kind, centre, radius, yaw (radians) and its look.

    ``albedo`` is linear RGB in 0-1; ``metal`` selects the shiny look.

    >>> Solid("cube", (1.0, 0.0, 0.35), 0.35, yaw=0.5).bounding_radius > 0.35
    True
    """

    kind: str
    center: tuple[float, float, float]
    radius: float
    yaw: float = 0.0
    albedo: tuple[float, float, float] = (0.5, 0.5, 0.5)
    metal: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown solid kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def bounding_radius(self) -> float:
        """Radius of the smallest sphere about ``center`` that holds the solid."""
        return self.radius * {"sphere": 1.0, "cube": math.sqrt(3.0), "cylinder": math.sqrt(2.0)}[self.kind]

    def corners(self) -> np.ndarray:
        """(8, 3) world-space corners of a box that holds the solid (exact for a cube)."""
        r = self.radius
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        local = signs * r
        if self.kind == "cube":
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            local = np.stack([c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]], 1)
        return local + np.asarray(self.center)


def _to_local(solid: Solid, x, y, z, *, is_direction: bool = False):
    """Coordinates in the solid's frame: centred on it (unless a direction) and turned back by its yaw."""
    if not is_direction:
        cx, cy, cz = solid.center
        x, y, z = x - cx, y - cy, z - cz
    if solid.kind != "cube" or solid.yaw == 0.0:
        return x, y, z
    c, s = math.cos(solid.yaw), math.sin(solid.yaw)
    return c * x + s * y, c * y - s * x, z


def hit_distance(solid: Solid, origin, direction) -> np.ndarray:
    """Distance along each unit ``direction`` from ``origin`` to the solid's surface; ``inf`` where it misses.

    >>> ray = tuple(np.array([v], np.float32) for v in (-1.0, 0.0, 0.0))
    >>> float(hit_distance(Solid("cube", (0.0, 0.0, 0.5), 0.5), (3.0, 0.0, 0.5), ray)[0])
    2.5
    """
    ox, oy, oz = _to_local(solid, *origin)
    dx, dy, dz = _to_local(solid, *direction, is_direction=True)
    r = solid.radius
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if solid.kind == "sphere":
            b = ox * dx + oy * dy + oz * dz
            disc = b * b - (ox * ox + oy * oy + oz * oz - r * r)
            near = -b - np.sqrt(np.maximum(disc, 0.0))
            inside = disc >= 0.0
        else:
            if solid.kind == "cylinder":
                # Infinite upright cylinder, then clipped by the two cap planes (slabs).
                a = np.maximum(dx * dx + dy * dy, 1e-12)
                b = ox * dx + oy * dy
                disc = b * b - a * (ox * ox + oy * oy - r * r)
                root = np.sqrt(np.maximum(disc, 0.0))
                near, far = (-b - root) / a, (-b + root) / a
                inside = disc >= 0.0
            else:
                near, far = _slab(ox, dx, r)
                lo, hi = _slab(oy, dy, r)
                near, far, inside = np.maximum(near, lo), np.minimum(far, hi), True
            lo, hi = _slab(oz, dz, r)
            near, far = np.maximum(near, lo), np.minimum(far, hi)
            inside = inside & (near <= far)
    return np.where(inside & (near > EPS), near, MISS).astype(np.float32, copy=False)


def _slab(o, d, half):
    """Entry and exit distances of rays through the slab -half <= x <= half."""
    inv = 1.0 / d
    t0, t1 = (-half - o) * inv, (half - o) * inv
    return np.minimum(t0, t1), np.maximum(t0, t1)


def _core_offset(solid: Solid, x, y, z):
    """Vector from the nearest point of the solid's bevel core to the local point (x, y, z)."""
    if solid.kind == "sphere":
        return x, y, z
    inner = solid.radius * (1.0 - BEVEL[solid.kind])
    if solid.kind == "cube":
        return x - np.clip(x, -inner, inner), y - np.clip(y, -inner, inner), z - np.clip(z, -inner, inner)
    radial = np.sqrt(x * x + y * y) + 1e-12
    shrink = 1.0 - np.minimum(radial, inner) / radial
    return x * shrink, y * shrink, z - np.clip(z, -inner, inner)


def surface_normal(solid: Solid, point):
    """Unit outward normals at world ``point`` s on the solid's surface, with rounded edges for cubes/cylinders.

    >>> n = surface_normal(Solid("sphere", (0.0, 0.0, 1.0), 1.0), tuple(np.array([v], np.float32) for v in (0, 0, 2)))
    >>> [float(c[0]) for c in n]
    [0.0, 0.0, 1.0]
    """
    x, y, z = _core_offset(solid, *_to_local(solid, *point))
    inv = 1.0 / np.sqrt(x * x + y * y + z * z + 1e-12)
    x, y, z = x * inv, y * inv, z * inv
    if solid.kind == "cube" and solid.yaw != 0.0:
        c, s = math.cos(solid.yaw), math.sin(solid.yaw)
        x, y = c * x - s * y, s * x + c * y
    return x, y, z


def signed_distance(solid: Solid, point) -> np.ndarray:
    """Distance from world ``point`` s to the solid's surface, negative inside (exact for the sharp solids).

    >>> float(signed_distance(Solid("cube", (0.0, 0.0, 1.0), 1.0), (np.float32(3.0), 0.0, 1.0)))
    2.0
    """
    x, y, z = _to_local(solid, *point)
    r = solid.radius
    if solid.kind == "sphere":
        return np.sqrt(x * x + y * y + z * z) - r
    qz = np.abs(z) - r
    if solid.kind == "cylinder":
        qr = np.sqrt(x * x + y * y) - r
        outside = np.sqrt(np.maximum(qr, 0.0) ** 2 + np.maximum(qz, 0.0) ** 2)
        return outside + np.minimum(np.maximum(qr, qz), 0.0)
    qx, qy = np.abs(x) - r, np.abs(y) - r
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2 + np.maximum(qz, 0.0) ** 2)
    return outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0)
