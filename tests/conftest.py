"""Shared fixtures: tiny models and batches that run in milliseconds."""

import pytest
import torch

from filmkit.vqa import FiLMVQAConfig

TINY = dict(
    vocab_size=12,
    num_answers=5,
    embedding_dim=8,
    rnn_hidden_dim=16,
    in_channels=8,
    image_height=6,
    image_width=6,
    module_dim=8,
    num_blocks=2,
    classifier_proj_dim=16,
    classifier_fc_dims=(16,),
)


def tiny_config(**overrides) -> FiLMVQAConfig:
    """A features-input model small enough to build and train a step in a few milliseconds."""
    return FiLMVQAConfig(**{**TINY, **overrides})


def tiny_batch(config: FiLMVQAConfig, batch: int = 6, seed: int = 0):
    """Random images, right-padded questions of varied lengths, and answers for ``config``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, config.in_channels, config.image_height, config.image_width, generator=generator)
    lengths = torch.randint(2, 7, (batch,), generator=generator)
    questions = torch.zeros(batch, 8, dtype=torch.long)
    for row, length in enumerate(lengths.tolist()):
        questions[row, :length] = torch.randint(1, config.vocab_size, (length,), generator=generator)
    answers = torch.randint(0, config.num_answers, (batch,), generator=generator)
    return images, questions, answers


@pytest.fixture(autouse=True)
def _seeded_and_threads_restored():
    """Seed torch; afterwards undo any thread count a command set in-process (``filmkit rl ... --threads``)."""
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
