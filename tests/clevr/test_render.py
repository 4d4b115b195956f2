import colorsys
import json

import numpy as np
import pytest
from PIL import Image

from filmkit.clevr import render as render_module
from filmkit.clevr.camera import Camera
from filmkit.clevr.geometry import Solid, hit_distance, signed_distance, surface_normal
from filmkit.clevr.properties import load_properties
from filmkit.clevr.render import render_masks, render_scene, save_png


def test_default_properties_are_the_clevr_world():
    props = load_properties()
    assert props.colors["red"] == (173, 35, 35) and props.colors["yellow"] == (255, 238, 51)
    assert len(props.colors) == 8
    assert props.sizes == {"large": 0.7, "small": 0.35}
    assert set(props.shapes) == {"cube", "sphere", "cylinder"} and set(props.materials) == {"rubber", "metal"}
    assert props.camera.location == (7.481, -6.508, 5.344) and props.camera.jitter == 0.5
    assert [(s.name, s.size) for s in props.lights.sources] == [("key", 0.5), ("fill", 0.5), ("back", 1.0)]


def _write(tmp_path, mutate):
    raw = json.loads(
        json.dumps(
            {
                "shapes": {"cube": "SmoothCube_v2"},
                "colors": {"red": [173, 35, 35]},
                "materials": {"rubber": "Rubber"},
                "sizes": {"large": 0.7},
            }
        )
    )
    mutate(raw)
    path = tmp_path / "properties.json"
    path.write_text(json.dumps(raw))
    return path


def test_minimal_file_gets_default_camera_and_lights(tmp_path):
    props = load_properties(_write(tmp_path, lambda raw: None))
    assert props.shapes == {"cube": "SmoothCube_v2"}
    assert props.camera.focal_mm == 35.0 and len(props.lights.sources) == 3


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda raw: raw["colors"].update(red=[300, 0, 0]), "colors.red must be 3 integers 0-255"),
        (lambda raw: raw["colors"].update(red=[1, 2]), "colors.red must be 3 integers 0-255"),
        (lambda raw: raw["sizes"].update(large=-1), "sizes.large must be a positive number"),
        (lambda raw: raw.pop("materials"), "materials is missing"),
        (lambda raw: raw.update(camera={"location": [1, 2]}), "camera.location must be 3 numbers"),
        (lambda raw: raw.update(lights={"sources": [{"location": [0, 0, 1]}]}), "lights.sources[0].size is missing"),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path, mutate, field):
    path = _write(tmp_path, mutate)
    with pytest.raises(ValueError) as info:
        load_properties(path)
    assert str(info.value) == f"{path}: {field}"


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: line 1, column 2: malformed JSON"):
        load_properties(path)


# --- rendering -------------------------------------------------------------------------------------------------

PROPS = load_properties()
W, H = 64, 48


def _obj(shape="sphere", size="large", material="rubber", color="blue", xyz=(0.0, 0.0, 0.7), rotation=0.0):
    return {
        "shape": shape,
        "size": size,
        "material": material,
        "color": color,
        "3d_coords": list(xyz),
        "rotation": rotation,
    }


def _scene(*objects):
    return {"objects": list(objects)}


MIXED = _scene(
    _obj("cube", "large", "metal", "red", (-1.5, 1.0, 0.7), 33.0),
    _obj("sphere", "small", "rubber", "yellow", (1.2, -1.4, 0.35)),
    _obj("cylinder", "large", "rubber", "cyan", (1.8, 1.6, 0.7)),
    _obj("sphere", "large", "metal", "gray", (-0.6, -1.8, 0.7)),
)


def test_render_shapes_and_types_at_any_resolution():
    for width, height in [(W, H), (37, 23), (32, 32)]:
        result = render_scene(MIXED, PROPS, width, height)
        assert result.image.shape == (height, width, 3) and result.image.dtype == np.uint8
        assert result.masks.shape == (height, width) and result.masks.dtype == np.int16
        assert set(np.unique(result.masks)) <= {-1, 0, 1, 2, 3}


def test_sphere_centre_projects_inside_its_mask():
    cam = Camera.base(W, H)
    for xyz in [(0.0, 0.0, 0.7), (2.0, -1.0, 0.7), (-2.5, 2.0, 0.7)]:
        masks = render_masks(_scene(_obj(xyz=xyz)), PROPS, W, H)
        x, y, _ = cam.project([xyz])[0]
        assert masks[int(y), int(x)] == 0
        assert (masks == 0).sum() > 20 and (masks == -1).sum() > 0.5 * W * H


def test_render_masks_equal_render_scene_masks():
    for supersample in (1, 2, 3):
        result = render_scene(MIXED, PROPS, W, H, supersample=supersample)
        np.testing.assert_array_equal(result.masks, render_masks(MIXED, PROPS, W, H))
    assert len(np.unique(result.masks)) == 5  # ground and all four objects are visible


def test_nearer_object_hides_farther_one():
    cam = Camera.base(W, H)
    right, _, forward = cam.axes()
    near = np.array(cam.location) + forward * 6.0
    far = np.array(cam.location) + forward * 13.0
    near[2], far[2] = 0.7, 0.7
    masks = render_masks(_scene(_obj(xyz=far), _obj(xyz=near)), PROPS, W, H)
    x, y, _ = cam.project([near])[0]
    assert masks[int(y), int(x)] == 1
    assert (masks == 0).sum() < (masks == 1).sum()


def test_cube_rotation_changes_its_silhouette():
    still = render_masks(_scene(_obj("cube")), PROPS, W, H)
    turned = render_masks(_scene(_obj("cube", rotation=45.0)), PROPS, W, H)
    assert (still != turned).sum() > 10
    # A quarter turn maps a cube onto itself.
    np.testing.assert_array_equal(still, render_masks(_scene(_obj("cube", rotation=90.0)), PROPS, W, H))


def test_rendering_is_deterministic_and_png_bytes_reproducible(tmp_path):
    first, second = render_scene(MIXED, PROPS, W, H), render_scene(MIXED, PROPS, W, H)
    np.testing.assert_array_equal(first.image, second.image)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    save_png(a, first.image)
    save_png(b, second.image)
    assert a.read_bytes() == b.read_bytes()
    np.testing.assert_array_equal(np.asarray(Image.open(a)), first.image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temporary files left behind


def test_save_png_replaces_existing_file_and_rejects_bad_arrays(tmp_path):
    path = tmp_path / "img.png"
    save_png(path, np.zeros((4, 5, 3), np.uint8))
    save_png(path, np.full((4, 5, 3), 200, np.uint8))
    assert np.asarray(Image.open(path))[0, 0].tolist() == [200, 200, 200]
    with pytest.raises(ValueError, match="uint8"):
        save_png(path, np.zeros((4, 5, 3), np.float32))


@pytest.mark.parametrize(
    "field, value", [("color", "pink"), ("shape", "cone"), ("size", "huge"), ("material", "glass")]
)
def test_unknown_object_property_names_object_and_field(field, value):
    bad = _obj()
    bad[field] = value
    with pytest.raises(ValueError, match=rf"object 1: unknown {field} '{value}'"):
        render_scene(_scene(_obj(), bad), PROPS, W, H)
    with pytest.raises(ValueError, match=rf"object 1: unknown {field}"):
        render_masks(_scene(_obj(), bad), PROPS, W, H)


def _hue(rgb):
    return colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))


@pytest.mark.parametrize("color", ["red", "blue", "green", "brown", "purple", "cyan", "yellow"])
def test_rubber_object_shows_its_palette_hue(color):
    result = render_scene(_scene(_obj(color=color)), PROPS, W, H)
    mean = result.image[result.masks == 0].mean(axis=0)
    hue, sat, _ = _hue(mean)
    want_hue, want_sat, _ = _hue(PROPS.colors[color])
    distance = min(abs(hue - want_hue), 1 - abs(hue - want_hue)) * 360
    assert distance < 12, (color, mean)
    assert sat > 0.5 * want_sat


def test_gray_rubber_stays_gray_and_ground_is_light_gray():
    result = render_scene(_scene(_obj(color="gray")), PROPS, W, H)
    obj, ground = result.image[result.masks == 0].mean(axis=0), result.image[result.masks == -1].mean(axis=0)
    assert np.ptp(obj) < 3 and np.ptp(ground) < 3
    assert 90 < ground.mean() < 200 and obj.mean() < ground.mean()


def test_metal_shows_brighter_highlight_than_rubber():
    peaks = {}
    for material in ("rubber", "metal"):
        result = render_scene(_scene(_obj(material=material, color="blue")), PROPS, W, H)
        luminance = result.image.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        peaks[material] = luminance[result.masks == 0].max()
    assert peaks["metal"] > peaks["rubber"] + 40


def test_metal_mirrors_a_neighbour():
    neighbour = _obj("cube", "large", "rubber", "yellow", (0.0, 1.8, 0.7))
    plain = render_scene(_scene(_obj(material="metal", color="gray")), PROPS, W, H)
    mirrored = render_scene(_scene(_obj(material="metal", color="gray"), neighbour), PROPS, W, H)
    on_sphere = plain.masks == 0
    changed = np.abs(plain.image.astype(int) - mirrored.image.astype(int)).sum(axis=2)[
        on_sphere & (mirrored.masks == 0)
    ]
    assert (changed > 30).sum() >= 3  # some sphere pixels now show the yellow cube


def test_shadows_darken_the_ground_behind_objects_only_when_enabled():
    scene = _scene(_obj())
    lit = render_scene(scene, PROPS, W, H, shadows=False).image.astype(int)
    shaded = render_scene(scene, PROPS, W, H, shadows=True)
    ground = shaded.masks == -1
    darker = (lit - shaded.image.astype(int)).sum(axis=2)
    assert darker[ground].max() > 60 and darker.min() >= 0
    # The key light stands right of the camera, so the strongest shadow falls left of the sphere.
    ys, xs = np.nonzero(ground & (darker > 30))
    assert xs.mean() < Camera.base(W, H).project([[0, 0, 0.7]])[0, 0]


@pytest.mark.parametrize("kind", ["sphere", "cube", "cylinder"])
def test_ray_hits_lie_on_the_surface_with_outward_normals(kind):
    solid = Solid(kind, (0.4, -0.3, 0.7), 0.7, yaw=0.6)
    rng = np.random.default_rng(0)
    origin = np.array([6.0, -5.0, 4.0])
    aim = np.array(solid.center) + rng.uniform(-0.9, 0.9, size=(500, 3))
    direction = (aim - origin) / np.linalg.norm(aim - origin, axis=1, keepdims=True)
    d = tuple(direction[:, k].astype(np.float32) for k in range(3))
    t = hit_distance(solid, tuple(origin), d)
    hit = np.isfinite(t)
    assert 50 < hit.sum() < 500  # some rays hit, some pass by
    point = tuple((origin[k] + t[hit] * d[k][hit]).astype(np.float32) for k in range(3))
    assert np.abs(signed_distance(solid, point)).max() < 1e-4
    normal = np.stack(surface_normal(solid, point))
    assert np.allclose(np.linalg.norm(normal, axis=0), 1.0, atol=1e-4)
    outward = (normal * (np.stack(point) - np.array(solid.center)[:, None])).sum(axis=0)
    assert outward.min() > 0
    facing = (normal * np.stack([dk[hit] for dk in d])).sum(axis=0)
    assert (facing < 0).mean() > 0.95  # visible surfaces face the viewer, bar a few rounded silhouette edges
    assert signed_distance(solid, tuple(np.float32(c) for c in solid.center)) == pytest.approx(-0.7)


def test_screen_rectangles_only_skip_work_never_change_pixels(monkeypatch):
    rng = np.random.default_rng(5)
    cam = Camera.base(W, H).jittered(rng, 0.5)
    lights = PROPS.lights.jittered(rng)
    culled = render_scene(MIXED, PROPS, W, H, camera=cam, lights=lights).image

    def whole_frame(camera, factor):
        return lambda points: (slice(0, camera.height * factor), slice(0, camera.width * factor))

    monkeypatch.setattr(render_module, "_rect_finder", whole_frame)
    np.testing.assert_array_equal(render_scene(MIXED, PROPS, W, H, camera=cam, lights=lights).image, culled)
