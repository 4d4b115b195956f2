"""Accuracy of a model on a cached split, tallied the way the paper reports it, and the predictions file.

Counts are plain integer arrays of (correct, total) pairs: overall, per Table 1 category, per final function
and per question family. A distributed caller evaluates its shard on every rank, sums
:meth:`EvalResult.counts_vector` across ranks (``torch.distributed.all_reduce``) and rebuilds the result with
:meth:`EvalResult.with_counts`; :meth:`EvalResult.merge` does the same for results already gathered in one place.

Questions without a known answer (test splits, or answers outside the vocabulary) get predictions but are not
scored. The four special tokens that open every answer vocabulary (<NULL>, <START>, <END>, <UNK>) are never
predicted: they are not answers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from filmkit.atomic import atomic_output
from filmkit.data.cache import read_manifest
from filmkit.data.dataset import CachedSplit, keep_batch
from filmkit.data.locate import default_cache_dir, is_cache, locate_cache
from filmkit.data.preprocess import Progress as PreprocessProgress
from filmkit.data.question_types import CATEGORIES, CATEGORY_TITLES, FINAL_FUNCTIONS
from filmkit.data.vocab import SPECIAL_TOKENS, Vocab
from filmkit.train.devices import autocast_context
from filmkit.vqa import Checkpoint

Progress = Callable[[int, int], None]  # (questions done, questions in total)


def mask_special_answers(logits: torch.Tensor) -> torch.Tensor:
    """Logits with the special answer tokens set to -inf (a copy), so argmax and softmax see only answers.

    >>> mask_special_answers(torch.tensor([[9.0, 0.0, 0.0, 0.0, 1.0, 2.0]])).argmax(dim=1).item()
    5
    """
    specials = len(SPECIAL_TOKENS)
    if logits.shape[-1] <= specials:
        raise ValueError(f"the model has {logits.shape[-1]} outputs: no room for answers after the special tokens")
    masked = logits.to(torch.float32, copy=True)
    masked[..., :specials] = float("-inf")
    return masked


def _ratio(correct: int, total: int) -> float | None:
    return 100.0 * correct / total if total else None


@dataclass
class EvalResult:
    """Predictions and (correct, total) counts of one evaluation.

    ``questions`` counts every question evaluated; ``overall`` (2,) and the tables count (correct, total) over
    the questions with a known answer only: ``categories`` (len(CATEGORIES), 2) in Table 1 order, ``functions``
    (len(FINAL_FUNCTIONS), 2), ``families`` (num_families, 2) indexed by template family. ``predictions[i]`` is
    the predicted answer id of question ``indices[i]`` (split positions, ascending).

    >>> result = EvalResult.from_counts(np.arange(1 + 2 * (1 + 5 + 13 + 1)), num_families=1)
    >>> result.questions, result.overall.tolist(), result.families.tolist()
    (0, [1, 2], [[39, 40]])
    """

    questions: int
    overall: np.ndarray
    categories: np.ndarray
    functions: np.ndarray
    families: np.ndarray
    predictions: np.ndarray
    indices: np.ndarray

    @property
    def scored(self) -> int:
        """Questions with a known answer: the denominator of the accuracy."""
        return int(self.overall[1])

    @property
    def has_answers(self) -> bool:
        """Whether any evaluated question had a known answer (else there is no accuracy to report)."""
        return self.scored > 0

    @property
    def accuracy(self) -> float | None:
        """Overall accuracy in [0, 1], or None when no question had a known answer."""
        return float(self.overall[0] / self.overall[1]) if self.has_answers else None

    @property
    def category_accuracy(self) -> dict[str, float | None]:
        """Accuracy in [0, 1] per Table 1 category (None for a category without scored questions)."""
        return {name: (c / t if t else None) for name, (c, t) in zip(CATEGORIES, self.categories.tolist(), strict=True)}

    # -- counts as one vector, for summing across ranks -----------------------------------------------------------

    def counts_vector(self) -> np.ndarray:
        """All counts as one int64 vector: questions, then overall, categories, functions and families as
        (correct, total) pairs."""
        parts = ([self.questions], self.overall, self.categories, self.functions, self.families)
        return np.concatenate([np.asarray(part).reshape(-1) for part in parts]).astype(np.int64)

    @classmethod
    def from_counts(
        cls,
        vector: np.ndarray | torch.Tensor,
        num_families: int,
        predictions: np.ndarray | None = None,
        indices: np.ndarray | None = None,
    ) -> EvalResult:
        """Inverse of :meth:`counts_vector` (e.g. after an all-reduce); predictions default to none."""
        vector = np.asarray(vector.cpu() if isinstance(vector, torch.Tensor) else vector, dtype=np.int64)
        sizes = (1, len(CATEGORIES), len(FINAL_FUNCTIONS), num_families)
        if vector.shape != (1 + 2 * sum(sizes),):
            raise ValueError(
                f"a counts vector for {num_families} families has {1 + 2 * sum(sizes)} entries, got {vector.shape}"
            )
        pairs = vector[1:].reshape(-1, 2)
        bounds = np.cumsum((0, *sizes))
        overall, categories, functions, families = (pairs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        empty = np.zeros(0, dtype=np.int64)
        return cls(
            questions=int(vector[0]),
            overall=overall.reshape(2),
            categories=categories,
            functions=functions,
            families=families,
            predictions=empty if predictions is None else np.asarray(predictions, dtype=np.int64),
            indices=empty if indices is None else np.asarray(indices, dtype=np.int64),
        )

    def with_counts(self, vector: np.ndarray | torch.Tensor) -> EvalResult:
        """This result's predictions with other counts, e.g. the sum over all ranks of a distributed evaluation.

        Example::

            counts = torch.from_numpy(result.counts_vector())
            torch.distributed.all_reduce(counts)          # every rank now holds the whole split's counts
            result = result.with_counts(counts)
        """
        return EvalResult.from_counts(vector, len(self.families), self.predictions, self.indices)

    @classmethod
    def merge(cls, results: Sequence[EvalResult]) -> EvalResult:
        """One result from several (e.g. the shards of all ranks): counts summed, predictions in split order."""
        if not results:
            raise ValueError("nothing to merge")
        sizes = {len(result.families) for result in results}
        if len(sizes) != 1:
            raise ValueError(f"results count different numbers of families: {sorted(sizes)}")
        indices = np.concatenate([result.indices for result in results])
        predictions = np.concatenate([result.predictions for result in results])
        order = np.argsort(indices, kind="stable")
        total = np.sum([result.counts_vector() for result in results], axis=0)
        return cls.from_counts(total, sizes.pop(), predictions[order], indices[order])

    # -- reports --------------------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Plain-JSON summary: accuracies in percent (None without scored questions) beside their counts.

        Keys: ``questions``, ``scored``, ``has_answers``, ``overall``, ``categories`` (all five Table 1
        columns, with a ``title``), ``functions`` and ``families`` (those with scored questions).
        """

        def entry(pair) -> dict:
            correct, total = (int(value) for value in pair)
            return {"accuracy": _ratio(correct, total), "correct": correct, "total": total}

        return {
            "questions": self.questions,
            "scored": self.scored,
            "has_answers": self.has_answers,
            "overall": entry(self.overall),
            "categories": {
                name: {"title": CATEGORY_TITLES[name], **entry(pair)}
                for name, pair in zip(CATEGORIES, self.categories, strict=True)
            },
            "functions": {
                name: entry(pair) for name, pair in zip(FINAL_FUNCTIONS, self.functions, strict=True) if pair[1]
            },
            "families": {str(family): entry(pair) for family, pair in enumerate(self.families) if pair[1]},
        }

    def to_markdown(self, title: str | None = None) -> str:
        """A Table 1 style table (overall and the five categories), then tables per final function and family."""
        lines = [f"## {title}", ""] if title else []
        if not self.has_answers:
            lines += [f"{self.questions} questions, none with a known answer: predictions only, no accuracy.", ""]
            return "\n".join(lines)
        columns = ["Overall", *(CATEGORY_TITLES[name] for name in CATEGORIES)]
        pairs = [self.overall, *self.categories]
        lines += [
            "| | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
            "| accuracy (%) | " + " | ".join(_percent(c, t) for c, t in pairs) + " |",
            "| questions | " + " | ".join(str(int(t)) for _, t in pairs) + " |",
            "",
        ]
        if self.scored < self.questions:
            lines += [
                f"{self.questions - self.scored} of {self.questions} questions have no known answer and are "
                "not scored.",
                "",
            ]
        for heading, names, table in (
            ("final function", FINAL_FUNCTIONS, self.functions),
            ("family", [str(i) for i in range(len(self.families))], self.families),
        ):
            rows = [(name, int(c), int(t)) for name, (c, t) in zip(names, table, strict=True) if t]
            if rows:
                lines += [f"| {heading} | accuracy (%) | correct | questions |", "|---|---:|---:|---:|"]
                lines += [f"| {name} | {_percent(c, t)} | {c} | {t} |" for name, c, t in rows]
                lines.append("")
        return "\n".join(lines)


def _percent(correct, total) -> str:
    return f"{100.0 * correct / total:.1f}" if total else "–"


def evaluate(
    model: nn.Module,
    dataset: CachedSplit,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    indices: Sequence[int] | np.ndarray | None = None,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> EvalResult:
    """Predict every question of ``dataset`` (or those at ``indices``) and tally accuracy by question type.

    ``model(images, questions) -> logits`` runs in eval mode under ``torch.no_grad()`` (autocast for ``bf16`` and
    ``fp16``) and gets its training mode back afterwards. Pass the bare model, not a DistributedDataParallel
    wrapper: the wrapper's collectives would hang when ranks evaluate different numbers of batches. ``progress``
    is called with (questions done, total) after each batch.

    Example::

        split = CachedSplit("cache/clevr-mini", "val")
        result = evaluate(model, split, batch_size=512)
        print(result.accuracy, result.category_accuracy["count"])
        write_predictions("val-predictions.txt", result, split)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = torch.device(device)
    chosen = np.arange(len(dataset)) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
    if len(chosen) and (chosen[0] < 0 or chosen[-1] >= len(dataset)):
        raise ValueError(f"indices must lie in 0..{len(dataset) - 1}")
    arrays = dataset.arrays
    num_families = int(arrays.families.max()) + 1  # from the whole split, so that every rank agrees
    batches = [chosen[start : start + batch_size].tolist() for start in range(0, len(chosen), batch_size)]
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=keep_batch, num_workers=num_workers)
    autocast = autocast_context(device, precision)

    predictions = np.empty(len(chosen), dtype=np.int64)
    done = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast:
            for batch in loader:
                logits = model(batch["images"].to(device), batch["questions"].to(device))
                count = len(batch["indices"])
                predictions[done : done + count] = mask_special_answers(logits).argmax(dim=1).cpu().numpy()
                done += count
                if progress:
                    progress(done, len(chosen))
    finally:
        model.train(was_training)

    answers = arrays.answers[chosen]
    scored = answers >= 0
    correct = scored & (predictions == answers)

    def tally(codes: np.ndarray, size: int) -> np.ndarray:
        valid = scored & (codes >= 0)
        return np.stack(
            (np.bincount(codes[valid & correct], minlength=size), np.bincount(codes[valid], minlength=size)), axis=1
        ).astype(np.int64)

    return EvalResult(
        questions=len(chosen),
        overall=np.array([correct.sum(), scored.sum()], dtype=np.int64),
        categories=tally(arrays.categories[chosen], len(CATEGORIES)),
        functions=tally(arrays.functions[chosen], len(FINAL_FUNCTIONS)),
        families=tally(arrays.families[chosen], num_families),
        predictions=predictions,
        indices=chosen,
    )


def write_predictions(path: str | os.PathLike, result: EvalResult, dataset: CachedSplit) -> Path:
    """Write one predicted answer per line, in the order of the questions in the split's source file.

    That is the format CLEVR's evaluation server expected for the test split. The file appears atomically.

    Example::

        write_predictions("CLEVR_test_predictions.txt", evaluate(model, split), split)
    """
    answer_tokens = dataset.vocab.answer_tokens
    order = np.argsort(dataset.arrays.orig_idxs[result.indices], kind="stable")
    with atomic_output(path, "w") as handle:
        handle.writelines(f"{answer_tokens[answer]}\n" for answer in result.predictions[order])
    return Path(path)


def open_split(
    checkpoint: Checkpoint,
    data: str | os.PathLike,
    split: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 2,
    progress: PreprocessProgress | None = None,
) -> CachedSplit:
    """The split of ``data`` (a cache, or a dataset folder preprocessed first) encoded as ``checkpoint`` expects.

    A dataset folder is cached at the checkpoint's resolution with the checkpoint's vocabulary (in ``cache_dir``,
    default the dataset's own ``.filmkit`` folder). A cache whose vocabulary differs from the checkpoint's is
    refused: its token ids would mean other words to the model.

    Example::

        checkpoint = load_checkpoint("runs/demo/best.pt")
        split = open_split(checkpoint, "data/tiny", "val")     # builds data/tiny/.filmkit/cache-64x64 if needed
        result = evaluate(checkpoint.model, split)
    """
    if not checkpoint.vocab:
        raise ValueError("the checkpoint holds no vocabulary, so its question and answer ids cannot be decoded")
    vocab = Vocab.from_json(checkpoint.vocab, source="checkpoint vocabulary")
    config = checkpoint.model.config
    if len(vocab.answer_tokens) != config.num_answers:
        raise ValueError(
            f"the checkpoint's vocabulary has {len(vocab.answer_tokens)} answers but its model "
            f"{config.num_answers} outputs"
        )
    data = Path(data)
    resolution = tuple(checkpoint.metadata.get("resolution") or (config.image_width, config.image_height))
    if data.exists() and not is_cache(data):
        if config.input_kind == "features":
            raise ValueError(
                f"{data}: a dataset folder, and this model reads ResNet-101 features; build their cache first "
                "(filmkit preprocess --features resnet101 --weights FILE) and pass the cache"
            )
        target = Path(cache_dir) if cache_dir else default_cache_dir(data, resolution)
    else:
        target = data
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = None
        if (target / "vocab.json").exists():
            check_same_vocab(Vocab.load(target / "vocab.json"), vocab, target)
        else:
            vocab_file = vocab.save(Path(scratch) / "vocab.json")
        cache = locate_cache(
            data, resolution, vocab_path=vocab_file, cache_dir=cache_dir, workers=workers, progress=progress
        )
    if vocab_file is None:  # checked above; again, as a dataset's own cache is rebuilt when its questions change
        check_same_vocab(Vocab.load(cache / "vocab.json"), vocab, cache)
    manifest = read_manifest(cache)
    expected_kind = checkpoint.metadata.get("image_kind")
    if manifest and expected_kind and manifest.get("image_kind") != expected_kind:
        raise ValueError(f"{cache}: holds {manifest.get('image_kind')} images, the model reads {expected_kind}")
    opened = CachedSplit(cache, split, Vocab.load(cache / "vocab.json"))
    expected_shape = (config.in_channels, config.image_height, config.image_width)
    if opened.image_shape != expected_shape:
        raise ValueError(
            f"{cache}: split {split!r} serves images of shape {opened.image_shape}, the model reads {expected_shape}"
        )
    return opened


def check_same_vocab(found: Vocab, expected: Vocab, where: Path) -> None:
    """Raise ValueError unless ``found`` gives every question word and answer the ids ``expected`` gives."""
    differences = []
    for name, ours, theirs in (
        ("question tokens", found.question_token_to_idx, expected.question_token_to_idx),
        ("answers", found.answer_token_to_idx, expected.answer_token_to_idx),
    ):
        differing = set(ours.items()) ^ set(theirs.items())
        if differing:
            differences.append(f"{len({token for token, _ in differing})} {name} differ")
    if differences:
        raise ValueError(
            f"{where}: this cache's vocabulary is not the checkpoint's ({', '.join(differences)}), so its ids would "
            "mean other words to the model; evaluate on the dataset folder with --cache NEW_DIR to encode it with "
            "the checkpoint's vocabulary"
        )
