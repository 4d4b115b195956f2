"""`filmkit models` counts parameters on the meta device: the counts must be those of the real models."""

import pytest
import torch

from filmkit.cli.models import without_memory
from filmkit.vqa import FiLMVQA, build_config, count_parameters
from filmkit.vqa.baselines import BASELINES, baseline_config, build_model


def test_a_meta_model_allocates_nothing_and_counts_like_the_real_one():
    config = build_config("paper", vocab_size=93, num_answers=32)  # 59 million parameters
    meta = without_memory(lambda: FiLMVQA(config))
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert count_parameters(meta) == count_parameters(FiLMVQA(config))


@pytest.mark.parametrize("architecture", BASELINES)
def test_baseline_counts_on_the_meta_device_equal_the_real_ones(architecture):
    config = baseline_config(architecture, "cpu", vocab_size=93, num_answers=32)
    meta = without_memory(lambda: build_model(config))
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in build_model(config).parameters())
    assert torch.empty(1).device.type == "cpu"  # the meta device was only the default inside without_memory
