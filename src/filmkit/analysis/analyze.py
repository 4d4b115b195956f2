"""`filmkit analyze` as a library call: every FiLM analysis of a checkpoint on a split, written to one folder.

Writes ``film-statistics.json`` and ``histograms.png`` (gamma and beta over the split), ``tsne-block-K.png`` for
the first and last block, ``ablations.json`` (test-time ablations against training-set FiLM parameters),
``heatmaps/`` (max-pool locations for questions about one object), with ``arithmetic`` also ``arithmetic.json``
(CoGenT's zero-shot FiLM-parameter arithmetic), and ``analysis.md`` tying them together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filmkit.analysis.arithmetic import arithmetic_accuracies
from filmkit.analysis.film_params import (
    NEAR_ZERO,
    ablation_accuracies,
    collect_film_params,
    film_statistics,
    function_names,
    tsne_points,
)
from filmkit.analysis.film_plots import plot_film_histograms, plot_tsne
from filmkit.analysis.heatmap import heatmap_examples
from filmkit.atomic import atomic_output
from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import FINAL_FUNCTIONS


@dataclass
class AnalysisOptions:
    max_questions: int = 5000  # questions of the split whose FiLM parameters are read (t-SNE: a subset of them)
    train_questions: int = 5000  # training questions behind the ablations' means and spreads
    ablation_questions: int = 5000  # questions of the split scored under each ablation
    noise_std: float = 1.0  # the noise ablations' noise, in units of the parameter's spread
    tsne_questions: int = 2000
    examples: int = 6  # heatmap examples of questions about one object
    arithmetic: bool = False  # CoGenT: FiLM-parameter arithmetic on the split's condition-B questions
    seed: int = 0


def _write_json(path: Path, payload: dict) -> None:
    with atomic_output(path, "w") as handle:
        json.dump(payload, handle, indent=2)


def object_question_indices(split: CachedSplit, count: int, seed: int = 0) -> np.ndarray:
    """Questions whose program ends by querying one object's attribute (its colour, size, material or shape)."""
    query_codes = [code for code, name in enumerate(FINAL_FUNCTIONS) if name.startswith("query_")]
    candidates = np.flatnonzero(np.isin(split.arrays.functions, query_codes))
    if not len(candidates):  # CLEVR-Humans and other splits without programs: any question
        candidates = np.arange(len(split))
    return np.random.default_rng(seed).choice(candidates, size=min(count, len(candidates)), replace=False)


def analyze(
    model,
    train: CachedSplit,
    split: CachedSplit,
    out_dir: str | Path,
    options: AnalysisOptions | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict:
    """Run every analysis of ``model`` (a FiLMVQA) on ``split``; return the summary written to analysis.md.

    Example::

        checkpoint = load_checkpoint("runs/demo/best.pt")
        val = CachedSplit("data/demo/.filmkit/cache-64x64", "val", ...)
        analyze(checkpoint.model, train, val, "runs/demo/analysis")["ablations"]["gamma := mean"]
    """
    options = options or AnalysisOptions()
    out = Path(out_dir)
    on_stage("reading the FiLM parameters of the split's questions")
    params = collect_film_params(model, split, options.max_questions, seed=options.seed)
    statistics = film_statistics(params)
    _write_json(out / "film-statistics.json", statistics)
    plot_film_histograms(params, out / "histograms.png")

    on_stage("t-SNE of the first and last block's parameters")
    tsne_params = params.sample(options.tsne_questions, seed=options.seed)  # t-SNE grows fast with the count
    names = function_names(tsne_params.functions)
    blocks = sorted({0, tsne_params.gammas.shape[1] - 1})
    tsne_files = []
    for block in blocks:
        points = tsne_points(tsne_params, block, seed=options.seed)
        title = f"FiLM parameters of block {block + 1}, by final function"
        tsne_files.append(plot_tsne(points, names, out / f"tsne-block-{block + 1}.png", title).name)

    on_stage("test-time ablations")
    train_params = collect_film_params(model, train, options.train_questions, seed=options.seed)
    labelled = np.flatnonzero(split.arrays.answers >= 0)
    rng = np.random.default_rng(options.seed)
    scored = rng.choice(labelled, size=min(options.ablation_questions, len(labelled)), replace=False)
    ablations = ablation_accuracies(model, split, train_params, indices=scored, noise_std=options.noise_std)
    _write_json(out / "ablations.json", {"questions": len(scored), "noise_std": options.noise_std, **ablations})

    on_stage("heatmaps for questions about one object")
    examples = heatmap_examples(model, split, object_question_indices(split, options.examples), out / "heatmaps")
    summary = {"statistics": statistics, "ablations": ablations, "tsne": tsne_files, "examples": examples}
    if options.arithmetic:
        on_stage("FiLM-parameter arithmetic for colour-shape pairs unseen in condition A")
        summary["arithmetic"] = arithmetic_accuracies(model, split)
        _write_json(out / "arithmetic.json", summary["arithmetic"])
    write_markdown(out / "analysis.md", summary, out)
    return summary


def write_markdown(path: Path, summary: dict, out: Path) -> None:
    """analysis.md: the numbers as tables, the figures inline."""
    gamma, beta = summary["statistics"]["gamma"], summary["statistics"]["beta"]
    lines = ["# FiLM analysis", "", f"FiLM parameters of {summary['statistics']['questions']:,} questions.", ""]
    lines += ["| | mean | std | min | max | 1st pct | 99th pct | negative | near 0 |", "|---|" + "---:|" * 8]
    rows = [("gamma, all blocks", gamma["overall"]), ("beta, all blocks", beta["overall"])]
    rows += [(f"gamma, block {n + 1}", block) for n, block in enumerate(gamma["per_block"])]
    rows += [(f"beta, block {n + 1}", block) for n, block in enumerate(beta["per_block"])]
    for name, s in rows:
        near_zero = f"{s['share_near_zero']:.1%}" if "share_near_zero" in s else ""
        lines.append(
            f"| {name} | {s['mean']:.3f} | {s['std']:.3f} | {s['min']:.2f} | {s['max']:.2f} | {s['p1']:.2f} "
            f"| {s['p99']:.2f} | {s['share_negative']:.1%} | {near_zero} |"
        )
    lines += ["", f"Near 0 means |gamma| < {NEAR_ZERO}: the feature map is all but switched off.", ""]
    lines += ["![histograms](histograms.png)", "", "## Test-time ablations", "", "| change | accuracy |", "|---|---:|"]
    lines += [f"| {name} | {100 * value:.1f}% |" for name, value in summary["ablations"].items()]
    if "arithmetic" in summary:
        found = summary["arithmetic"]
        lines += ["", "## FiLM-parameter arithmetic (CoGenT)", ""]
        lines += [f"On the {found['questions']:,} questions naming a colour-shape pair condition A never shows: "
                  f"{100 * found['before']:.1f}% with the model's own FiLM parameters, {100 * found['after']:.1f}% "
                  "with params(colour sphere) + params(donor colour shape) - params(donor colour sphere)."]  # fmt: skip
    lines += ["", "## t-SNE of the FiLM parameters", ""] + [f"![{name}]({name})" for name in summary["tsne"]]
    lines += ["", "## Where the classifier's max-pool fires", ""]
    lines += ["| image | question | answer | model |", "|---|---|---|---|"]
    for record in summary["examples"]:
        picture = record["picture"].relative_to(out)
        lines.append(f"| ![]({picture}) | {record['question']} | {record['truth']} | {record['answer']} |")
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
