"""The paper's visual question answering model: question encoder, FiLM generator, FiLMed ResBlock network.

>>> from filmkit.vqa import FiLMVQA, build_config, count_parameters
>>> model = FiLMVQA(build_config("paper", vocab_size=93, num_answers=32))
>>> count_parameters(model)["total"]
59495752
"""

from filmkit.vqa.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from filmkit.vqa.config import FILM_PLACEMENTS, PRESETS, FiLMVQAConfig, build_config
from filmkit.vqa.encoder import QuestionEncoder
from filmkit.vqa.model import FiLMVQA, count_parameters
from filmkit.vqa.network import FiLMedNetwork, FiLMedResBlock, coordinate_maps
from filmkit.vqa.reference import load_reference_checkpoint

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "FILM_PLACEMENTS",
    "PRESETS",
    "FiLMVQA",
    "FiLMVQAConfig",
    "FiLMedNetwork",
    "FiLMedResBlock",
    "QuestionEncoder",
    "build_config",
    "coordinate_maps",
    "count_parameters",
    "load_reference_checkpoint",
]
