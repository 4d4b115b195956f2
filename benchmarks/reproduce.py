"""The paper's tables, analysis and transfer results on filmkit data, our numbers beside the paper's.

    filmkit generate dataset --preset clevr-mini --out data/clevr-mini
    filmkit generate dataset --preset cogent-mini --out data/cogent-mini
    filmkit preprocess --data data/clevr-mini --out data/clevr-mini-cache64 --resolution 64x64
    python benchmarks/reproduce.py --data data/clevr-mini-cache64 --dataset data/clevr-mini --cogent data/cogent-mini

Table 1: the question-only guess, the four baselines and FiLM; Table 2: FiLM's ablations (config switches of
the model); Table 3: the number of ResBlocks. The rows are config files, listed in configs/paper/tables.yaml, that
`filmkit train --config` also runs. Each trained row runs `filmkit train`'s Trainer with the same recipe
(the `cpu` preset's widths, Adam 1e-3 with warmup and cosine decay, bf16 where the CPU has it) for ``--steps``
steps of batch 64, or for as many as fit in ``--max-minutes`` at the model's speed here (timed over a few steps
first), whichever is fewer: the same samples for every FiLM row and the baselines that keep up, the same time for
a model too slow for that (the relation network over 4,096 pairs of cells). The cosine decay is sized to the steps
a row gets, so every run finishes its schedule. Then its best checkpoint is scored on the full validation split.
Finished rows are kept in OUT/results.jsonl and skipped when the script runs again, so an interrupted reproduction
continues. The Markdown report is rewritten after every row; a hand-written "## Discussion" at its end is kept.
``--rows`` picks rows (and stages) by name.

After the tables come three stages, each a row of the ledger:

- ``analysis``: `filmkit analyze` of the FiLM row on the validation split; figures in docs/reproduction/.
- ``humans-like``: the FiLM row's questions reworded (`filmkit generate humans-like`, from ``--dataset``), scored
  before and after fine-tuning the question side for ``--finetune-steps`` with the visual network frozen.
- ``CoGenT``: FiLM trained on condition A of ``--cogent`` (a cogent-mini dataset) with the same recipe, scored on
  testA and testB; the zero-shot FiLM-parameter arithmetic on testB; then the whole model fine-tuned on valB
  (the paper's "small B subset") and scored on testA and testB again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch.nn.functional as F
import yaml

from filmkit.analysis.analyze import AnalysisOptions, analyze
from filmkit.analysis.arithmetic import arithmetic_accuracies
from filmkit.analysis.baselines import question_only_accuracy
from filmkit.atomic import atomic_output
from filmkit.clevr.reword import write_humans_like
from filmkit.data.cache import read_manifest
from filmkit.data.dataset import CachedSplit
from filmkit.data.preprocess import preprocess
from filmkit.data.question_types import CATEGORIES, CATEGORY_TITLES
from filmkit.experiments.recipes import get_recipe
from filmkit.train.allocator import tune_memory
from filmkit.train.config import TrainConfig, load_config, model_config
from filmkit.train.devices import autocast_context, fastest_precision, resolve_device
from filmkit.train.evaluate import evaluate
from filmkit.train.finetune import prepare_finetune
from filmkit.train.loop import Trainer, make_adam
from filmkit.vqa import load_checkpoint
from filmkit.vqa.baselines import build_model

# The rows of Tables 1-3: configs/paper/tables.yaml lists them, one training config file each (`filmkit train
# --config configs/paper/FILE` trains a row alone). Each entry: (table, row name, config file or None for the
# question-only guess, the paper's accuracy: Table 1 on CLEVR test, Tables 2-3 on val).
TABLES = Path(__file__).resolve().parents[1] / "configs" / "paper"
ROWS = [
    (str(row["table"]), row["name"], row["config"], row["paper"])
    for row in yaml.safe_load((TABLES / "tables.yaml").read_text())["rows"]
]
STAGES = ("analysis", "humans-like", "CoGenT")
RECIPE = get_recipe("cpu")  # the speedrun's recipe (filmkit.experiments.recipes), with a step budget per row
FINETUNE = {**RECIPE, "lr": 3e-4, "warmup_steps": 0, "schedule": "constant", "val_every": 250}
# The paper's analysis and transfer numbers (film-paper.md): accuracy drops, shares, and before -> after.
PAPER_ABLATION_DROP = {"beta := mean": 1.0, "gamma := mean": 65.4}
PAPER_SHARE_NEGATIVE = {"gamma": 0.36, "beta": 0.76}
PAPER_HUMANS = (56.6, 75.9)  # the real CLEVR-Humans, FiLM before and after fine-tuning
PAPER_COGENT = {"trained on A": (98.3, 75.6), "fine-tuned on B": (80.8, 96.9)}  # (A, B)
PAPER_ARITHMETIC = {"subset": (71.5, 80.7), "overall B": (75.6, 78.8)}


def row_dir(out: Path, name: str) -> Path:
    return out / name.replace(" ", "-").replace(":=", "is").replace("+", "-")


def train(config: TrainConfig, cache: Path, run_dir: Path) -> Path:
    """Train ``config`` on ``cache`` in ``run_dir`` (from scratch) and return the best checkpoint's path."""
    Trainer(config, cache, run_dir, overwrite=True).run()
    return run_dir / "best.pt"


def recipe(base: dict = RECIPE, **settings) -> TrainConfig:
    return TrainConfig(**{**base, "precision": fastest_precision(resolve_device("auto")), **settings})


def steps_that_fit(config: TrainConfig, split: CachedSplit, minutes: float, timed_steps: int = 3) -> int:
    """How many training steps (forward, backward, Adam) of ``config``'s model fit in ``minutes`` on this machine."""
    vocab = split.vocab
    sizes = (len(vocab.question_token_to_idx), len(vocab.answer_token_to_idx), split.image_shape)
    model = build_model(model_config(config, *sizes))
    optimizer = make_adam(model.parameters(), config.lr, config.weight_decay)
    batch = split.__getitems__(list(range(min(config.batch_size, len(split)))))

    def step() -> None:
        with autocast_context(resolve_device(config.device), config.precision):
            loss = F.cross_entropy(model(batch["images"], batch["questions"]).float(), batch["answers"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # the first step allocates and picks kernels
    started = time.perf_counter()
    for _ in range(timed_steps):
        step()
    return max(1, int(minutes * 60 * timed_steps / (time.perf_counter() - started)))


def run_row(name: str, config_file: str | None, args) -> dict:
    """Train one row for the budget (or score the question-only guess) and return its accuracies."""
    val = CachedSplit(args.data, "val")
    if config_file is None:
        return {"overall": question_only_accuracy(CachedSplit(args.data, "train"), val), "categories": {}}
    config = load_config(TABLES / config_file)
    config.precision = fastest_precision(resolve_device(config.device))
    train_split = CachedSplit(args.data, "train", val.vocab)
    config.max_steps = min(args.steps, steps_that_fit(config, train_split, args.max_minutes))
    result = evaluate(load_checkpoint(train(config, args.data, row_dir(args.out, name))).model, val)
    return {
        "overall": result.accuracy,
        "categories": dict(zip(CATEGORIES, result.category_accuracy.values(), strict=True)),
        "steps": config.max_steps,
    }


def film_row_checkpoint(args) -> Path:
    checkpoint = row_dir(args.out, "FiLM") / "best.pt"
    if not checkpoint.exists():
        raise SystemExit(f"{checkpoint} does not exist: the analysis and humans-like stages need the FiLM row first")
    return checkpoint


def run_analysis(args) -> dict:
    """`filmkit analyze` of the FiLM row: statistics, ablations and figures into docs/reproduction/."""
    figures = args.doc.parent / "reproduction"
    model = load_checkpoint(film_row_checkpoint(args)).model
    train_split, val = CachedSplit(args.data, "train"), CachedSplit(args.data, "val")
    summary = analyze(model, train_split, val, figures, AnalysisOptions(examples=4))
    overall = {name: summary["statistics"][name]["overall"] for name in ("gamma", "beta")}
    return {"ablations": summary["ablations"], "statistics": overall, "folder": figures.name, "tsne": summary["tsne"]}


def run_humans_like(args) -> dict:
    """Reword clevr-mini's questions, then fine-tune the FiLM row's question side on them; accuracy before/after."""
    reworded = args.out / "humans-like"
    write_humans_like(args.dataset, reworded, ["train", "val"])
    finetune_dir = args.out / "humans-like-finetune"
    prepared = prepare_finetune(
        film_row_checkpoint(args), reworded, finetune_dir, images_root=args.dataset, workers=args.workers
    )
    val = CachedSplit(prepared.cache, "val")
    before = evaluate(load_checkpoint(prepared.init_checkpoint).model, val).accuracy
    start = str(prepared.init_checkpoint)
    config = recipe(FINETUNE, init_checkpoint=start, freeze="visual", max_steps=args.finetune_steps)
    after = evaluate(load_checkpoint(train(config, prepared.cache, finetune_dir / "run")).model, val).accuracy
    return {"before": before, "after": after, "added_words": prepared.added_words}


def run_cogent(args) -> dict:
    """Train FiLM on condition A, score A and B, apply the FiLM-parameter arithmetic, fine-tune on B, score again."""
    cache = args.out / "cogent-cache"
    preprocess(args.cogent, cache, resolution=tuple(read_manifest(args.data)["resolution"]), workers=args.workers)
    tests = {name: CachedSplit(cache, name) for name in ("testA", "testB")}
    trained = train(recipe(max_steps=args.steps, train_split="trainA", val_split="valA"), cache, args.out / "CoGenT-A")
    model = load_checkpoint(trained).model
    scores = {"trained on A": [evaluate(model, split).accuracy for split in tests.values()]}
    try:
        arithmetic = arithmetic_accuracies(model, tests["testB"])
    except ValueError:  # no testB question names an unseen colour-shape pair (only on toy data)
        arithmetic = {"questions": 0, "before": None, "after": None}
    if arithmetic["questions"]:  # the other questions keep their answers, so the overall change follows
        gain = (arithmetic["after"] - arithmetic["before"]) * arithmetic["questions"] / len(tests["testB"])
        arithmetic["overall_before"] = scores["trained on A"][1]
        arithmetic["overall_after"] = scores["trained on A"][1] + gain
    on_b = {"train_split": "valB", "val_split": "valB"}  # cogent-mini's valB is the paper's "small B subset"
    config = recipe(FINETUNE, init_checkpoint=str(trained), max_steps=args.finetune_steps, **on_b)
    finetuned = load_checkpoint(train(config, cache, args.out / "CoGenT-finetune-B")).model
    scores["fine-tuned on B"] = [evaluate(finetuned, split).accuracy for split in tests.values()]
    return {"scores": scores, "arithmetic": arithmetic, "finetune_questions": len(CachedSplit(cache, "valB"))}


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table_lines(results: dict[str, dict]) -> list[str]:
    lines = []
    for table, title in (("1", "Table 1: models"), ("2", "Table 2: ablations"), ("3", "Table 3: ResBlocks")):
        lines += [f"## {title}", ""]
        header = "| row | ours | paper | steps | minutes |"
        if table == "1":
            header += "".join(f" {CATEGORY_TITLES[c]} |" for c in CATEGORIES)
        lines += [header, "|---|" + "---:|" * (header.count("|") - 2)]
        for row_table, name, _, paper in ROWS:
            if row_table != table:
                continue
            found = results.get(name)
            ours, minutes = (percent(found["overall"]), f"{found['minutes']:.1f}") if found else ("not run", "-")
            steps = f"{found['steps']:,}" if found and "steps" in found else "-"
            cells = f"| {name} | {ours} | {paper} | {steps} | {minutes} |"
            if table == "1":
                categories = found["categories"] if found else {}
                cells += "".join(f" {percent(categories.get(c))} |" for c in CATEGORIES)
            lines.append(cells)
        lines.append("")
    return lines


def analysis_lines(found: dict | None) -> list[str]:
    lines = ["## What FiLM learns (analysis of the FiLM row)", ""]
    if not found:
        return lines + ["Not run yet.", ""]
    ablations, folder = found["ablations"], found["folder"]
    lines += ["Test-time ablations on the validation split: each question's beta (or gamma) replaced by its",
              "training-set mean, or given Gaussian noise of one spread.", "",
              "| change | accuracy | drop (points) | the paper's drop |", "|---|---:|---:|---:|"]  # fmt: skip
    for name, value in ablations.items():
        drop = 100 * (ablations["none"] - value)
        paper = PAPER_ABLATION_DROP.get(name)
        lines.append(f"| {name} | {percent(value)} | {drop:.1f} | {paper if paper is not None else '-'} |")
    lines += ["", "| | range | 1st-99th percentile | negative | the paper's negative |", "|---|---|---|---:|---:|"]
    for name, stats in found["statistics"].items():
        lines.append(f"| {name} | {stats['min']:.1f} .. {stats['max']:.1f} | {stats['p1']:.2f} .. {stats['p99']:.2f} "
                     f"| {stats['share_negative']:.0%} | {PAPER_SHARE_NEGATIVE[name]:.0%} |")  # fmt: skip
    link = f"[{folder}/analysis.md]({folder}/analysis.md)"
    lines += ["", f"Histograms, t-SNE by final function and max-pool heatmaps: {link}.", "",
              f"![histograms]({folder}/histograms.png)", ""]  # fmt: skip
    lines += [f"![t-SNE]({folder}/{name})" for name in found["tsne"]] + [""]
    return lines


def transfer_lines(humans: dict | None, cogent: dict | None, film_row: dict | None) -> list[str]:
    lines = ["## Transfer: new wording (synthetic, humans-like)", ""]
    if humans:
        lines += ["The validation questions reworded with phrasings and synonyms absent from training (synthetic,",
                  "not the real CLEVR-Humans; the paper's numbers are on the real one). Only the question side",
                  "learned.", "",
                  "| | before fine-tuning | after | new words |", "|---|---:|---:|---:|",
                  f"| ours, original wording (the FiLM row) | {percent(film_row and film_row['overall'])} | - | - |",
                  f"| ours (humans-like val) | {percent(humans['before'])} | {percent(humans['after'])} "
                  f"| {len(humans['added_words'])} |",
                  f"| the paper (CLEVR-Humans) | {PAPER_HUMANS[0]} | {PAPER_HUMANS[1]} | - |", ""]  # fmt: skip
    else:
        lines += ["Not run yet (needs `--dataset`).", ""]
    lines += ["## Transfer: CoGenT", ""]
    if not cogent:
        return lines + ["Not run yet (needs `--cogent`).", ""]
    scores, arithmetic = cogent["scores"], cogent["arithmetic"]
    lines += [f"FiLM trained on cogent-mini's condition A with the tables' recipe, then the whole model fine-tuned on "
              f"valB ({cogent['finetune_questions']:,} questions).", "",
              "| | testA | testB | the paper's A | the paper's B |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, (on_a, on_b) in scores.items():
        paper_a, paper_b = PAPER_COGENT[name]
        lines.append(f"| {name} | {percent(on_a)} | {percent(on_b)} | {paper_a} | {paper_b} |")
    lines += ["", "Zero-shot FiLM-parameter arithmetic on testB (no B data seen): params(cyan cube) :=",
              "params(cyan sphere) + params(brown cube) - params(brown sphere).", ""]  # fmt: skip
    if arithmetic["questions"]:
        subset, overall = PAPER_ARITHMETIC["subset"], PAPER_ARITHMETIC["overall B"]
        lines += ["| | before | after | the paper's before -> after |", "|---|---:|---:|---:|",
                  f"| the {arithmetic['questions']:,} questions where it applies | {percent(arithmetic['before'])} "
                  f"| {percent(arithmetic['after'])} | {subset[0]} -> {subset[1]} |",
                  f"| all of testB | {percent(arithmetic['overall_before'])} | {percent(arithmetic['overall_after'])} "
                  f"| {overall[0]} -> {overall[1]} |", ""]  # fmt: skip
    else:
        lines += ["No testB question names a colour-shape pair that condition A never shows.", ""]
    return lines


def write_report(path: Path, results: dict[str, dict], args) -> None:
    """docs/reproduction.md: the tables, the analysis and the transfer results; a hand-written discussion is kept."""
    sources = "".join(f" --{name} {getattr(args, name)}" for name in ("dataset", "cogent") if getattr(args, name))
    budget = f"--steps {args.steps} --max-minutes {args.max_minutes:g}"
    command = f"python benchmarks/reproduce.py --data {args.data}{sources} {budget}"
    samples, batch = args.steps * RECIPE["batch_size"], RECIPE["batch_size"]
    minutes = sum(row.get("minutes", 0.0) for row in results.values())
    lines = ["# Reproducing the paper", ""]
    lines += [f"Each trained row ran {args.steps:,} steps of batch {batch} ({samples:,} samples), or as many as fit",
              f"in {args.max_minutes:g} minutes at its speed on this machine where fewer (`{command}`); its best",
              "checkpoint was then scored on the full validation split. The paper trained for days on CLEVR:",
              "compare orderings, not levels. 4 ResBlocks is Table 1's FiLM row.",
              f"Fine-tuning ran {args.finetune_steps:,} steps. Wall-clock of everything below: {minutes:.0f} minutes.",
              ""]  # fmt: skip
    lines += table_lines(results) + analysis_lines(results.get("analysis"))
    lines += transfer_lines(results.get("humans-like"), results.get("CoGenT"), results.get("FiLM"))
    discussion = ""
    if path.exists() and "\n## Discussion" in path.read_text():
        discussion = path.read_text()[path.read_text().index("\n## Discussion") + 1 :]
    with atomic_output(path, "w") as handle:
        handle.write("\n".join(lines) + ("\n" + discussion if discussion else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a cache (filmkit preprocess) of clevr-mini or CLEVR")
    parser.add_argument("--dataset", type=Path, help="the dataset folder behind --data (for the humans-like stage)")
    parser.add_argument("--cogent", type=Path, help="a cogent-mini dataset folder (for the CoGenT stage)")
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--doc", type=Path, default=Path("docs/reproduction.md"))
    parser.add_argument("--steps", type=int, default=3000, help="training steps (batch 64) of every trained row")
    parser.add_argument("--max-minutes", type=float, default=6.0, help="fewer steps for a model too slow for these")
    parser.add_argument("--finetune-steps", type=int, default=1000, help="steps of each fine-tuning")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding images when caching")
    parser.add_argument("--rows", nargs="+", help="rows and stages to run (default: all)")
    args = parser.parse_args()
    tune_memory()  # as the filmkit command does; FILMKIT_TUNE_MEMORY=0 measures without
    known = {name for _, name, _, _ in ROWS} | set(STAGES)
    unknown = sorted(set(args.rows or []) - known)
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    args.out.mkdir(parents=True, exist_ok=True)
    ledger = args.out / "results.jsonl"
    results = {}
    if ledger.exists():
        results = {row["name"]: row for row in map(json.loads, ledger.read_text().splitlines())}
    jobs = [(name, paper, lambda f=config_file, n=name: run_row(n, f, args)) for _, name, config_file, paper in ROWS]
    jobs += [("analysis", None, lambda: run_analysis(args))]
    if args.dataset:
        jobs += [("humans-like", None, lambda: run_humans_like(args))]
    if args.cogent:
        jobs += [("CoGenT", None, lambda: run_cogent(args))]
    for name, paper, job in jobs:
        if (args.rows and name not in args.rows) or name in results:
            continue
        started = time.perf_counter()
        row = {"name": name, "paper": paper, **job(), "minutes": (time.perf_counter() - started) / 60}
        results[name] = row
        with ledger.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        write_report(args.doc, results, args)
    write_report(args.doc, results, args)


if __name__ == "__main__":
    main()
