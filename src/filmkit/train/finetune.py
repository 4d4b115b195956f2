"""Fine-tuning a FiLM model on new questions (the paper's CLEVR-Humans transfer).

The paper fine-tunes only the FiLM generator (question encoder and output layer) with the visual network frozen,
and lets new words in: words of the new training questions seen at least ``min_word_count`` times join the
vocabulary, rarer ones stay <UNK>. A new word's embedding starts as <UNK>'s, so before any step the grown model
answers exactly as the original did. Training itself is `filmkit train`'s Trainer with ``init_checkpoint`` and
``freeze = "visual"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from filmkit.data.locate import is_cache
from filmkit.data.preprocess import Progress, preprocess
from filmkit.data.readers import find_splits, read_questions
from filmkit.data.vocab import UNK, Vocab, expand_vocab
from filmkit.vqa import FiLMVQA, load_checkpoint, save_checkpoint


def grow_vocabulary(model: FiLMVQA, vocab: Vocab, texts: list[str], min_count: int) -> tuple[Vocab, list[str]]:
    """Add the words of ``texts`` seen ``min_count`` times to ``vocab`` and rows for them to ``model``'s embedding.

    The new rows copy <UNK>'s, which is how the model read those words until now. Changes ``model`` in place.
    """
    bigger, added = expand_vocab(vocab, texts, min_count)
    if added:
        old = model.encoder.embedding
        grown = nn.Embedding(len(bigger.question_token_to_idx), old.embedding_dim).to(old.weight.device)
        with torch.no_grad():
            grown.weight[: old.num_embeddings] = old.weight
            grown.weight[old.num_embeddings :] = old.weight[UNK]
        model.encoder.embedding = grown
        model.config.vocab_size = grown.num_embeddings
    return bigger, added


@dataclass
class FinetuneData:
    cache: Path  # the new data, cached with the grown vocabulary
    init_checkpoint: Path  # the grown model, where training starts
    added_words: list[str]


def prepare_finetune(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    min_word_count: int = 2,
    train_split: str = "train",
    images_root: str | Path | None = None,
    workers: int = 2,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> FinetuneData:
    """Grow ``checkpoint``'s vocabulary from ``data_dir``'s training questions and cache ``data_dir`` with it.

    ``data_dir`` is a dataset folder in the CLEVR layout; ``images_root`` holds ``images/<split>/`` when
    ``data_dir`` has questions only (the real CLEVR-Humans, whose images are CLEVR v1.0's). Writes
    ``out_dir/cache`` (resumed if there; with ``overwrite``, replaced if it was made otherwise) and
    ``out_dir/init.pt``.

    Example::

        prepared = prepare_finetune("runs/clevr/best.pt", "data/humans-like", "runs/humans")
        config = TrainConfig(init_checkpoint=str(prepared.init_checkpoint), freeze="visual", lr=1e-4)
        Trainer(config, prepared.cache, "runs/humans/run").run()
    """
    data_dir, out = Path(data_dir), Path(out_dir)
    if is_cache(data_dir):
        raise ValueError(f"{data_dir}: a cache; fine-tuning needs the dataset folder, to read the new questions' words")
    loaded = load_checkpoint(checkpoint)
    model = loaded.model
    if not isinstance(model, FiLMVQA) or not loaded.vocab:
        raise ValueError(f"{checkpoint}: fine-tuning needs a FiLM checkpoint with its vocabulary")
    if model.config.input_kind != "pixels":
        raise ValueError(f"{checkpoint}: reads ResNet features; fine-tuning supports models on pixels for now")
    sources = find_splits(data_dir, images_root)
    if train_split not in sources:
        raise ValueError(f"{data_dir}: no {train_split!r} split to fine-tune on (found {', '.join(sources)})")
    texts = [record.question for record in read_questions(sources[train_split])]
    vocab, added = grow_vocabulary(model, Vocab.from_json(loaded.vocab), texts, min_word_count)
    out.mkdir(parents=True, exist_ok=True)
    vocab_file = vocab.save(out / "vocab.json")
    resolution = tuple(loaded.metadata.get("resolution") or (model.config.image_width, model.config.image_height))
    cache = out / "cache"
    preprocess(
        data_dir,
        cache,
        resolution=resolution,
        images_root=images_root,
        vocab_path=vocab_file,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
    )
    metadata = {**loaded.metadata, "finetune_from": str(checkpoint), "added_words": added}
    init = save_checkpoint(out / "init.pt", model, vocab=vocab.to_json(), metadata=metadata)
    return FinetuneData(cache=cache, init_checkpoint=init, added_words=added)
