"""Training from scene graphs: scene supervision (per-cell targets aligned with the cache's images, trained with
FiLM) and the curriculum that orders the first epoch by the objects in each image."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from train_fixtures import TINY_MODEL, generated_micro_dataset, tiny_cache

from filmkit.data.cache import questions_file
from filmkit.data.dataset import CachedSplit
from filmkit.train.config import TrainConfig
from filmkit.train.loop import Trainer, TrainingError
from filmkit.train.scene_supervision import (
    ATTRIBUTES,
    EMPTY,
    attribute_names,
    scene_accuracy,
    scene_classes,
    scene_loss,
    split_scenes,
    split_targets,
    target_maps,
)
from filmkit.vqa import load_checkpoint


def obj(x, y, depth, color="red", shape="cube", material="metal", size="large"):
    return {"pixel_coords": [x, y, depth], "color": color, "shape": shape, "material": material, "size": size}


def index(attribute, value):
    return attribute_names()[attribute].index(value)


def test_each_object_names_the_cell_of_its_centre_in_480x320_units_and_the_nearer_one_wins():
    scenes = [
        {"objects": [obj(0, 0, 9.0), obj(479, 319, 9.0, color="blue", shape="sphere", size="small")]},
        # two centres in the cell (1, 1) of a 4x4 map (x 120-239, y 80-159): the nearer one (depth 5) names it
        {"objects": [obj(130, 90, 8.0, color="green"), obj(230, 150, 5.0, color="cyan", material="rubber")]},
    ]
    maps = target_maps(scenes, (4, 4))
    assert maps.shape == (2, len(ATTRIBUTES), 4, 4) and maps.dtype == np.int8
    red_metal_cube = [index("color", "red"), index("shape", "cube"), index("material", "metal"), index("size", "large")]
    assert list(maps[0, :, 0, 0]) == red_metal_cube
    assert maps[0, 0, 3, 3] == index("color", "blue") and maps[0, 1, 3, 3] == index("shape", "sphere")
    assert maps[0, 3, 3, 3] == index("size", "small")
    assert maps[1, 0, 1, 1] == index("color", "cyan") and maps[1, 2, 1, 1] == index("material", "rubber")
    assert (maps[0, 0] != EMPTY).sum() == 2 and (maps[1, 0] != EMPTY).sum() == 1


def test_a_scene_with_an_unknown_attribute_is_named():
    with pytest.raises(ValueError, match=r"my_scenes.json: scene 4 object 0"):
        target_maps([{"image_index": 4, "objects": [obj(10, 10, 1.0, color="pink")]}], (2, 2), source="my_scenes.json")


def test_the_loss_is_low_and_every_cell_right_when_the_logits_say_the_targets():
    targets = target_maps([{"objects": [obj(0, 0, 1.0), obj(300, 200, 2.0, color="yellow")]}], (4, 4))
    targets = torch.from_numpy(targets).long()
    logits = torch.full((1, 1 + sum(scene_classes()), 4, 4), -20.0)
    occupied = targets[0, 0] != EMPTY
    logits[0, 0] = torch.where(occupied, 20.0, -20.0)
    start = 1
    for position, classes in enumerate(scene_classes()):
        for line, column in occupied.nonzero().tolist():
            logits[0, start + int(targets[0, position, line, column]), line, column] = 20.0
        start += classes
    loss, correct, found = scene_loss(logits, targets)
    assert float(loss) < 1e-6 and correct.tolist() == [2, 2, 2, 2] and int(found) == 2
    shuffled = logits.roll(1, dims=1)  # every class score moved to its neighbour: wrong everywhere
    wrong_loss, wrong, _ = scene_loss(shuffled, targets)
    assert float(wrong_loss) > 10 and wrong.sum() < 8
    empty = torch.full_like(targets, EMPTY)
    assert torch.isfinite(scene_loss(logits, empty)[0])  # a batch without objects adds no NaN


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory):
    return generated_micro_dataset(tmp_path_factory.mktemp("scene"))


def scene_config(**overrides) -> TrainConfig:
    values = dict(
        preset="cpu",
        model={**TINY_MODEL, "block_dropout": 0.0},
        batch_size=6,
        questions_per_image=3,
        max_steps=30,
        val_every=30,
        val_subset=4,
        log_every=5,
        lr=5e-3,
        scene_loss_weight=1.0,
        curves=False,
    )
    return TrainConfig(**{**values, **overrides})


def test_the_served_targets_are_those_of_each_batch_images_scene(micro_data):
    trainer = Trainer(scene_config(max_steps=1), micro_data, micro_data.parent / "align")
    split = trainer.train_set
    scene_file = json.loads((micro_data / "scenes" / "CLEVR_train_scenes.json").read_text())
    scenes = {scene["image_index"]: scene for scene in scene_file["scenes"]}
    batch = split[list(range(len(split)))]
    questions_image = split.arrays.image_rows
    map_size = trainer.model_config.feature_map_size  # the cpu preset's 64x64 through three stride-2 layers
    assert map_size == (8, 8) and batch["scene_targets"].shape[1:] == (len(ATTRIBUTES), *map_size)
    # row r of the served images is the question's image; its targets are that image's scene, not a neighbour's
    with h5py.File(questions_file(trainer.cache, "train"), "r") as handle:
        image_index = handle["image_index"][()]
    for position in range(len(split)):
        row = int(np.flatnonzero(np.unique(questions_image) == questions_image[position])[0])
        expected = target_maps([scenes[int(image_index[position])]], map_size)[0]
        assert np.array_equal(batch["scene_targets"][row].numpy(), expected)


def test_training_with_scene_supervision_learns_to_name_objects_and_reloads(micro_data, tmp_path):
    trainer = Trainer(scene_config(), micro_data, tmp_path / "run")
    before = scene_accuracy(trainer.model, trainer.train_set, trainer.train_set.scene_targets)
    result = trainer.run()
    after = scene_accuracy(trainer.model, trainer.train_set, trainer.train_set.scene_targets)
    # four training images seen 30 times: the head names their objects' colours far better than at the start
    assert after["color"] > before["color"] + 20 and after["size"] >= 75
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert sum("scene_accuracy" in line for line in lines) == 6  # every log line, every 5 of the 30 steps
    model = load_checkpoint(result.run_dir / "last.pt").model
    assert model.config.scene_classes == scene_classes() and model.scene_head is not None
    assert torch.equal(model.scene_head.weight, trainer.model.scene_head.weight)


def test_scene_supervision_without_scene_files_is_refused_by_name(tmp_path):
    cache = tiny_cache(tmp_path)
    with pytest.raises(TrainingError, match=r"CLEVR_train_scenes.json"):
        Trainer(scene_config(model=dict(TINY_MODEL)), cache, tmp_path / "run")
    with pytest.raises(ValueError, match="scene_loss_weight needs the film architecture"):
        scene_config(architecture="cnn-lstm", model={})


def test_a_speedrun_with_scene_supervision_reports_what_the_head_reads_on_validation_images(micro_data, tmp_path):
    from filmkit.experiments.speedrun import run_speedrun

    settings = [f"model.{key}={json.dumps(value)}" for key, value in TINY_MODEL.items()]
    settings += ["batch_size=6", "questions_per_image=3", "val_every=20", "val_subset=3", "scene_loss_weight=1"]
    settings += ["max_steps=40", "lr=5e-3"]  # a step count, not the budget, ends it: the same training on any machine
    result = run_speedrun(micro_data, tmp_path / "run", minutes=5, settings=settings, test_split=None)
    assert result.record["steps"] == 40
    scene = result.record["scene_accuracy"]
    assert set(scene) == {*ATTRIBUTES, "objectness"}
    # the figures are the trained head's: the same model untrained reads the validation images worse
    trained = load_checkpoint(result.run_dir / "last.pt").model
    untrained = type(trained)(trained.config)
    split = CachedSplit(result.record["dataset"], "val")
    targets = split_targets(result.record["dataset"], "val", trained.config.feature_map_size)
    assert scene == scene_accuracy(trained, split, targets)
    assert scene["objectness"] > scene_accuracy(untrained, split, targets)["objectness"] + 10
    assert "the scene head names color" in result.report.read_text()


def test_the_objects_curriculum_starts_with_the_fewest_objects_and_the_program_one_with_short_programs(micro_data):
    seen = []
    config = scene_config(scene_loss_weight=0.0, curriculum="objects", batch_size=3, max_steps=4, val_every=100)
    trainer = Trainer(config, micro_data, micro_data.parent / "curriculum", on_batch=seen.append)
    trainer.run()
    scenes = split_scenes(trainer.cache, "train")
    rows = [trainer.train_set.arrays.image_rows[batch["indices"].numpy()] for batch in seen]
    objects = [max(len(scenes[row]["objects"]) for row in batch_rows) for batch_rows in rows]
    assert objects == sorted(objects) and objects[0] < objects[-1]  # 3 objects, then 4, then 5
    seen.clear()
    config = scene_config(scene_loss_weight=0.0, curriculum="program", batch_size=3, max_steps=4, val_every=100)
    Trainer(config, micro_data, micro_data.parent / "by-program", on_batch=seen.append).run()
    with h5py.File(questions_file(trainer.cache, "train"), "r") as handle:
        lengths = (handle["programs"][()] != 0).sum(axis=1)
    longest = [int(lengths[batch["indices"].numpy()].max()) for batch in seen]
    assert longest == sorted(longest) and longest[0] < longest[-1]
    with pytest.raises(ValueError, match="questions_per_image >= 2"):
        scene_config(curriculum="program", questions_per_image=1)
