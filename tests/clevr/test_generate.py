"""Generating a split on disk: layout, determinism across workers, resuming, refusing to clobber, re-rendering,
and the `filmkit generate scenes` / `filmkit render` commands."""

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from filmkit.clevr.generate import OutputExistsError, SplitSpec, generate_split, image_rng, render_scene_file
from filmkit.clevr.scene_json import SceneFileError, read_scenes
from filmkit.clevr.scenes import SamplingRules
from filmkit.cli import app

SPEC = SplitSpec(split="val", num_images=5, width=48, height=32, seed=3, rules=SamplingRules(max_objects=6))
runner = CliRunner()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """SPEC generated in one uninterrupted single-process run."""
    root = tmp_path_factory.mktemp("reference")
    generate_split(SPEC, root, workers=1)
    return snapshot(root)


def test_a_split_has_the_clevr_layout(reference, tmp_path):
    names = [f"images/val/CLEVR_val_{i:06d}.png" for i in range(5)] + ["scenes/CLEVR_val_scenes.json"]
    assert sorted(reference) == sorted(names)  # no temporary or work files are left behind
    (tmp_path / "scenes.json").write_bytes(reference["scenes/CLEVR_val_scenes.json"])
    document = read_scenes(tmp_path / "scenes.json")
    assert [scene["image_index"] for scene in document["scenes"]] == list(range(5))
    assert document["scenes"][2]["image_filename"] == "CLEVR_val_000002.png"
    assert document["info"]["split"] == "val" and document["info"]["filmkit"]["seed"] == 3
    (tmp_path / "one.png").write_bytes(reference["images/val/CLEVR_val_000001.png"])
    assert Image.open(tmp_path / "one.png").size == (48, 32)


def test_two_workers_write_the_same_bytes_as_one(reference, tmp_path):
    report = generate_split(SPEC, tmp_path, workers=2)
    assert report.images_written == 5
    assert snapshot(tmp_path) == reference


def test_each_image_has_its_own_random_stream():
    assert image_rng(0, "val", 1).random() == image_rng(0, "val", 1).random()
    assert image_rng(0, "val", 1).random() != image_rng(0, "val", 2).random()
    assert image_rng(0, "val", 1).random() != image_rng(0, "train", 1).random()


def test_an_interrupted_run_resumes_to_the_same_files(reference, tmp_path):
    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_split(SPEC, tmp_path, workers=1, progress=stop_after_two)
    partial = snapshot(tmp_path)
    assert "scenes/CLEVR_val_scenes.json" not in partial
    assert sum(name.startswith("images/") for name in partial) == 2
    (tmp_path / "images/val/.CLEVR_val_000002.png.x1y2.tmp").write_bytes(b"killed mid-write")
    seen = []
    report = generate_split(SPEC, tmp_path, workers=2, progress=lambda done, total: seen.append(done))
    assert (report.images_reused, report.images_written) == (2, 3)
    assert seen[0] == 2 and seen[-1] == 5
    assert snapshot(tmp_path) == reference


def test_a_finished_run_is_not_redone(reference, tmp_path):
    generate_split(SPEC, tmp_path, workers=1)
    report = generate_split(SPEC, tmp_path, workers=1)
    assert (report.images_written, report.images_reused) == (0, 5)
    assert snapshot(tmp_path) == reference


def test_other_settings_do_not_overwrite_unless_asked(reference, tmp_path):
    generate_split(SPEC, tmp_path, workers=1)
    other = SplitSpec(split="val", num_images=3, width=48, height=32, seed=4)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate_split(other, tmp_path, workers=1)
    assert snapshot(tmp_path) == reference
    generate_split(other, tmp_path, workers=1, overwrite=True)
    files = snapshot(tmp_path)
    assert len(files) == 4 and files["images/val/CLEVR_val_000000.png"] != reference["images/val/CLEVR_val_000000.png"]


def test_an_unfinished_run_with_other_settings_is_not_taken_over(tmp_path):
    def stop(done, total):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_split(SPEC, tmp_path, workers=1, progress=stop)
    with pytest.raises(OutputExistsError, match=r"seed 3 -> 4"):
        generate_split(SplitSpec(split="val", num_images=5, width=48, height=32, seed=4), tmp_path, workers=1)


def test_foreign_images_are_not_overwritten(tmp_path):
    foreign = tmp_path / "images" / "val" / "CLEVR_val_000000.png"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    with pytest.raises(OutputExistsError, match="did not start"):
        generate_split(SPEC, tmp_path, workers=1)
    assert foreign.read_bytes() == b"not ours"


def test_rerendering_a_scene_file_reproduces_the_images(reference, tmp_path):
    scenes = tmp_path / "CLEVR_val_scenes.json"
    scenes.write_bytes(reference["scenes/CLEVR_val_scenes.json"])
    render_scene_file(scenes, tmp_path / "same", 48, 32, workers=1)
    assert snapshot(tmp_path / "same") == {k: v for k, v in reference.items() if k.startswith("images/")}
    report = render_scene_file(scenes, tmp_path / "big", 96, 96, workers=2)
    assert report.images_written == 5
    assert Image.open(tmp_path / "big/images/val/CLEVR_val_000004.png").size == (96, 96)
    with pytest.raises(OutputExistsError):
        render_scene_file(scenes, tmp_path / "big", 96, 96, workers=1)


def test_rendering_a_bad_scene_file_names_the_file_and_field(reference, tmp_path):
    document = json.loads(reference["scenes/CLEVR_val_scenes.json"])
    document["scenes"][1]["objects"][0]["shape"] = "pyramid"
    bad = tmp_path / "CLEVR_val_scenes.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(SceneFileError, match=r"CLEVR_val_scenes\.json: scenes\[1\]\.objects\[0\]\.shape"):
        render_scene_file(bad, tmp_path / "out", 48, 32, workers=1)


# The command line -------------------------------------------------------------------------------------------


def test_generate_scenes_honours_the_object_range_and_the_resolution(tmp_path):
    args = ["generate", "scenes", "--split", "val", "--num-images", "3", "--out", str(tmp_path), "--workers", "1"]
    result = runner.invoke(app, [*args, "--resolution", "40x24", "--min-objects", "4", "--max-objects", "4"])
    assert result.exit_code == 0, result.output
    scenes = read_scenes(tmp_path / "scenes" / "CLEVR_val_scenes.json")["scenes"]
    assert [len(scene["objects"]) for scene in scenes] == [4, 4, 4]
    with Image.open(tmp_path / "images" / "val" / "CLEVR_val_000002.png") as image:
        assert image.size == (40, 24)


def test_cli_generates_and_rerenders_a_tiny_split(tmp_path):
    args = ["generate", "scenes", "--split", "trainA", "--num-images", "2", "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--resolution", "48x32", "--workers", "1", "--condition", "A"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 images" in result.output
    scenes = tmp_path / "scenes" / "CLEVR_trainA_scenes.json"
    assert read_scenes(scenes)["info"]["filmkit"]["condition"]["cube"] == ["gray", "blue", "brown", "yellow"]
    result = runner.invoke(
        app, ["render", "--scenes", str(scenes), "--out", str(tmp_path / "r"), "--resolution", "32x32"]
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "r/images/trainA/CLEVR_trainA_000001.png").size == (32, 32)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--resolution", "48by32"], "expected WIDTHxHEIGHT"),
        (["--resolution", "100000x100000"], "each side must be at most 2048 pixels"),
        (["--min-objects", "5", "--max-objects", "2"], "object count range 5..2"),
        (["--min-objects", "40", "--max-objects", "40"], "fewer objects"),
        (["--condition", "missing.json"], "missing.json: cannot read"),
        (["--split", "a/b"], "split name"),
    ],
)
def test_cli_bad_requests_fail_in_one_line(tmp_path, extra, message):
    result = runner.invoke(app, ["generate", "scenes", "--out", str(tmp_path), "--num-images", "1", *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_refuses_existing_output(tmp_path):
    args = ["generate", "scenes", "--out", str(tmp_path), "--num-images", "1", "--resolution", "32x32"]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    result = runner.invoke(app, [*args, "--seed", "2"])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert runner.invoke(app, [*args, "--seed", "2", "--overwrite"]).exit_code == 0
