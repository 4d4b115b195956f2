"""Lighting for the CLEVR look: three soft area lights, a weak sun, sky ambient, mirror-like metal, tone mapping.

Radiance is linear RGB; 1.0 shows as the palette colour of a rubber face turned to the lights. Everything works on
float32 buffers, one per component, at the supersampled resolution:

* ground: diffuse, computed for the whole frame (most pixels are ground);
* soft shadows: for each light and occluder, only inside the screen rectangle its shadow can reach; a shadow ray
  whose closest approach to the occluder's bounding sphere clears the light's cone is skipped, and for the rest
  the ratio of the occluder's signed distance to the cone radius, minimised along the ray, gives the visible
  fraction of the light (noise-free penumbrae, one pass, no random rays);
* ambient occlusion: analytic, from each object's bounding sphere, darkens contacts and the ground beneath;
* objects: diffuse plus a glossy highlight (weak for rubber, strong for metal), on the object pixels only;
* metal: one mirror bounce against the objects, the ground and a gray sky gradient, shaded without shadows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from filmkit.clevr.geometry import Solid, hit_distance, signed_distance, surface_normal
from filmkit.clevr.properties import Light

Rect = tuple[slice, slice]

GROUND_ALBEDO = 0.22
FALLOFF_DISTANCE = 7.5  # a light delivers its nominal energy at this distance
SKY_AMBIENT = 0.22  # light from the surroundings, reaching up-facing surfaces
BOUNCE_AMBIENT = 0.06  # the same from the ground, reaching down-facing surfaces
AO_RANGE = 4.0  # ambient occlusion of an object fades out at this many radii from its centre
SOFTNESS = 0.6  # the penumbra is that of a round light of radius SOFTNESS * size
SKY_ZENITH = 0.25  # radiance of the sky overhead, as mirrored by metal
# Highlight lobes are cos^(2^k) of the half-vector angle, computed by k squarings (np.power is slow).
RUBBER_SHEEN, RUBBER_SQUARINGS = 0.08, 4  # cos^16: a broad, dull sheen
METAL_DIFFUSE, METAL_MIRROR, METAL_HIGHLIGHT, METAL_SQUARINGS = 0.12, 0.85, 2.5, 7  # cos^128: a tight glint


@dataclass
class Hits:
    """Visible surface per sample: ray directions, hit positions and object ids (-1 for the ground)."""

    direction: tuple[np.ndarray, np.ndarray, np.ndarray]
    position: tuple[np.ndarray, np.ndarray, np.ndarray]
    ids: np.ndarray
    sky: np.ndarray | None  # True where the ray leaves the scene; None when no ray does


def srgb_to_linear(rgb: Sequence[float]) -> tuple[float, float, float]:
    """Linear 0-1 values of an sRGB triple given 0-255, so palette colours display as themselves.

    >>> [round(c, 3) for c in srgb_to_linear((255, 128, 0))]
    [1.0, 0.216, 0.0]
    """
    out = []
    for value in rgb:
        c = value / 255.0
        out.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    return tuple(out)  # type: ignore[return-value]


def _light_vectors(light: Light, x, y, z):
    """Unit vectors from points towards the light's centre, the distances, and the light's strength there.

    The strength falls off with distance (as d^-1.5, gentler than a point light's inverse square, so the far ground
    fades without going black) and, as for a flat emitter aimed at the origin, with the cosine between the
    light's aim and the direction to the point.
    """
    lx, ly, lz = light.location
    ux, uy, uz = lx - x, ly - y, lz - z
    d2 = ux * ux + uy * uy + uz * uz
    inv = 1.0 / np.sqrt(d2)
    ux, uy, uz = ux * inv, uy * inv, uz * inv
    ax, ay, az = (c / math.sqrt(lx * lx + ly * ly + lz * lz) for c in (lx, ly, lz))  # from origin to light
    aim = np.maximum(ux * ax + uy * ay + uz * az, 0.0)
    near = FALLOFF_DISTANCE * inv
    strength = light.energy * aim * near * np.sqrt(near)
    return (ux, uy, uz), d2 * inv, strength


def _smoothstep01(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def soft_visibility(solid: Solid, light: Light, point, toward, distance) -> np.ndarray:
    """Visible fraction (0-1) of ``light`` from each point, as occluded by ``solid`` alone.

    ``toward`` are unit vectors from the points to the light's centre and ``distance`` its distance.

    >>> ball, lamp = Solid("sphere", (0.0, 0.0, 1.0), 1.0), Light("top", (0.0, 0.0, 6.0), 0.5)
    >>> x, y, z = np.array([0.0, 3.0], np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> up = (np.zeros(2, np.float32), np.zeros(2, np.float32), np.ones(2, np.float32))
    >>> soft_visibility(ball, lamp, (x, y, z), up, np.full(2, 6.0, np.float32)).tolist()  # under it; beside it
    [0.0, 1.0]
    """
    px, py, pz = point
    ux, uy, uz = toward
    cx, cy, cz = solid.center
    radius = SOFTNESS * light.size
    bound = solid.bounding_radius
    ox, oy, oz = cx - px, cy - py, cz - pz
    along = np.clip(ox * ux + oy * uy + oz * uz, 0.0, distance)
    qx, qy, qz = ox - along * ux, oy - along * uy, oz - along * uz
    reach = bound + radius * along / distance
    maybe = (qx * qx + qy * qy + qz * qz) < reach * reach
    visible = np.ones(maybe.shape, dtype=np.float32)
    if not maybe.any():
        return visible
    p = (px[maybe], py[maybe], pz[maybe])
    u = (ux[maybe], uy[maybe], uz[maybe])
    dist, centre = distance[maybe], along[maybe]

    def ratio(t):
        t = np.clip(t, 1e-3, dist)
        sdf = signed_distance(solid, (p[0] + t * u[0], p[1] + t * u[1], p[2] + t * u[2]))
        return sdf / (radius * t / dist + 1e-3)

    # The signed distance along a line is convex for a convex solid: a coarse scan, then a finer one about the
    # best coarse sample, finds its minimum closely enough for a smooth penumbra.
    best_t, best = centre, ratio(centre)
    for scale, offsets in ((bound, (-0.66, 0.66)), (bound * 0.33, (-1.0, 1.0))):
        start = best_t
        for offset in offsets:
            t = start + offset * scale
            value = ratio(t)
            better = value < best
            best, best_t = np.where(better, value, best), np.where(better, t, best_t)
    visible[maybe] = _smoothstep01(0.5 + 0.5 * best)
    return visible


def _occlusion(solid: Solid, point, normal):
    """Fraction of the ambient light that ``solid`` (as its bounding sphere) hides from each point."""
    cx, cy, cz = solid.center
    vx, vy, vz = cx - point[0], cy - point[1], cz - point[2]
    d2 = vx * vx + vy * vy + vz * vz + 1e-6
    inv = 1.0 / np.sqrt(d2)
    cosine = np.maximum((normal[0] * vx + normal[1] * vy + normal[2] * vz) * inv, 0.0)
    size = solid.bounding_radius * 0.85  # a cube or cylinder hides less than its bounding sphere
    fade = np.maximum(1.0 - d2 / (AO_RANGE * solid.radius) ** 2, 0.0)
    return np.minimum(size * size / d2, 1.0) * cosine * fade * fade


def sky_radiance(dz, sun: float):
    """Gray sky seen by rays of vertical component ``dz``, lighter overhead.

    At the horizon it equals the far ground, which only the ambient light and the sun still reach, so the ground
    fades into the sky without a visible horizon line.

    >>> bool(sky_radiance(np.float32(1.0), 0.15) > sky_radiance(np.float32(0.0), 0.15))
    True
    """
    horizon = GROUND_ALBEDO * (SKY_AMBIENT + sun)
    return horizon + (SKY_ZENITH - horizon) * np.clip(dz, 0.0, 1.0)


def shade(
    hits: Hits,
    solids: Sequence[Solid],
    lights: Sequence[Light],
    sun: float,
    shadows: bool,
    rect_of: Callable[[np.ndarray], Rect | None],
) -> np.ndarray:
    """Linear radiance (3, H, W) of every sample; ``rect_of`` maps world points to the screen rectangle they span."""
    px, py, pz = hits.position
    shape = px.shape
    light_data = [_light_vectors(light, px, py, pz) for light in lights]

    visibility = [np.ones(shape, dtype=np.float32) for _ in lights]
    if shadows:
        for light, vis, (toward, dist, _) in zip(lights, visibility, light_data, strict=True):
            for k, solid in enumerate(solids):
                rect = rect_of(shadow_hull(solid, light))
                if rect is None:
                    continue
                own = hits.ids[rect] == k  # a convex solid never shadows itself beyond its terminator
                v = soft_visibility(solid, light, _cut(hits.position, rect), _cut(toward, rect), dist[rect])
                vis[rect] *= np.where(own, 1.0, v)

    # The ground everywhere first; object pixels are overwritten below.
    ambient = np.full(shape, SKY_AMBIENT, dtype=np.float32)
    up = (0.0, 0.0, 1.0)
    for solid in solids:
        rect = rect_of(_ground_square(solid))
        if rect is not None:
            ambient[rect] *= 1.0 - _occlusion(solid, _cut(hits.position, rect), up)
    irradiance = ambient + sun
    for vis, (toward, _, strength) in zip(visibility, light_data, strict=True):
        irradiance += strength * np.maximum(toward[2], 0.0) * vis
    ground = GROUND_ALBEDO * irradiance
    radiance = np.stack([ground, ground, ground])

    flat_ids = hits.ids.reshape(-1)
    pixels = np.flatnonzero(flat_ids >= 0)
    if pixels.size:
        take = [c.reshape(-1)[pixels] for c in (*hits.direction, *hits.position)]
        vis = [v.reshape(-1)[pixels] for v in visibility]
        colour = _shade_objects(flat_ids[pixels], take[:3], take[3:], vis, solids, lights, sun)
        for channel in range(3):
            radiance[channel].reshape(-1)[pixels] = colour[channel]
    if hits.sky is not None:
        radiance[:, hits.sky] = sky_radiance(hits.direction[2][hits.sky], sun)
    return radiance


def _cut(vector, rect: Rect):
    return tuple(c[rect] for c in vector)


def _ground_square(solid: Solid) -> np.ndarray:
    """Corners of the patch of ground an object's ambient occlusion reaches."""
    cx, cy, _ = solid.center
    reach = AO_RANGE * solid.radius
    return np.array([[cx + sx * reach, cy + sy * reach, 0.0] for sx in (-1, 1) for sy in (-1, 1)])


def shadow_hull(solid: Solid, light: Light) -> np.ndarray:
    """World points whose convex hull holds every point ``solid`` may shadow from ``light`` (soft edges included).

    The solid's corners are cast onto the ground from the corners of a box about the light as large as its cone;
    a light below the top of the solid can throw the shadow anywhere, which an infinite point signals.

    >>> hull = shadow_hull(Solid("cube", (0.0, 0.0, 0.5), 0.5), Light("top", (0.0, 0.0, 6.0), 0.5))
    >>> hull.shape, bool(np.all(hull[8:, 2] == 0.0))  # 8 corners, then 64 points cast onto the ground
    ((72, 3), True)
    """
    corners = solid.corners()
    radius = SOFTNESS * light.size
    offsets = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * radius
    sources = np.asarray(light.location) + offsets
    height = sources[:, None, 2] - corners[None, :, 2]
    if np.any(height <= 1e-3):
        return np.array([[np.inf, np.inf, np.inf]])
    scale = sources[:, None, 2] / height
    cast = sources[:, None, :] + (corners[None, :, :] - sources[:, None, :]) * scale[..., None]
    return np.concatenate([corners, cast.reshape(-1, 3)])


def _shade_objects(ids, direction, position, visibility, solids, lights, sun):
    """Radiance (3, N) of N object samples given their object ids, view directions, positions and light visibility."""
    normal = _normals(ids, position, solids)
    albedo = np.array([s.albedo for s in solids], dtype=np.float32)[ids].T
    metal = np.array([s.metal for s in solids])[ids]

    irradiance = _ambient(ids, position, normal, solids) + sun * np.maximum(normal[2], 0.0)
    sheen = np.zeros_like(irradiance)
    glint = np.zeros_like(irradiance)
    dx, dy, dz = direction
    for light, vis in zip(lights, visibility, strict=True):
        (ux, uy, uz), _, strength = _light_vectors(light, *position)
        lit = strength * vis
        irradiance += lit * np.maximum(normal[0] * ux + normal[1] * uy + normal[2] * uz, 0.0)
        # Blinn-Phong half vector between the light and the viewer.
        hx, hy, hz = ux - dx, uy - dy, uz - dz
        cos_h = (normal[0] * hx + normal[1] * hy + normal[2] * hz) / np.sqrt(hx * hx + hy * hy + hz * hz + 1e-12)
        cos_h = np.maximum(cos_h, 0.0)
        lobe = cos_h
        for step in range(METAL_SQUARINGS):
            lobe = lobe * lobe
            if step + 1 == RUBBER_SQUARINGS:
                sheen += lit * lobe
        glint += lit * lobe

    colour = albedo * irradiance + RUBBER_SHEEN * sheen
    if metal.any():
        m = np.flatnonzero(metal)
        mirrored = _reflect(
            ids[m], [c[m] for c in direction], [c[m] for c in position], [c[m] for c in normal], solids, lights, sun
        )
        tint = albedo[:, m]
        highlight = METAL_HIGHLIGHT * glint[m]
        colour[:, m] = (METAL_DIFFUSE * irradiance[m] + METAL_MIRROR * mirrored) * tint + highlight * (0.6 * tint + 0.4)
    return colour


def _normals(ids, position, solids):
    """Surface normals of object samples, computed object by object."""
    normal = [np.empty_like(position[0]) for _ in range(3)]
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(len(solids) + 1))
    for k, solid in enumerate(solids):
        idx = order[bounds[k] : bounds[k + 1]]
        if idx.size:
            for target, value in zip(normal, surface_normal(solid, [c[idx] for c in position]), strict=True):
                target[idx] = value
    return normal


def _ambient(ids, position, normal, solids):
    """Sky and ground-bounce ambient light reaching object samples, less what the other objects hide."""
    hemisphere = 0.5 + 0.5 * normal[2]
    ambient = BOUNCE_AMBIENT + (SKY_AMBIENT - BOUNCE_AMBIENT) * hemisphere
    for k, solid in enumerate(solids):
        ambient *= np.where(ids == k, 1.0, 1.0 - _occlusion(solid, position, normal))
    return ambient


def _reflect(ids, direction, position, normal, solids, lights, sun):
    """Radiance (3, N) seen by one mirror bounce off N metal samples (no shadows in the reflected scene)."""
    cos = direction[0] * normal[0] + direction[1] * normal[1] + direction[2] * normal[2]
    ray = tuple(d - 2.0 * cos * n for d, n in zip(direction, normal, strict=True))
    origin = tuple(p + 1e-3 * n for p, n in zip(position, normal, strict=True))

    with np.errstate(divide="ignore"):
        nearest = np.where(ray[2] < 0.0, -origin[2] / ray[2], np.inf).astype(np.float32)
    hit = np.full(ids.shape, -1, dtype=np.int16)
    for k, solid in enumerate(solids):
        t = hit_distance(solid, origin, ray)
        closer = (t < nearest) & (ids != k)
        nearest = np.where(closer, t, nearest)
        hit[closer] = k

    out = np.empty((3, ids.size), dtype=np.float32)
    sky = ~np.isfinite(nearest)
    out[:, sky] = sky_radiance(ray[2][sky], sun)
    ground = (hit < 0) & ~sky
    for mask, is_ground in ((ground, True), (hit >= 0, False)):
        if not mask.any():
            continue
        t = nearest[mask]
        point = tuple(o[mask] + t * r[mask] for o, r in zip(origin, ray, strict=True))
        if is_ground:
            n = (np.zeros_like(t), np.zeros_like(t), np.ones_like(t))
            ambient = np.full_like(t, SKY_AMBIENT)
            for solid in solids:
                ambient *= 1.0 - _occlusion(solid, point, n)
            albedo = np.full((3, t.size), GROUND_ALBEDO, dtype=np.float32)
        else:
            sub = hit[mask]
            n = _normals(sub, point, solids)
            ambient = _ambient(sub, point, n, solids)
            albedo = np.array([s.albedo for s in solids], dtype=np.float32)[sub].T
        irradiance = ambient + sun * np.maximum(n[2], 0.0)
        for light in lights:
            (ux, uy, uz), _, strength = _light_vectors(light, *point)
            irradiance += strength * np.maximum(n[0] * ux + n[1] * uy + n[2] * uz, 0.0)
        out[:, mask] = albedo * irradiance
    return out


def downsample(radiance: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter (3, H*f, W*f) to (3, H, W): the mean of each f x f block of samples.

    >>> downsample(np.arange(16, dtype=np.float32).reshape(1, 4, 4), 2).tolist()
    [[[2.5, 4.5], [10.5, 12.5]]]
    """
    if factor == 1:
        return radiance
    # Adding f*f strided views is many times faster than a reshaped mean over two axes.
    total = radiance[:, ::factor, ::factor].copy()
    for i in range(factor):
        for j in range(factor):
            if i or j:
                total += radiance[:, i::factor, j::factor]
    total *= 1.0 / (factor * factor)
    return total


def _tone_curve(size: int = 16384, top: float = 4.0) -> np.ndarray:
    """8-bit sRGB codes for linear radiance sampled on a square-root scale over [0, top] (fine near black)."""
    linear = (np.arange(size, dtype=np.float64) / (size - 1)) ** 2 * top
    knee = 0.8  # radiance above this rolls off softly towards white instead of clipping
    rolled = np.where(linear < knee, linear, knee + (1 - knee) * (1 - np.exp(-(linear - knee) / (1 - knee))))
    encoded = np.where(rolled <= 0.0031308, 12.92 * rolled, 1.055 * rolled ** (1 / 2.4) - 0.055)
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


_TONE = _tone_curve()
_TONE_TOP = 4.0


def tone_map(radiance: np.ndarray) -> np.ndarray:
    """(3, H, W) linear radiance to an (H, W, 3) uint8 sRGB image, highlights rolled off softly.

    >>> tone_map(np.full((3, 1, 1), 0.2159, np.float32)).ravel().tolist()
    [128, 128, 128]
    """
    index = np.sqrt(np.clip(radiance, 0.0, _TONE_TOP) * (1.0 / _TONE_TOP)) * (len(_TONE) - 1) + 0.5
    return np.ascontiguousarray(_TONE[index.astype(np.int32)].transpose(1, 2, 0))
