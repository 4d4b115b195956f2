"""Ask a trained model one question about one image: the answer, its probabilities and where the model looked."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from filmkit.data.features import RESNET_INPUT, FeatureEncoder
from filmkit.data.preprocess import load_image
from filmkit.data.vocab import Vocab
from filmkit.train.evaluate import mask_special_answers

ImageInput = str | os.PathLike | np.ndarray | Image.Image


@dataclass
class AskResult:
    """What :func:`ask` found.

    ``top`` holds (answer, probability) pairs, most probable first; ``probabilities`` the whole distribution by
    answer id (the special tokens get 0); ``unknown_words`` the question's words outside the vocabulary (read as
    <UNK>); ``heatmap`` (H', W') in [0, 1] the places that win the classifier's global pool (see
    :func:`pool_heatmap`); ``film_params`` (num_blocks, 2, module_dim) the question's gammas (``[:, 0]``) and
    betas (``[:, 1]``).
    """

    answer: str
    top: list[tuple[str, float]]
    unknown_words: list[str]
    heatmap: np.ndarray
    probabilities: np.ndarray
    film_params: np.ndarray


def prepare_image(image: ImageInput, size: tuple[int, int]) -> np.ndarray:
    """uint8 (3, H, W) at ``size`` = (W, H), made exactly as preprocessing makes the cache's images.

    ``image`` is a file path, a PIL image or a uint8 array (H, W, 3) / (H, W, 4) / (H, W).

    >>> prepare_image(np.zeros((32, 48, 3), dtype=np.uint8), (16, 8)).shape
    (3, 8, 16)
    """
    if isinstance(image, (str, os.PathLike)):
        return np.array(load_image(image, size))  # a writable copy, as torch.from_numpy wants
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"an image array must be uint8 (H, W[, channels]), got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    rgb = image.convert("RGB")
    if rgb.size != size:  # the same filter and call as filmkit.data.preprocess.load_image
        rgb = rgb.resize(size, Image.BICUBIC)
    return np.array(rgb, dtype=np.uint8).transpose(2, 0, 1)


def model_input(model: nn.Module, image: ImageInput, encoder: FeatureEncoder | None = None) -> torch.Tensor:
    """The (1, C, H, W) float tensor ``model`` reads for ``image``: pixels / 255, or ResNet features via ``encoder``."""
    config = model.config
    if config.input_kind == "features":
        if encoder is None:
            raise ValueError(
                "this model reads ResNet-101 features, not pixels: pass encoder="
                "filmkit.data.features.resnet101_encoder(WEIGHTS) (on the command line: --weights FILE)"
            )
        return torch.from_numpy(encoder(prepare_image(image, RESNET_INPUT)[None]))
    pixels = prepare_image(image, (config.image_width, config.image_height))
    return torch.from_numpy(pixels[None]).float().div_(255.0)


def pool_heatmap(classifier_map: torch.Tensor, pool: str = "max") -> np.ndarray:
    """Where the classifier's global pool takes its values from: (P, H, W) map -> (H, W) in [0, 1].

    For max pooling, each location counts the projection channels whose maximum sits there; channels that are
    zero everywhere (switched off by the ReLU) point nowhere and are left out. For average pooling every location
    contributes, so the map is the activation summed over channels. Either way the peak is scaled to 1.

    >>> projected = torch.zeros(3, 2, 2)
    >>> projected[0, 1, 1], projected[1, 1, 1], projected[2, 0, 1] = 5.0, 2.0, 1.0
    >>> pool_heatmap(projected).tolist()
    [[0.0, 0.5], [0.0, 1.0]]
    """
    channels, height, width = classifier_map.shape
    flat = classifier_map.detach().float().reshape(channels, height * width)
    if pool == "max":
        peaks, where = flat.max(dim=1)
        heat = torch.bincount(where[peaks > 0], minlength=height * width).float()
    else:
        heat = flat.sum(dim=0)
    top = heat.max()
    if top > 0:
        heat = heat / top
    return heat.reshape(height, width).cpu().numpy()


def ask(
    model: nn.Module,
    vocab: Vocab | dict,
    image: ImageInput,
    question: str,
    *,
    top_k: int = 5,
    encoder: FeatureEncoder | None = None,
) -> AskResult:
    """Answer ``question`` about ``image`` (a PNG path, PIL image or uint8 array) with a :class:`FiLMVQA` model.

    The image is resized and scaled exactly as the training cache was built. Words outside the vocabulary become
    <UNK> and are reported, never an error. Models on ResNet-101 features need ``encoder``
    (:func:`filmkit.data.features.resnet101_encoder`).

    Example::

        checkpoint = load_checkpoint("runs/demo/best.pt")
        result = ask(checkpoint.model, checkpoint.vocab, "CLEVR_val_000010.png", "How many cubes are there?")
        result.answer, result.top[:2], result.unknown_words   # ('3', [('3', 0.91), ('2', 0.06)], [])
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not any(character.isalnum() for character in question):
        raise ValueError(f"the question {question!r} has no words to read")
    if not hasattr(model, "film_params"):
        architecture = getattr(model.config, "architecture", type(model).__name__)
        raise ValueError(f"ask needs a FiLM model; this is the {architecture} baseline (score it with filmkit eval)")
    if isinstance(vocab, dict):
        vocab = Vocab.from_json(vocab)
    if len(vocab.answer_tokens) != model.config.num_answers:
        raise ValueError(
            f"the vocabulary has {len(vocab.answer_tokens)} answers, the model {model.config.num_answers} outputs"
        )
    ids, unknown_words = vocab.encode_question(question)
    device = next(model.parameters()).device
    questions = torch.tensor([ids], dtype=torch.int64, device=device)
    images = model_input(model, image, encoder).to(device)
    was_training = model.training
    model.eval()  # one example: batch statistics would be meaningless
    try:
        with torch.no_grad():
            params = model.film_params(questions)
            logits, activations = model.answer_with_film(images, params, return_activations=True)
    finally:
        model.train(was_training)
    probabilities = torch.softmax(mask_special_answers(logits)[0].double(), dim=0).cpu().numpy()
    order = np.argsort(-probabilities, kind="stable")[: min(top_k, len(probabilities))]
    top = [(vocab.answer_tokens[i], float(probabilities[i])) for i in order if probabilities[i] > 0]
    return AskResult(
        answer=top[0][0],
        top=top,
        unknown_words=unknown_words,
        heatmap=pool_heatmap(activations["classifier_map"][0], model.config.classifier_pool),
        probabilities=probabilities,
        film_params=params[0].cpu().numpy(),
    )
