"""Scene-maps caches: the true scene per cell instead of pixels, built by `filmkit preprocess` and the trainer."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from fixtures import generated_micro_dataset

from filmkit.data.cache import questions_file
from filmkit.data.preprocess import preprocess
from filmkit.data.scene_maps import scene_map_channels, scene_map_features
from filmkit.train.config import TrainConfig
from filmkit.train.loop import Trainer
from filmkit.train.scene_supervision import ATTRIBUTES, attribute_names, target_maps


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory):
    return generated_micro_dataset(tmp_path_factory.mktemp("scene-maps"))


def test_each_cell_holds_objectness_then_one_hot_attributes_of_its_object():
    red_metal_cube = {"pixel_coords": [10, 10, 9.0], "color": "red", "shape": "cube", "material": "metal"}
    blue_rubber_sphere = {"pixel_coords": [470, 310, 9.0], "color": "blue", "shape": "sphere", "material": "rubber"}
    scene = {"objects": [{**red_metal_cube, "size": "large"}, {**blue_rubber_sphere, "size": "small"}]}
    maps = scene_map_features([scene], (4, 4))
    assert maps.shape == (1, scene_map_channels(), 4, 4) and maps.dtype == np.float32
    assert scene_map_channels() == 1 + sum(len(attribute_names()[a]) for a in ATTRIBUTES)
    assert maps[0, 0].sum() == 2 and maps[0, 0, 0, 0] == 1 and maps[0, 0, 3, 3] == 1
    names = [name for attribute in ATTRIBUTES for name in attribute_names()[attribute]]
    on_top_left = {names[channel - 1] for channel in np.flatnonzero(maps[0, 1:, 0, 0]) + 1}
    on_bottom_right = {names[channel - 1] for channel in np.flatnonzero(maps[0, 1:, 3, 3]) + 1}
    assert on_top_left == {"red", "cube", "metal", "large"}
    assert on_bottom_right == {"blue", "sphere", "rubber", "small"}
    assert maps[0, :, 1:3].sum() == 0  # empty cells are all zero


def test_preprocess_writes_each_images_scene_in_the_caches_row_order(micro_data, tmp_path):
    manifest = preprocess(micro_data, tmp_path / "maps", resolution=(8, 8), features="scene-maps")
    assert manifest["image_kind"] == "scene-maps"
    scenes = {
        s["image_index"]: s for s in json.loads((micro_data / "scenes" / "CLEVR_val_scenes.json").read_text())["scenes"]
    }
    with h5py.File(tmp_path / "maps" / "val_features.h5", "r") as handle:
        features = handle["features"][()]
    with h5py.File(questions_file(tmp_path / "maps", "val"), "r") as handle:
        rows, image_index = handle["image_idxs"][()], handle["image_index"][()]
    assert features.shape == (2, scene_map_channels(), 8, 8)
    for row, index in zip(rows, image_index, strict=True):  # every question's row is its own image's scene
        expected = scene_map_features([scenes[int(index)]], (8, 8))[0]
        assert np.array_equal(features[row], expected)
        assert features[row, 0].sum() == (target_maps([scenes[int(index)]], (8, 8))[0, 0] >= 0).sum() > 0


def test_a_dataset_without_scene_files_is_refused_by_name(micro_data, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(micro_data, copy)
    (copy / "scenes" / "CLEVR_train_scenes.json").unlink()
    with pytest.raises(ValueError, match=r"scene-maps needs the scene file .*CLEVR_train_scenes.json"):
        preprocess(copy, tmp_path / "maps", resolution=(8, 8), features="scene-maps")
    assert not (tmp_path / "maps").exists()  # refused before anything was written


def test_the_scene_maps_preset_trains_from_a_dataset_folder_it_caches_itself(micro_data, tmp_path):
    config = TrainConfig(
        preset="scene-maps",
        model={"embedding_dim": 8, "rnn_hidden_dim": 16, "module_dim": 8, "num_blocks": 2},
        batch_size=4,
        max_steps=4,
        val_every=4,
        val_subset=2,
        augment_shift=0,
        curves=False,
    )
    trainer = Trainer(config, micro_data, tmp_path / "run")
    assert trainer.cache == micro_data / ".filmkit" / "scene-maps-8x8"
    assert trainer.model_config.in_channels == scene_map_channels() and trainer.model_config.feature_map_size == (8, 8)
    result = trainer.run()
    assert result.steps == 4
