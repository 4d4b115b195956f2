from pathlib import Path

import numpy as np
import pytest
import torch
from eval_data import IMAGE_SIZE, make_cache, make_dataset, save_tiny_checkpoint, tiny_model, trained_tiny_model
from PIL import Image
from typer.testing import CliRunner

from filmkit.analysis.heatmap import answer_caption, blend_heatmap, heatmap_figure
from filmkit.cli import app
from filmkit.data.dataset import CachedSplit
from filmkit.train.ask import ask, pool_heatmap

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ask")
    records = make_dataset(root / "dataset")
    vocab = make_cache(root / "dataset", root / "cache")
    model = trained_tiny_model(vocab, root / "cache")
    return {"root": root, "records": records, "vocab": vocab, "cache": root / "cache", "model": model}


def val_question(world, position: int):
    """Split position -> (image file, question text) from the source question file."""
    split = CachedSplit(world["cache"], "val")
    by_index = {record["question_index"]: record for record in world["records"]["val"]}
    record = by_index[int(split.arrays.orig_idxs[position])]
    return split, world["root"] / "dataset" / "images" / "val" / record["image_filename"], record["question"]


def test_ask_sees_the_image_as_the_training_cache_does(world):
    model, vocab = world["model"], world["vocab"]
    split, image, question = val_question(world, 4)
    result = ask(model, vocab, image, question, top_k=3)

    batch = split[[4]]
    with torch.no_grad():
        logits = model(batch["images"], batch["questions"])[0]
    expected = torch.softmax(logits[4:].double(), dim=0).numpy()
    assert result.probabilities[:4].tolist() == [0.0] * 4  # special tokens are not answers
    assert np.allclose(result.probabilities[4:], expected, atol=1e-6)
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-9)


def test_top_answers_are_sorted_and_start_with_the_answer(world):
    _, image, question = val_question(world, 0)
    result = ask(world["model"], world["vocab"].to_json(), image, question, top_k=5)
    probabilities = [p for _, p in result.top]
    assert len(result.top) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert result.answer == result.top[0][0]
    assert result.probabilities.max() == pytest.approx(probabilities[0])
    assert result.unknown_words == []
    everything = ask(world["model"], world["vocab"], image, question, top_k=100).top
    assert len(everything) == len(world["vocab"].answer_tokens) - 4


def test_unknown_words_are_reported_and_read_as_unk(world):
    _, image, _ = val_question(world, 0)
    result = ask(world["model"], world["vocab"], image, "Is there a purple gizmo?")
    assert result.unknown_words == ["purple", "gizmo"]
    assert result.probabilities.sum() == pytest.approx(1.0)


def test_an_image_array_gives_the_same_answer_as_its_file(world):
    _, image, question = val_question(world, 2)
    from_file = ask(world["model"], world["vocab"], image, question)
    from_array = ask(world["model"], world["vocab"], np.asarray(Image.open(image).convert("RGB")), question)
    assert np.array_equal(from_file.probabilities, from_array.probabilities)


def test_heatmap_counts_the_channels_whose_maximum_sits_at_each_place(world):
    model, vocab = world["model"], world["vocab"]
    split, image, question = val_question(world, 1)
    result = ask(model, vocab, image, question)

    batch = split[[1]]
    with torch.no_grad():
        _, activations = model.answer_with_film(
            batch["images"], model.film_params(batch["questions"]), return_activations=True
        )
    projected = activations["classifier_map"][0].numpy()
    height, width = model.config.feature_map_size
    counts = np.zeros(height * width)
    for channel in projected.reshape(len(projected), -1):
        if channel.max() > 0:
            counts[channel.argmax()] += 1
    assert result.heatmap.shape == (height, width)
    assert np.allclose(result.heatmap.ravel(), counts / counts.max())


def test_a_feature_model_needs_the_feature_extractor(world):
    model = tiny_model(
        world["vocab"], input_kind="features", in_channels=4, stem_num_layers=1, stem_kernel_size=3, stem_stride=1
    )
    _, image, question = val_question(world, 0)
    with pytest.raises(ValueError, match="ResNet-101 features"):
        ask(model, world["vocab"], image, question)


def test_the_blend_shows_the_heat_over_an_image_of_the_same_size():
    image = np.full((32, 48, 3), 100, dtype=np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 3] = 1.0  # the top-right cell
    picture = blend_heatmap(image, heat)
    assert picture.shape == (32, 48, 3)
    assert np.array_equal(picture[24:, :12], image[24:, :12])  # cold corner: the image as it is
    assert not np.array_equal(picture[2, 44], image[2, 44])


def test_the_heatmap_figure_is_readable_captioned_and_in_the_format_its_name_says(tmp_path):
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    heat = np.eye(8)
    caption = answer_caption("Is there a cube?", "yes", 0.83, truth="no")
    png = heatmap_figure(image, heat, tmp_path / "heat.png", caption)
    with Image.open(png) as picture:
        assert picture.format == "PNG" and picture.width >= 600  # a 64x64 input, enlarged to be read
    with Image.open(heatmap_figure(image, heat, tmp_path / "heat.jpg", caption)) as picture:
        assert picture.format == "JPEG"
    svg = heatmap_figure(image, heat, tmp_path / "heat.svg", caption).read_text()
    assert "Is there a cube?" in svg and "yes (0.83)" in svg and "truth: no" in svg
    with pytest.raises(ValueError, match=r"heat\.bmp: a heatmap is written as \.png"):
        heatmap_figure(image, heat, tmp_path / "heat.bmp", caption)
    assert not (tmp_path / "heat.bmp").exists()


# -- the command line --------------------------------------------------------------------------------------------


def test_ask_command_prints_the_answer_probabilities_and_unknown_words(world, tmp_path):
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", world["model"], world["vocab"])
    _, image, question = val_question(world, 3)
    expected = ask(world["model"], world["vocab"], image, question + " purple", top_k=2)
    result = runner.invoke(
        app,
        [
            "ask",
            "--checkpoint",
            str(checkpoint),
            "--image",
            str(image),
            "--question",
            question + " purple",
            "--top",
            "2",
            "--heatmap",
            str(tmp_path / "heat.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"answer: {expected.answer}\n" in result.output
    for answer, probability in expected.top:
        assert f"{answer}" in result.output and f"{probability:.3f}" in result.output
    assert "unknown words (read as <UNK>): purple" in result.output
    with Image.open(tmp_path / "heat.png") as figure:  # the image and its heatmap side by side, enlarged
        assert figure.width > 2 * IMAGE_SIZE[0] and figure.height > IMAGE_SIZE[1]

    arguments = ["ask", "--checkpoint", str(checkpoint), "--image", str(image), "--question", question]
    refused = runner.invoke(app, [*arguments, "--heatmap", str(tmp_path / "heat.bmp")])
    assert refused.exit_code == 2 and "--heatmap" in refused.output and ".jpg" in refused.output


def test_ask_command_errors_are_one_line(world, tmp_path):
    _, image, _ = val_question(world, 0)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["ask", "--checkpoint", str(broken), "--image", str(image), "--question", "Why?"])
    assert result.exit_code == 2 and "broken.pt: not a filmkit checkpoint" in result.output
    assert len(result.output.strip().splitlines()) == 1

    features = tiny_model(
        world["vocab"], input_kind="features", in_channels=4, stem_num_layers=1, stem_kernel_size=3, stem_stride=1
    )
    checkpoint = save_tiny_checkpoint(tmp_path / "features.pt", features, world["vocab"], image_kind="resnet101")
    result = runner.invoke(app, ["ask", "--checkpoint", str(checkpoint), "--image", str(image), "--question", "Why?"])
    assert result.exit_code == 2 and "--weights" in result.output and "Traceback" not in result.output

    result = runner.invoke(
        app, ["ask", "--checkpoint", str(checkpoint), "--image", str(tmp_path / "none.png"), "--question", "Why?"]
    )
    assert result.exit_code == 2 and "no such image file" in result.output


def test_an_average_pooling_classifier_gets_the_summed_activation():
    projected = torch.zeros(3, 2, 2)
    projected[0, 1, 1], projected[1, 1, 1], projected[2, 0, 1] = 5.0, 2.0, 1.0
    assert np.allclose(pool_heatmap(projected, "avg"), [[0.0, 1 / 7], [0.0, 1.0]])
    assert np.allclose(pool_heatmap(projected, "max"), [[0.0, 0.5], [0.0, 1.0]])  # where channels peak instead
    assert pool_heatmap(torch.zeros(4, 3, 3)).tolist() == [[0.0] * 3] * 3  # all channels dead: no heat, no NaN


def test_an_empty_question_is_an_error_not_an_answer(world, tmp_path):
    _, image, _ = val_question(world, 0)
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", tiny_model(world["vocab"]), world["vocab"])
    for question in ("", "   ", "?"):
        result = runner.invoke(app, ["ask", "--checkpoint", str(checkpoint), "--image", str(image),
                                     "--question", question])  # fmt: skip
        assert result.exit_code == 2 and "has no words to read" in result.output, result.output


def test_a_truncated_or_foreign_image_is_named(world, tmp_path):
    _, image, question = val_question(world, 0)
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", tiny_model(world["vocab"]), world["vocab"])
    truncated = tmp_path / "truncated.png"
    whole = Path(image).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])  # a PNG cut short
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for bad in (truncated, text):
        result = runner.invoke(app, ["ask", "--checkpoint", str(checkpoint), "--image", str(bad),
                                     "--question", question])  # fmt: skip
        assert result.exit_code == 2 and f"{bad}: not a readable image" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
