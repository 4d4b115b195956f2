import json

import pytest

from filmkit.clevr.properties import load_properties


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
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_properties(path)
