"""The paper's baselines: each trains with `filmkit train`, evaluates, and reloads from its checkpoint."""

import pytest
import torch
from train_fixtures import TINY_MODEL, tiny_cache, tiny_config
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.data.dataset import CachedSplit
from filmkit.train.ask import ask
from filmkit.train.config import TrainConfig
from filmkit.train.evaluate import evaluate
from filmkit.train.loop import Trainer
from filmkit.vqa import load_checkpoint
from filmkit.vqa.baselines import BASELINES, baseline_config, build_model

TINY_BASELINE = {key: value for key, value in TINY_MODEL.items() if key != "block_dropout"}
TINY_BASELINE.update(attention_dim=8, relation_dim=8, relation_layers=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tiny_cache(tmp_path_factory.mktemp("baselines"))


@pytest.mark.parametrize("architecture", BASELINES)
def test_each_baseline_trains_evaluates_and_reloads(architecture, cache, tmp_path):
    config = tiny_config(architecture=architecture, model=dict(TINY_BASELINE), max_steps=3, augment_shift=0)
    trainer = Trainer(config, cache, tmp_path / "run")
    result = trainer.run()
    assert result.steps == 3
    loaded = load_checkpoint(tmp_path / "run" / "last.pt")
    assert type(loaded.model) is BASELINES[architecture] and loaded.metadata["kind"] == architecture
    split = CachedSplit(cache, "val")
    batch = split[[0, 1, 2]]
    with torch.no_grad():  # the checkpoint rebuilds the trained model exactly
        expected = trainer.model.eval()(batch["images"], batch["questions"])
        torch.testing.assert_close(loaded.model(batch["images"], batch["questions"]), expected)
    scored = evaluate(loaded.model, split)  # the final weights on the whole validation split
    assert scored.questions == len(split) and result.final_val_accuracy == scored.accuracy


@pytest.mark.parametrize("architecture", BASELINES)
def test_one_step_lowers_the_loss_on_a_fixed_batch(architecture):
    torch.manual_seed(0)
    model = build_model(baseline_config(architecture, "cpu", vocab_size=12, num_answers=5, **TINY_BASELINE))
    images, questions = torch.rand(6, 3, 64, 64), torch.randint(1, 12, (6, 7))
    answers = torch.randint(0, 5, (6,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(images, questions), answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[1] < losses[0]


@pytest.mark.parametrize("architecture", BASELINES)
def test_an_image_index_gives_each_baseline_the_same_answers_as_repeated_images(architecture):
    model = build_model(baseline_config(architecture, "cpu", vocab_size=12, num_answers=5, **TINY_BASELINE)).eval()
    images, questions = torch.rand(2, 3, 64, 64), torch.randint(1, 12, (4, 7))
    index = torch.tensor([1, 1, 0, 1])
    with torch.no_grad():
        torch.testing.assert_close(model(images, questions, index), model(images[index], questions))


def test_the_question_only_baseline_ignores_the_image():
    model = build_model(baseline_config("lstm", "cpu", vocab_size=12, num_answers=5, **TINY_BASELINE)).eval()
    questions = torch.randint(1, 12, (2, 7))
    with torch.no_grad():
        assert torch.equal(model(torch.rand(2, 3, 64, 64), questions), model(torch.rand(2, 3, 64, 64), questions))


def test_bad_architectures_and_settings_are_named():
    with pytest.raises(ValueError, match="architecture 'cnn-gru' is unknown"):
        TrainConfig(architecture="cnn-gru")
    with pytest.raises(ValueError, match="model.wings"):
        TrainConfig(architecture="cnn-lstm-sa", model={"wings": 2})
    with pytest.raises(ValueError, match="attention_hops must be at least 1"):
        baseline_config("cnn-lstm-sa", attention_hops=0)


def test_ask_refuses_a_baseline_by_name():
    model = build_model(baseline_config("cnn-lstm", "cpu", vocab_size=12, num_answers=5, **TINY_BASELINE))
    with pytest.raises(ValueError, match="ask needs a FiLM model; this is the cnn-lstm baseline"):
        ask(model, {}, None, "Is there a cube?")


def test_train_command_takes_a_baseline(cache, tmp_path):
    arguments = ["train", "--data", str(cache), "--out", str(tmp_path / "run"), "--model", "lstm"]
    arguments += ["--set", "max_steps=2", "--set", "batch_size=4", "--set", "val_subset=4"]
    arguments += [f"--set=model.{key}={value}" for key, value in TINY_BASELINE.items() if key != "classifier_fc_dims"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "run" / "best.pt").metadata["kind"] == "lstm"


@pytest.mark.parametrize("relation_layers", [1, 3])
def test_relation_network_projects_cells_once_yet_computes_g_over_every_pair(relation_layers):
    config = baseline_config("cnn-lstm-rn", **{**TINY_BASELINE, "relation_layers": relation_layers},
                             vocab_size=12, num_answers=5, image_height=16, image_width=16)  # fmt: skip
    model = build_model(config).eval()
    images, questions = torch.rand(2, 3, 16, 16), torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    with torch.no_grad():
        features, question = model.inputs(images, questions)
        coords = model.cell_coords.expand(2, -1, -1, -1)
        cells = model.cells(torch.cat((features, coords), dim=1))
        count = cells.shape[1]
        pairs = torch.cat((cells[:, :, None].expand(-1, -1, count, -1), cells[:, None].expand(-1, count, -1, -1),
                           question[:, None, None].expand(-1, count, count, -1)), dim=3)  # fmt: skip
        expected = model.head(torch.relu(model.pair_mlp(pairs)).mean(dim=(1, 2)))
        torch.testing.assert_close(model(images, questions), expected, rtol=1e-5, atol=1e-6)
