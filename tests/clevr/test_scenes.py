"""Scene sampling follows CLEVR's rules, and scene files are read, written and checked with clear errors."""

import json
import math

import numpy as np
import pytest

from filmkit.clevr.camera import Camera
from filmkit.clevr.properties import load_properties
from filmkit.clevr.render import render_masks
from filmkit.clevr.scene_json import SceneFileError, read_json, read_scenes, validate_scenes, write_scenes
from filmkit.clevr.scenes import (
    ConditionError,
    SamplingRules,
    SceneSamplingError,
    load_condition,
    object_pixel_counts,
    sample_scene,
)

PROPS = load_properties()
COGENT_A = {"cube": {"gray", "blue", "brown", "yellow"}, "cylinder": {"red", "green", "purple", "cyan"}}
COGENT_B = {"cube": COGENT_A["cylinder"], "cylinder": COGENT_A["cube"]}
# Visibility off: for tests about object attributes only, where rendering masks would only cost time.
NO_VISIBILITY = SamplingRules(min_pixels=0)


@pytest.fixture(scope="module")
def scenes():
    """Scenes sampled with the default rules (visibility included), as a reader would load them from JSON."""
    return [
        json.loads(json.dumps(sample_scene(np.random.default_rng(seed), PROPS, image_index=seed))) for seed in range(6)
    ]


def test_object_count_and_attributes_follow_the_rules(scenes):
    for scene in scenes:
        assert 3 <= len(scene["objects"]) <= 10
        for obj in scene["objects"]:
            x, y, z = obj["3d_coords"]
            assert -3 <= x <= 3 and -3 <= y <= 3
            assert z == PROPS.sizes[obj["size"]]  # resting on the ground: centre at z = r
            assert 0 <= obj["rotation"] < 360
            assert obj["shape"] in PROPS.shapes and obj["color"] in PROPS.colors
            assert obj["material"] in PROPS.materials


def test_object_count_range_is_configurable_and_inclusive():
    rules = SamplingRules(min_objects=2, max_objects=4, min_pixels=0)
    counts = {len(sample_scene(np.random.default_rng(seed), PROPS, rules)["objects"]) for seed in range(30)}
    assert counts == {2, 3, 4}


def test_objects_keep_min_distance_and_margin(scenes):
    for scene in scenes:
        objects = scene["objects"]
        for i, first in enumerate(objects):
            for second in objects[i + 1 :]:
                (x1, y1, r1), (x2, y2, r2) = first["3d_coords"], second["3d_coords"]
                assert math.hypot(x2 - x1, y2 - y1) - r1 - r2 >= 0.25
                for name in ("left", "right", "front", "behind"):
                    dx, dy, _ = scene["directions"][name]
                    along = (x2 - x1) * dx + (y2 - y1) * dy
                    assert not 0 < along < 0.4, (name, along)


def test_directions_are_the_base_cameras_as_in_the_released_data(scenes):
    # Released CLEVR stores the unjittered camera's directions in every scene (behind = (-0.7545, 0.6563, 0)).
    for scene in scenes:
        location = np.array(scene["camera"]["location"])
        assert np.all(np.abs(location - np.array(PROPS.camera.location)) <= 0.5)
        assert np.allclose(scene["directions"]["behind"], [-0.7545, 0.6563, 0.0], atol=1e-4)
        assert np.allclose(scene["directions"]["left"], [-0.6563, -0.7545, 0.0], atol=1e-4)
        assert np.allclose(scene["directions"]["front"], -np.array(scene["directions"]["behind"]))
        assert scene["directions"]["above"] == [0.0, 0.0, 1.0]
    assert len({tuple(scene["camera"]["location"]) for scene in scenes}) == len(scenes)


def test_lights_are_jittered_copies_of_the_rig(scenes):
    for scene in scenes:
        for light, base in zip(scene["lights"], PROPS.lights.sources, strict=True):
            assert light["name"] == base.name
            assert np.all(np.abs(np.subtract(light["location"], base.location)) <= 1.0)


def test_relationships_agree_with_coordinates(scenes):
    for scene in scenes:
        coords = [obj["3d_coords"] for obj in scene["objects"]]
        for relation in ("right", "behind", "front", "left"):
            direction = scene["directions"][relation]
            for i, ci in enumerate(coords):
                expected = [
                    j
                    for j, cj in enumerate(coords)
                    if j != i and sum((b - a) * d for a, b, d in zip(ci, cj, direction, strict=True)) > 0.2
                ]
                assert scene["relationships"][relation][i] == expected
        for i, lefts in enumerate(scene["relationships"]["left"]):
            assert all(i in scene["relationships"]["right"][j] for j in lefts)


def test_pixel_coords_are_the_480x320_projection_and_land_on_the_object(scenes):
    checked = 0
    for scene in scenes:
        camera = Camera.from_scene(scene, 480, 320, PROPS)
        masks = render_masks(scene, PROPS, 480, 320, camera=camera)
        for i, obj in enumerate(scene["objects"]):
            px, py, depth = obj["pixel_coords"]
            x, y, z = camera.project([obj["3d_coords"]])[0]
            assert (px, py) == (round(x), round(y)) and isinstance(px, int) and depth == pytest.approx(z)
            if not (0 <= px < 480 and 0 <= py < 320):
                continue
            owner = int(masks[py, px])
            # The centre shows the object itself, unless a nearer object stands in front of it.
            assert owner == i or scene["objects"][owner]["pixel_coords"][2] < depth
            checked += owner == i
    assert checked >= 20


def test_every_object_shows_the_minimum_pixels(scenes):
    rules = SamplingRules()
    for scene in scenes:
        assert rules.visibility_size == (480, 320) and rules.visibility_threshold() == 200
        assert min(object_pixel_counts(scene, PROPS, 480, 320)) >= 200
        # A smaller visibility pass scales the threshold by pixel area: the same objects pass it too (roughly).
        half = SamplingRules(visibility_size=(240, 160))
        assert min(object_pixel_counts(scene, PROPS, 240, 160)) >= 0.75 * half.visibility_threshold()


def test_hidden_objects_make_the_scene_resample():
    with pytest.raises(SceneSamplingError, match="hidden"):
        sample_scene(np.random.default_rng(0), PROPS, SamplingRules(min_pixels=10**6, max_restarts=2))


def test_same_random_stream_gives_the_same_scene():
    first = sample_scene(np.random.default_rng(7), PROPS, NO_VISIBILITY)
    again = sample_scene(np.random.default_rng(7), PROPS, NO_VISIBILITY)
    other = sample_scene(np.random.default_rng(8), PROPS, NO_VISIBILITY)
    assert json.dumps(first) == json.dumps(again) != json.dumps(other)


@pytest.mark.parametrize(("name", "allowed"), [("A", COGENT_A), ("B", COGENT_B)])
def test_cogent_conditions_never_produce_a_forbidden_pair(name, allowed):
    condition = load_condition(name, PROPS)
    seen = set()
    for seed in range(40):
        for obj in sample_scene(np.random.default_rng(seed), PROPS, NO_VISIBILITY, constraint=condition)["objects"]:
            seen.add((obj["shape"], obj["color"]))
            if obj["shape"] in allowed:
                assert obj["color"] in allowed[obj["shape"]], (name, obj)
    # Spheres stay free, and every allowed cube colour does occur.
    assert {color for shape, color in seen if shape == "sphere"} == set(PROPS.colors)
    assert {color for shape, color in seen if shape == "cube"} == allowed["cube"]


def test_a_condition_file_limits_shapes_and_colours(tmp_path):
    path = tmp_path / "only_red_balls.json"
    path.write_text('{"sphere": ["red"]}')
    condition = load_condition(str(path), PROPS)
    objects = sample_scene(np.random.default_rng(0), PROPS, NO_VISIBILITY, constraint=condition)["objects"]
    assert {(obj["shape"], obj["color"]) for obj in objects} == {("sphere", "red")}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"cube": ["pink"]}', r"bad\.json: cube\[0\]: unknown color 'pink'"),
        ('{"cone": ["red"]}', r"bad\.json: cone: unknown shape"),
        ('{"cube": []}', r"bad\.json: cube: expected a non-empty list"),
        ('{"cube": ["red",]}', r"bad\.json: line 1, column \d+: malformed JSON"),
    ],
)
def test_bad_condition_files_are_named_in_the_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConditionError, match=message):
        load_condition(str(path), PROPS)


def test_an_impossible_request_fails_with_a_reason_instead_of_looping():
    with pytest.raises(SceneSamplingError, match="no place.*fewer objects"):
        sample_scene(np.random.default_rng(0), PROPS, SamplingRules(min_objects=40, max_objects=40))


def test_empty_object_range_is_refused():
    with pytest.raises(ValueError, match="object count range 5..4"):
        SamplingRules(min_objects=5, max_objects=4)


# Scene files ------------------------------------------------------------------------------------------------

SCENE_FIELDS = {"split", "image_index", "image_filename", "objects", "directions", "relationships"}
OBJECT_FIELDS = {"shape", "size", "material", "color", "3d_coords", "rotation", "pixel_coords"}


def test_scene_json_schema_matches_clevr(scenes):
    for scene in scenes:
        assert set(scene) == SCENE_FIELDS | {"camera", "lights"}  # two extras so the scene re-renders exactly
        assert isinstance(scene["image_index"], int) and scene["image_filename"].endswith(".png")
        assert set(scene["directions"]) == {"behind", "front", "left", "right", "above", "below"}
        assert set(scene["relationships"]) == {"right", "behind", "front", "left"}
        for obj in scene["objects"]:
            assert set(obj) == OBJECT_FIELDS
            assert all(isinstance(v, str) for v in (obj["shape"], obj["size"], obj["material"], obj["color"]))
            assert len(obj["3d_coords"]) == 3 and isinstance(obj["rotation"], float)
            assert [type(v) for v in obj["pixel_coords"]] == [int, int, float]


def test_scene_files_round_trip(tmp_path, scenes):
    path = tmp_path / "CLEVR_val_scenes.json"
    write_scenes(path, scenes, info={"split": "val", "version": "1.0"})
    assert read_scenes(path) == {"info": {"split": "val", "version": "1.0"}, "scenes": scenes}
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed into place


def _broken(scenes, edit):
    document = {"info": {}, "scenes": json.loads(json.dumps(scenes))}
    edit(document["scenes"])
    return document


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s[3]["objects"][2].update(color="pink"), r"scenes\[3\]\.objects\[2\]\.color: unknown color 'pink'"),
        (lambda s: s[1]["objects"][0].update(shape="cone"), r"scenes\[1\]\.objects\[0\]\.shape: unknown shape 'cone'"),
        (lambda s: s[0].pop("image_index"), r"scenes\[0\]: missing field 'image_index'"),
        (lambda s: s[2].update(image_index="7"), r"scenes\[2\]\.image_index: expected an integer"),
        (
            lambda s: s[0]["objects"][1].update(pixel_coords=[1.5, 2, 3.0]),
            r"scenes\[0\]\.objects\[1\]\.pixel_coords: pixel x",
        ),
        (lambda s: s[4]["relationships"]["left"].pop(), r"scenes\[4\]\.relationships\.left: expected a list"),
    ],
)
def test_bad_scene_files_name_the_file_and_the_field(tmp_path, scenes, edit, message):
    path = tmp_path / "CLEVR_val_scenes.json"
    path.write_text(json.dumps(_broken(scenes, edit)))
    with pytest.raises(SceneFileError, match=rf"CLEVR_val_scenes\.json: {message}"):
        read_scenes(path)


def test_malformed_json_names_the_file_line_and_column(tmp_path):
    path = tmp_path / "CLEVR_val_scenes.json"
    path.write_text('{"info": {},\n "scenes": [\n  {"split": "val",, }]}')
    with pytest.raises(SceneFileError, match=r"CLEVR_val_scenes\.json: line 3, column 19: malformed JSON"):
        read_json(path)


def test_validation_reports_several_problems_at_once(scenes):
    document = _broken(scenes, lambda s: [obj.update(color="pink") for obj in s[0]["objects"]])
    with pytest.raises(SceneFileError) as error:
        validate_scenes(document, source="x.json")
    assert str(error.value).count("unknown color 'pink'") == len(scenes[0]["objects"])
