"""What FiLM learns: the gammas and betas a model predicts over a split, their statistics, and test-time ablations.

The paper (section 6) reads a trained model's FiLM parameters: their histograms (gammas spread well beyond
[0, 1], many negative, a share near 0 that shuts a feature map off), t-SNE maps where questions group by
function, and test-time ablations in which replacing every beta by its training-set mean costs little while
replacing gamma costs a lot. This module computes each of these for any FiLMVQA checkpoint.

Example::

    checkpoint = load_checkpoint("runs/demo/best.pt")
    val = CachedSplit("data/demo-cache", "val", checkpoint.vocab)
    params = collect_film_params(checkpoint.model, val, max_questions=5000)
    film_statistics(params)["gamma"]["overall"]["share_negative"]
    train = CachedSplit("data/demo-cache", "train", checkpoint.vocab)
    ablation_accuracies(checkpoint.model, val, collect_film_params(checkpoint.model, train, max_questions=5000))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import FINAL_FUNCTIONS
from filmkit.train.evaluate import evaluate

NEAR_ZERO = 0.1  # |gamma| below this counts as "near 0": the feature map is all but switched off


@dataclass
class FiLMParams:
    """FiLM parameters predicted for a set of questions: ``gammas`` and ``betas`` are (questions, blocks, C)."""

    gammas: np.ndarray
    betas: np.ndarray
    functions: np.ndarray  # final-function code of each question, -1 without a program

    def means(self) -> torch.Tensor:
        """(blocks, 2, C) mean gamma and beta per block and channel, the values the ablations substitute."""
        return torch.from_numpy(np.stack((self.gammas.mean(axis=0), self.betas.mean(axis=0)), axis=1))

    def sample(self, count: int, seed: int = 0) -> FiLMParams:
        """A random ``count`` of the questions (all of them when there are no more), in their original order."""
        if count >= len(self.gammas):
            return self
        rows = np.sort(np.random.default_rng(seed).choice(len(self.gammas), count, replace=False))
        return FiLMParams(self.gammas[rows], self.betas[rows], self.functions[rows])

    def spreads(self) -> torch.Tensor:
        """(blocks, 2) standard deviation of gamma and of beta in each block, the scale of the ablations' noise."""
        return torch.from_numpy(np.stack((self.gammas.std(axis=(0, 2)), self.betas.std(axis=(0, 2))), axis=1))


def collect_film_params(
    model: nn.Module, split: CachedSplit, max_questions: int | None = None, batch_size: int = 512, seed: int = 0
) -> FiLMParams:
    """The FiLM parameters ``model`` predicts for the questions of ``split`` (a random ``max_questions`` of them).

    Only the questions are read: the generator never sees the image.
    """
    chosen = np.arange(len(split))
    if max_questions is not None and max_questions < len(split):
        chosen = np.sort(np.random.default_rng(seed).choice(len(split), max_questions, replace=False))
    questions = split.arrays.questions
    device = next(model.parameters()).device
    outputs = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(chosen), batch_size):
                rows = chosen[start : start + batch_size]
                batch = torch.from_numpy(np.ascontiguousarray(questions[rows])).long()
                batch = batch[:, : int((batch != 0).sum(dim=1).max())]  # drop columns of padding only
                outputs.append(model.film_params(batch.to(device)).float().cpu())
    finally:
        model.train(was_training)
    stacked = torch.cat(outputs).numpy()  # (questions, blocks, 2, C)
    return FiLMParams(stacked[:, :, 0], stacked[:, :, 1], split.arrays.functions[chosen])


def _summary(values: np.ndarray) -> dict:
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "p1": float(np.percentile(values, 1)),
        "p99": float(np.percentile(values, 99)),
        "share_negative": float((values < 0).mean()),
    }


def film_statistics(params: FiLMParams) -> dict:
    """Ranges, spread, share of negative values (and of gammas near 0) overall and per block, for gamma and beta.

    >>> params = FiLMParams(np.ones((4, 2, 3)), np.zeros((4, 2, 3)), np.zeros(4, dtype=int))
    >>> stats = film_statistics(params)
    >>> stats["gamma"]["overall"]["mean"], stats["beta"]["per_block"][1]["share_negative"]
    (1.0, 0.0)
    """
    statistics = {}
    for name, values in (("gamma", params.gammas), ("beta", params.betas)):
        overall = _summary(values)
        per_block = [_summary(values[:, block]) for block in range(values.shape[1])]
        if name == "gamma":
            overall["share_near_zero"] = float((np.abs(values) < NEAR_ZERO).mean())
            for block, summary in enumerate(per_block):
                summary["share_near_zero"] = float((np.abs(values[:, block]) < NEAR_ZERO).mean())
        statistics[name] = {"overall": overall, "per_block": per_block}
    statistics["questions"] = len(params.gammas)
    return statistics


def tsne_points(params: FiLMParams, block: int, seed: int = 0) -> np.ndarray:
    """(questions, 2) t-SNE embedding (scikit-learn) of each question's [gamma, beta] at ``block``."""
    from sklearn.manifold import TSNE

    features = np.concatenate((params.gammas[:, block], params.betas[:, block]), axis=1)
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))  # t-SNE needs perplexity < samples
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


class EditedFiLM(nn.Module):
    """``model`` with its FiLM parameters passed through ``edit`` before the visual network reads them."""

    def __init__(self, model: nn.Module, edit: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model, self.edit = model, edit

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.model.answer_with_film(images, self.edit(self.model.film_params(questions)))


def ablation_edits(train: FiLMParams, noise_std: float = 1.0, seed: int = 0) -> dict[str, Callable]:
    """The paper's test-time ablations as functions of the (N, blocks, 2, C) FiLM parameters.

    ``beta := mean`` and ``gamma := mean`` put the training-set mean of each block's channel in place of every
    question's value; ``beta + noise`` and ``gamma + noise`` add Gaussian noise of ``noise_std`` times the
    parameter's spread in that block over ``train`` (the FiLM parameters of training questions).
    """
    means, spreads = train.means().float(), train.spreads().float()
    generator = torch.Generator().manual_seed(seed)

    def replace(which: int) -> Callable:
        def edit(params: torch.Tensor) -> torch.Tensor:
            edited = params.clone()
            edited[:, :, which] = means[:, which].to(params)
            return edited

        return edit

    def add_noise(which: int) -> Callable:
        def edit(params: torch.Tensor) -> torch.Tensor:
            edited = params.clone()
            noise = torch.randn(edited[:, :, which].shape, generator=generator)
            edited[:, :, which] += (noise_std * spreads[:, which, None] * noise).to(params)
            return edited

        return edit

    return {"beta := mean": replace(1), "gamma := mean": replace(0), "beta + noise": add_noise(1),
            "gamma + noise": add_noise(0)}  # fmt: skip


def ablation_accuracies(
    model: nn.Module, split: CachedSplit, train: FiLMParams, indices=None, noise_std: float = 1.0
) -> dict[str, float]:
    """Accuracy on ``split`` of the unchanged model and of each test-time ablation (see :func:`ablation_edits`)."""
    results = {"none": evaluate(model, split, indices=indices).accuracy}
    for name, edit in ablation_edits(train, noise_std).items():
        results[name] = evaluate(EditedFiLM(model, edit), split, indices=indices).accuracy
    return results


def function_names(codes: np.ndarray) -> list[str]:
    """Final-function names of codes from :class:`FiLMParams` (``"none"`` for -1)."""
    return [FINAL_FUNCTIONS[code] if code >= 0 else "none" for code in codes]
