"""FiLMVQA: question encoder + FiLM generator + FiLMed network, the model of the paper."""

from __future__ import annotations

import os

import torch
from torch import nn

from filmkit.film import FiLMGenerator
from filmkit.vqa.config import FiLMVQAConfig
from filmkit.vqa.encoder import NULL_TOKEN, QuestionEncoder
from filmkit.vqa.network import FiLMedNetwork


class InputChecks:
    """Clear errors for images and questions a model cannot read (shared by FiLMVQA and the baselines)."""

    config: FiLMVQAConfig

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ValueError unless images are a float (N, C, H, W) batch of the configured size."""
        config = self.config
        expected = (config.in_channels, config.image_height, config.image_width)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}) for this model "
                f"({config.input_kind}), got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise ValueError(f"images must be a float tensor (convert uint8 pixels to [0, 1]), got {images.dtype}")
        if images.shape[0] == 0:
            raise ValueError("got an empty batch of images")

    def check_questions(self, questions: torch.Tensor) -> None:
        """Raise ValueError unless questions are right-padded token ids that this model can read.

        The token values are read only where that is free: on the CPU. On an accelerator each read would wait for
        the device (a host sync in every forward pass), so there only the shape and type are checked, unless
        FILMKIT_DEBUG_CHECKS=1 asks for everything.
        """
        config = self.config
        if questions.dim() != 2 or questions.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"questions must be an integer (N, T) tensor, got {questions.dtype} {tuple(questions.shape)}"
            )
        if questions.shape[0] == 0:
            raise ValueError("got an empty batch of questions")
        if not reads_values(questions):
            return
        low, high = int(questions.min()), int(questions.max())
        if low < 0 or high >= config.vocab_size:
            bad = low if low < 0 else high
            raise ValueError(f"question token id {bad} is outside the vocabulary (0..{config.vocab_size - 1})")
        real = questions != NULL_TOKEN
        lengths = real.sum(dim=1)
        if int(lengths.min()) == 0:
            row = int((lengths == 0).nonzero()[0])
            raise ValueError(f"question {row} of the batch is empty (only <NULL> padding)")
        longest = int(lengths.max())
        if longest > config.max_question_length:
            raise ValueError(f"a question has {longest} tokens; this model reads at most {config.max_question_length}")
        positions = torch.arange(questions.shape[1], device=questions.device)
        if not torch.equal(real, positions.unsqueeze(0) < lengths.unsqueeze(1)):
            raise ValueError("questions must be right-padded: a <NULL> (0) token sits before a real token")


class FiLMVQA(InputChecks, nn.Module):
    """Answer questions about images: ``model(images, questions) -> logits``.

    ``images`` is float (N, C, H, W) as the config says (features, or pixels in [0, 1]); ``questions`` is int64
    (N, T) token ids, right-padded with 0 (<NULL>). The FiLM parameters can be read with :meth:`film_params`
    and supplied (edited, averaged, swapped) to :meth:`answer_with_film`.

    >>> from filmkit.vqa import build_config
    >>> model = FiLMVQA(build_config("cpu", vocab_size=20, num_answers=8)).eval()
    >>> images, questions = torch.rand(2, 3, 64, 64), torch.tensor([[1, 5, 7, 2], [1, 4, 2, 0]])
    >>> model(images, questions).shape
    torch.Size([2, 8])
    >>> params = model.film_params(questions)            # (N, num_blocks, 2, module_dim): gamma, beta
    >>> params[:, :, 1] = 0.0                             # e.g. switch every beta off at test time
    >>> model.answer_with_film(images, params).shape
    torch.Size([2, 8])
    """

    def __init__(self, config: FiLMVQAConfig):
        super().__init__()
        self.config = config
        self.encoder = QuestionEncoder.from_config(config)
        self.generator = (
            FiLMGenerator(
                config.question_embedding_dim,
                num_layers=len(config.conditioned_blocks),
                num_channels=config.module_dim,
                hidden_dims=config.generator_hidden_dims,
                gamma_activation=config.gamma_activation,
                use_gamma=config.use_gamma,
                use_beta=config.use_beta,
            )
            if config.conditioned_blocks
            else None
        )
        self.network = FiLMedNetwork(config)
        # Training-time scene supervision only (filmkit.train.scene_supervision): objectness + each attribute.
        self.scene_head = (
            nn.Conv2d(config.module_dim, 1 + sum(config.scene_classes), kernel_size=1) if config.scene_classes else None
        )
        init_kaiming_uniform(self)
        if self.generator is not None and config.generator_init == "zero":
            nn.init.zeros_(self.generator.output.weight)
            nn.init.zeros_(self.generator.output.bias)
        # Channels-last (NHWC) maps and weights: oneDNN's fastest convolution layout on CPU (about 1.15x the
        # training samples/s of the cpu preset, benchmarks/bench_model.py) and the one cuDNN prefers under AMP.
        self.network.to(memory_format=torch.channels_last)

    def film_params(self, questions: torch.Tensor) -> torch.Tensor:
        """FiLM parameters (N, num_blocks, 2, module_dim) for the questions: ``[:, b, 0]`` gamma, ``[:, b, 1]`` beta.

        Blocks without FiLM (see ``condition_pattern``) get the identity (gamma 1, beta 0).
        """
        self.check_questions(questions)
        config = self.config
        batch = questions.shape[0]
        identity = torch.zeros(batch, config.num_blocks, 2, config.module_dim, device=questions.device)
        identity[:, :, 0] = 1.0
        if self.generator is None:
            return identity
        predicted = self.generator(self.encoder(questions))
        if len(config.conditioned_blocks) == config.num_blocks:
            return predicted
        params = identity.to(predicted.dtype)
        params[:, config.conditioned_blocks] = predicted
        return params

    def answer_with_film(
        self,
        images: torch.Tensor,
        film_params: torch.Tensor,
        return_activations: bool = False,
        image_index: torch.Tensor | None = None,
    ):
        """Run the visual network with FiLM parameters given by the caller instead of a question.

        With ``image_index`` (N,), question ``i`` is about ``images[image_index[i]]``: the stem, which FiLM does not
        reach, runs once per distinct image.
        """
        self.check_images(images)
        questions = check_image_index(image_index, images.shape[0], film_params.shape[0])
        expected = (questions, self.config.num_blocks, 2, self.config.module_dim)
        if tuple(film_params.shape) != expected:
            raise ValueError(f"film_params must have shape {expected}, got {tuple(film_params.shape)}")
        batchnorm_on_vectors = self.config.classifier_batchnorm and self.config.classifier_fc_dims
        if self.training and questions == 1 and batchnorm_on_vectors:
            raise ValueError(
                "training with the classifier's batch norm needs batches of at least 2 examples "
                "(call model.eval() to answer a single question)"
            )
        return self.network(images, film_params, return_activations=return_activations, image_index=image_index)

    def forward(
        self,
        images: torch.Tensor,
        questions: torch.Tensor,
        image_index: torch.Tensor | None = None,
        with_scene: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits; with ``with_scene`` also the scene head's (num_images, 1 + sum(scene_classes), H, W) map."""
        film_params = self.film_params(questions)
        if not with_scene:
            return self.answer_with_film(images, film_params, image_index=image_index)
        if self.scene_head is None:
            raise ValueError("with_scene needs a model built with config.scene_classes (scene supervision)")
        logits, activations = self.answer_with_film(
            images, film_params, return_activations=True, image_index=image_index
        )
        return logits, self.scene_head(activations["image_stem"])


def check_image_index(image_index: torch.Tensor | None, num_images: int, num_questions: int) -> int:
    """The number of questions in a batch; ValueError unless each question has an image (one each, or by index)."""
    if image_index is None:
        if num_images != num_questions:
            raise ValueError(f"got {num_images} images but {num_questions} questions")
        return num_questions
    if image_index.dim() != 1 or image_index.shape[0] != num_questions:
        raise ValueError(
            f"image_index must have one entry per question ({num_questions}), got {tuple(image_index.shape)}"
        )
    if reads_values(image_index) and (int(image_index.min()) < 0 or int(image_index.max()) >= num_images):
        raise ValueError(f"image_index points outside the batch's {num_images} images")
    return num_questions


def reads_values(tensor: torch.Tensor) -> bool:
    """Whether input checks may read ``tensor``'s values: on the CPU (free), elsewhere only when debugging.

    Never inside ``torch.compile``: a read there breaks the graph in two (the eager call checks the same inputs).
    """
    if torch.compiler.is_compiling():
        return False
    return tensor.device.type == "cpu" or os.environ.get("FILMKIT_DEBUG_CHECKS") == "1"


def init_kaiming_uniform(model: nn.Module) -> None:
    """Kaiming-uniform weights for every convolution and linear layer (the paper's init); defaults elsewhere."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight)


def count_parameters(model: FiLMVQA) -> dict[str, int]:
    """Trainable parameter counts by part, named as the paper counts them.

    ``generator`` is the paper's FiLM generator (embedding + RNN + output layer); ``network`` the FiLMed network.

    >>> from filmkit.vqa import build_config
    >>> count_parameters(FiLMVQA(build_config("paper", vocab_size=93, num_answers=32)))["total"]
    59495752
    """

    def size(module: nn.Module | None) -> int:
        return 0 if module is None else sum(p.numel() for p in module.parameters())

    counts = {
        "embedding": size(model.encoder.embedding),
        "rnn": size(model.encoder.rnn),
        "film_head": size(model.generator),
        "stem": size(model.network.stem),
        "blocks": size(model.network.blocks),
        "classifier": size(model.network.classifier),
    }
    counts["generator"] = counts["embedding"] + counts["rnn"] + counts["film_head"]
    counts["network"] = size(model.network)
    counts["total"] = size(model)
    return counts
