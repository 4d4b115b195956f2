"""`filmkit analyze` and the FiLM analyses behind it, on a tiny trained checkpoint."""

import json

import numpy as np
import pytest
import torch
from eval_data import trained_world
from typer.testing import CliRunner

from filmkit.analysis.film_params import EditedFiLM, FiLMParams, ablation_edits, collect_film_params, film_statistics
from filmkit.cli import app
from filmkit.data.dataset import CachedSplit
from filmkit.train.evaluate import evaluate

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return trained_world(tmp_path_factory.mktemp("analyze"))


def test_collected_parameters_are_the_generators_output_question_by_question(world):
    model, split = world["model"], CachedSplit(world["cache"], "val")
    params = collect_film_params(model, split)
    batch = split[[2]]
    with torch.no_grad():
        expected = model.film_params(batch["questions"])[0]
    torch.testing.assert_close(torch.from_numpy(params.gammas[2]), expected[:, 0])
    torch.testing.assert_close(torch.from_numpy(params.betas[2]), expected[:, 1])
    assert params.functions.tolist() == split.arrays.functions.tolist()


def test_statistics_count_negatives_and_gammas_near_zero():
    gammas = np.array([[[-1.0, 0.05, 2.0, 0.5]]])  # one question, one block, four channels
    stats = film_statistics(FiLMParams(gammas, -gammas, np.array([0])))
    assert stats["gamma"]["overall"]["share_negative"] == 0.25
    assert stats["gamma"]["overall"]["share_near_zero"] == 0.25
    assert stats["beta"]["per_block"][0]["share_negative"] == 0.75
    assert "share_near_zero" not in stats["beta"]["overall"]


def test_mean_ablations_replace_exactly_one_parameter_kind():
    gammas, betas = np.random.default_rng(0).normal(size=(2, 5, 3, 4))
    train = FiLMParams(gammas, betas, np.zeros(5, dtype=int))
    edits = ablation_edits(train)
    params = torch.randn(2, 3, 2, 4)
    no_beta = edits["beta := mean"](params)
    assert torch.equal(no_beta[:, :, 0], params[:, :, 0])
    assert torch.allclose(no_beta[:, :, 1], torch.from_numpy(betas.mean(axis=0)).float().expand(2, -1, -1))
    no_gamma = edits["gamma := mean"](params)
    assert torch.equal(no_gamma[:, :, 1], params[:, :, 1])
    assert torch.allclose(no_gamma[:, :, 0], torch.from_numpy(gammas.mean(axis=0)).float().expand(2, -1, -1))
    noisy = edits["gamma + noise"](params)
    assert torch.equal(noisy[:, :, 1], params[:, :, 1]) and not torch.equal(noisy[:, :, 0], params[:, :, 0])


def test_an_identity_edit_answers_as_the_model_does(world):
    model, batch = world["model"], CachedSplit(world["cache"], "val")[[0, 1, 2]]
    with torch.no_grad():
        edited = EditedFiLM(model, lambda params: params)(batch["images"], batch["questions"])
        torch.testing.assert_close(edited, model(batch["images"], batch["questions"]))


class GammaReplaced(torch.nn.Module):
    """``model`` with every question's gammas replaced by ``gamma`` (blocks, C); its betas are its own."""

    def __init__(self, model, gamma):
        super().__init__()
        self.model, self.gamma = model, gamma

    def forward(self, images, questions):
        params = self.model.film_params(questions).clone()  # (N, blocks, 2, C): gamma, then beta
        params[:, :, 0] = self.gamma
        return self.model.answer_with_film(images, params)


def test_analyze_command_writes_every_file_and_refuses_to_overwrite(world):
    out = world["root"] / "analysis"
    arguments = ["analyze", "--checkpoint", str(world["checkpoint"]), "--data", str(world["cache"])]
    arguments += ["--out", str(out), "--max-questions", "10", "--examples", "2"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    names = {"film-statistics.json", "histograms.png", "tsne-block-1.png", "tsne-block-2.png", "ablations.json"}
    assert names | {"analysis.md", "heatmaps"} <= {path.name for path in out.iterdir()}
    ablations = json.loads((out / "ablations.json").read_text())
    assert set(ablations) >= {"none", "beta := mean", "gamma := mean", "beta + noise", "gamma + noise"}
    val, train = CachedSplit(world["cache"], "val"), CachedSplit(world["cache"], "train")
    assert ablations["questions"] == len(val)  # every validation question has an answer: all were scored
    assert ablations["none"] == evaluate(world["model"], val).accuracy  # the unedited model
    with torch.no_grad():  # the mean gamma of each block and channel over every training question
        mean_gamma = world["model"].film_params(train[list(range(len(train)))]["questions"])[:, :, 0].mean(dim=0)
    assert ablations["gamma := mean"] == evaluate(GammaReplaced(world["model"], mean_gamma), val).accuracy
    assert len(list((out / "heatmaps").glob("*.png"))) == 2
    assert "Test-time ablations" in (out / "analysis.md").read_text()

    again = runner.invoke(app, arguments)
    assert again.exit_code == 2 and "--overwrite" in again.output
