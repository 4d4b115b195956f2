"""A tiny dataset and training settings that run a few steps in well under a second."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from fixtures import clevr_dataset, clevr_split, generated_micro_dataset  # noqa: E402, F401 (re-exported)

from filmkit.data.preprocess import preprocess  # noqa: E402
from filmkit.train.config import TrainConfig  # noqa: E402

TINY_MODEL = {
    "embedding_dim": 8,
    "rnn_hidden_dim": 16,
    "module_dim": 8,
    "num_blocks": 2,
    "classifier_proj_dim": 16,
    "classifier_fc_dims": [16],
    "block_dropout": 0.1,  # dropout draws random numbers: exact resume must restore the RNG too
}


def tiny_cache(root: Path) -> Path:
    preprocess(clevr_dataset(root / "clevr"), root / "cache", resolution=(16, 16))
    return root / "cache"


def tiny_cogent(root: Path) -> Path:
    """CoGenT's five splits in the CLEVR layout (hand-written questions: none for the arithmetic to edit)."""
    for number, split in enumerate(("trainA", "valA", "valB", "testA", "testB")):
        clevr_split(root, split, list(range(4 * number, 4 * number + 4)))
    return root


def tiny_config(**overrides) -> TrainConfig:
    values = dict(
        preset="cpu",
        model=dict(TINY_MODEL),
        batch_size=4,
        max_steps=12,
        val_every=5,
        checkpoint_every=3,
        log_every=2,
        val_subset=4,
        seed=7,
        augment_shift=1,  # so that the resume test also covers the augmentation's random offsets
        curves=False,  # matplotlib at every validation would cost the suite more than the training does
    )
    values.update(overrides)
    return TrainConfig(**values)
