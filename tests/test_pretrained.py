"""The model shipped in the package: it loads by name, stays small, and answers fresh generated scenes well."""

import pytest
from typer.testing import CliRunner

from filmkit.clevr.dataset import Preset, SplitPlan, build_dataset
from filmkit.cli import app
from filmkit.pretrained import model_card, pretrained_path
from filmkit.train.evaluate import evaluate, open_split
from filmkit.vqa import load_checkpoint

# Scenes the model never saw: another seed than the clevr-cpu dataset's (0), CLEVR's rules, 64x64.
FRESH = Preset("fresh", "40 images at 64x64 with CLEVR's rules", 64, 64, (SplitPlan("val", 40),))


@pytest.fixture(scope="module")
def fresh_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    build_dataset(FRESH, root / "data", seed=20261201, workers=1)
    return root


def test_the_shipped_model_loads_by_name_and_is_small():
    path = pretrained_path("pretrained")
    assert path.stat().st_size <= 20 * 2**20
    loaded = load_checkpoint("pretrained")
    assert loaded.extra == {} and loaded.vocab and loaded.metadata["resolution"] == [64, 64]
    assert f"{100 * loaded.metadata['val_accuracy']:.1f}%" in model_card("pretrained").read_text()


def test_the_shipped_model_answers_fresh_scenes_about_as_well_as_its_validation_split(fresh_scenes):
    loaded = load_checkpoint("pretrained")
    split = open_split(loaded, fresh_scenes / "data", "val", cache_dir=fresh_scenes / "cache", workers=1)
    result = evaluate(loaded.model, split)
    assert result.scored >= 350
    # Within 8 points of the accuracy recorded on its validation split (about 3 standard errors at 400
    # questions); a model that only knew the answer priors would score about 43%.
    assert result.accuracy >= loaded.metadata["val_accuracy"] - 0.08


def test_ask_answers_with_the_shipped_model(fresh_scenes):
    image = sorted((fresh_scenes / "data" / "images" / "val").glob("*.png"))[0]
    result = CliRunner().invoke(
        app, ["ask", "--checkpoint", "pretrained", "--image", str(image), "--question", "How many objects are there?"]
    )
    assert result.exit_code == 0, result.output
    answer = result.output.splitlines()[0].removeprefix("answer: ")
    assert answer.isdigit() and 1 <= int(answer) <= 10
