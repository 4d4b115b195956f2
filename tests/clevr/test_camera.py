import json

import numpy as np
import pytest

from filmkit.clevr.camera import Camera, lights_from_scene
from filmkit.clevr.properties import load_properties


def test_origin_projects_to_image_centre_at_any_resolution():
    for width, height in [(480, 320), (128, 128), (64, 48)]:
        x, y, depth = Camera.base(width, height).project([[0.0, 0.0, 0.0]])[0]
        assert x == pytest.approx(width / 2) and y == pytest.approx(height / 2)
        assert depth == pytest.approx(np.linalg.norm([7.481, -6.508, 5.344]))


def test_projection_orientation_and_focal_length():
    cam = Camera.base(480, 320)
    assert cam.focal_px == pytest.approx(525.0)
    right, up, forward = cam.axes()
    # One unit to the right of the origin, seen from the origin's depth, lands focal_px * 1/depth pixels right.
    x, y, depth = cam.project([right])[0]
    assert x == pytest.approx(240 + 525.0 / depth) and y == pytest.approx(160)
    # Up in the world is up in the image: smaller pixel y.
    assert cam.project([[0.0, 0.0, 1.0]])[0, 1] < 160


def test_ray_directions_pass_through_projected_points():
    cam = Camera.base(64, 48).jittered(np.random.default_rng(3), 0.5)
    point = np.array([1.2, -0.7, 0.35])
    x, y, _ = cam.project([point])[0]
    d = np.concatenate(cam.ray_directions(np.array([x]), np.array([y])))
    to_point = point - np.array(cam.location)
    assert np.allclose(d, to_point / np.linalg.norm(to_point), atol=1e-5)


def test_base_camera_directions_match_released_clevr():
    dirs = Camera.base().ground_directions()
    assert dirs["behind"] == pytest.approx((-0.7545, 0.6563, 0.0), abs=1e-4)
    assert dirs["left"] == pytest.approx((-0.6563, -0.7545, 0.0), abs=1e-4)
    assert dirs["front"] == pytest.approx((0.7545, -0.6563, 0.0), abs=1e-4)
    assert dirs["right"] == pytest.approx((0.6563, 0.7545, 0.0), abs=1e-4)
    assert dirs["above"] == (0.0, 0.0, 1.0) and dirs["below"] == (0.0, 0.0, -1.0)


def test_pixel_coords_round_like_released_data():
    cam = Camera.base(480, 320)
    for point in ([1.0, 2.0, 0.35], [-2.2, 0.4, 0.7], [2.9, -2.9, 0.35]):
        x, y, depth = cam.project([point])[0]
        px, py, pz = cam.pixel_coords(point)
        assert isinstance(px, int) and isinstance(py, int)
        assert abs(px - x) <= 0.5 and abs(py - y) <= 0.5 and pz == pytest.approx(depth)


def test_camera_estimated_from_pixel_coords_recovers_jittered_location():
    rng = np.random.default_rng(7)
    true = Camera.base(480, 320).jittered(rng, 0.5)
    objects = []
    for _ in range(5):
        r = float(rng.choice([0.35, 0.7]))
        xyz = [float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)), r]
        objects.append({"3d_coords": xyz, "pixel_coords": true.pixel_coords(xyz)})
    estimated = Camera.from_scene({"objects": objects}, 128, 128)
    assert np.linalg.norm(np.subtract(estimated.location, true.location)) < 0.02
    assert np.linalg.norm(np.subtract(estimated.location, Camera.base().location)) > 0.1  # it did move
    assert (estimated.width, estimated.height) == (128, 128)


# Objects of the released CLEVR_val_000000 scene: 3d_coords and pixel_coords (480x320, depth) as published.
RELEASED_VAL_0 = [
    ([-1.4937210083007812, -1.9936031103134155, 0.699999988079071], [119, 131, 10.801968574523926]),
    ([1.555708646774292, -2.104736566543579, 0.699999988079071], [198, 190, 8.60103988647461]),
    ([-2.342184543609619, -0.5205014944076538, 0.3499999940395355], [161, 118, 12.372727394104004]),
    ([-0.8073106408119202, 1.914123773574829, 0.699999988079071], [282, 100, 12.495001792907715]),
    ([2.6763813495635986, 0.03453871235251427, 0.3499999940395355], [337, 195, 9.161211967468262]),
]


def test_camera_fit_explains_a_released_scene():
    scene = {"objects": [{"3d_coords": xyz, "pixel_coords": pc} for xyz, pc in RELEASED_VAL_0]}
    points, observed = np.array([o[0] for o in RELEASED_VAL_0]), np.array([o[1] for o in RELEASED_VAL_0])
    base_error = np.abs(Camera.base().project(points)[:, :2] - observed[:, :2]).max()
    fitted = Camera.from_scene(scene, 480, 320)
    projected = fitted.project(points)
    # The base camera is pixels off; the fitted (jittered, origin-tracking) camera explains every rounded pixel
    # position and every depth.
    assert base_error > 3
    assert np.abs(projected[:, :2] - observed[:, :2]).max() <= 0.5
    assert np.abs(projected[:, 2] - observed[:, 2]).max() < 1e-5
    assert [fitted.pixel_coords(p)[:2] for p in points] == observed[:, :2].astype(int).tolist()


def test_camera_from_scene_prefers_stored_camera_and_falls_back_to_base():
    stored = {"objects": [], "camera": {"location": [7.0, -6.0, 5.5], "look_at": [0.1, 0.0, 0.0]}}
    cam = Camera.from_scene(stored, 64, 48)
    assert cam.location == (7.0, -6.0, 5.5) and cam.look_at == (0.1, 0.0, 0.0)
    one_object = {"objects": [{"3d_coords": [0, 0, 0.7], "pixel_coords": [10, 10, 5.0]}]}
    assert Camera.from_scene(one_object, 64, 48).location == Camera.base().location


def test_lights_from_scene_uses_stored_lights_or_base_rig():
    props = load_properties()
    assert lights_from_scene({"objects": []}, props) == props.lights.sources
    moved = [light.jittered(np.random.default_rng(0), 1.0).to_json() for light in props.lights.sources]
    lights = lights_from_scene({"objects": [], "lights": json.loads(json.dumps(moved))})
    assert [light.location for light in lights] == [tuple(m["location"]) for m in moved]
    assert lights[0].location != props.lights.sources[0].location


def test_any_resolution_shows_the_clevr_frame():
    # A 128x128 image is the 480x320 view squeezed: every point lands at the same relative position.
    points = np.array([[0.0, 0.0, 0.0], [2.5, -1.0, 0.7], [-3.0, 2.0, 0.35]])
    wide = Camera.base(480, 320).project(points)
    square = Camera.base(128, 128).project(points)
    np.testing.assert_allclose(square[:, 0], wide[:, 0] * 128 / 480, atol=1e-9)
    np.testing.assert_allclose(square[:, 1], wide[:, 1] * 128 / 320, atol=1e-9)
