"""Load checkpoints written by the reference FiLM implementation (github.com/ethanjperez/film).

The reference's ``scripts/train_model.py`` saves, with ``torch.save``, a dict holding the constructor kwargs and
the state dicts of its two networks: ``program_generator_*`` is the FiLM generator (``FiLMGen``: word embedding,
RNN, one linear layer) and ``execution_engine_*`` the FiLMed network (``FiLMedNet``: stem, ResBlocks, classifier),
plus ``vocab``, ``args`` and training statistics. :func:`load_reference_checkpoint` turns such a file into a
:class:`~filmkit.vqa.FiLMVQA` that computes what the reference model computes, or refuses with a ValueError that
names what it cannot host. Every reference tensor is placed by an explicit key table (:func:`key_table`), never by
order, and loading is strict: a reference tensor left over or a filmkit tensor left unfilled is an error.

The file is read with ``torch.load(weights_only=True)``: tensors, plain containers and ``argparse.Namespace`` are
rebuilt, nothing else is, so a file from an untrusted source cannot run code while it is being read.
"""

from __future__ import annotations

import argparse
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import torch

from filmkit.checkpoint_file import CheckpointError
from filmkit.vqa.config import FiLMVQAConfig
from filmkit.vqa.model import FiLMVQA

GENERATOR = "program_generator"
NETWORK = "execution_engine"
REQUIRED_ENTRIES = (f"{GENERATOR}_kwargs", f"{GENERATOR}_state", f"{NETWORK}_kwargs", f"{NETWORK}_state", "vocab")

# The only non-container class the reference files hold: ``args`` (some versions store ``args.__dict__`` instead).
SAFE_GLOBALS = [argparse.Namespace]

# Constructor defaults of the reference's FiLMGen and FiLMedNet, for kwargs that a checkpoint does not store.
GENERATOR_DEFAULTS = {
    "null_token": 0,
    "encoder_vocab_size": 100,
    "wordvec_dim": 200,
    "hidden_dim": 512,
    "rnn_num_layers": 1,
    "rnn_dropout": 0,
    "output_batchnorm": False,
    "bidirectional": False,
    "encoder_type": "gru",
    "decoder_type": "linear",
    "gamma_option": "linear",
    "gamma_baseline": 1,
    "num_modules": 4,
    "module_num_layers": 1,
    "module_dim": 128,
    "parameter_efficient": False,
    "use_bert": False,
}
NETWORK_DEFAULTS = {
    "feature_dim": (1024, 14, 14),
    "stem_num_layers": 2,
    "stem_batchnorm": False,
    "stem_kernel_size": 3,
    "stem_stride": 1,
    "stem_padding": None,
    "num_modules": 4,
    "module_num_layers": 1,
    "module_dim": 128,
    "module_residual": True,
    "module_batchnorm": False,
    "module_batchnorm_affine": False,
    "module_dropout": 0,
    "module_input_proj": 1,
    "module_kernel_size": 3,
    "classifier_proj_dim": 512,
    "classifier_downsample": "maxpool2",
    "classifier_fc_layers": (1024,),
    "classifier_batchnorm": False,
    "classifier_dropout": 0,
    "condition_method": "bn-film",
    "condition_pattern": (),
    "use_gamma": True,
    "use_beta": True,
    "use_coords": 1,
    "use_bert": False,
}
# Kwargs that do not change what a trained model computes: token ids the questions already carry, an initial
# embedding that the saved weights replace, the vocabulary (its answer count is checked separately), debugging.
GENERATOR_IGNORED = {"start_token", "end_token", "encoder_embed", "decoder_vocab_size", "debug_every"}
NETWORK_IGNORED = {"vocab", "debug_every", "print_verbose_every", "verbose", "dtype"}

# Older option values that the reference itself renames when it loads a checkpoint (vr/utils.py).
RENAMED_CONDITION_METHODS = {
    "cbn": "bn-film",
    "conv-fac": "conv-film",
    "relu-fac": "relu-film",
    "block-input-fac": "block-input-film",
    "block-output-fac": "block-output-film",
}
CONDITION_METHODS = ("bn-film", "conv-film", "relu-film", "block-input-film", "block-output-film")
GAMMA_OPTIONS = ("linear", "sigmoid", "tanh", "exp")


def load_reference_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[FiLMVQA, dict]:
    """Rebuild a model trained by the reference implementation: ``(model in eval mode, vocab dict)``.

    ``vocab`` is the checkpoint's own vocabulary (``question_token_to_idx``, ``answer_token_to_idx``, ...), so
    questions must be tokenised with it and answers read back through it. Tensors saved on a GPU are read onto
    ``map_location`` (the CPU by default). Options filmkit's model cannot reproduce exactly (``concat``
    conditioning, a recurrent FiLM decoder, a classifier without global pooling, ...) raise a ValueError that names
    the option and its value; so do unreadable files, files of another kind, and files that need any Python global
    other than tensors, plain containers and ``argparse.Namespace`` (nothing in such a file is executed).

    Example::

        model, vocab = load_reference_checkpoint("film_checkpoints/best.pt")
        tokens = ["<START>", "is", "there", "a", "cube", "<END>"]
        question = torch.tensor([[vocab["question_token_to_idx"][t] for t in tokens]])

    A file of another kind is refused:

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "best.pt"
    >>> torch.save({"model": torch.zeros(1)}, path)  # some other torch file
    >>> load_reference_checkpoint(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    filmkit.checkpoint_file.CheckpointError: ...best.pt: not a checkpoint of the reference FiLM code: ...
    """
    path = Path(path)
    checkpoint = read_reference_file(path, map_location)
    try:
        layout = reference_layout(
            checkpoint[f"{GENERATOR}_kwargs"],
            checkpoint[f"{NETWORK}_kwargs"],
            checkpoint[f"{GENERATOR}_state"],
            checkpoint[f"{NETWORK}_state"],
            where=str(path),
        )
        vocab = checked_vocab(checkpoint["vocab"], layout.config, str(path))
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as error:  # values of the wrong type in kwargs or vocab
        raise CheckpointError(f"{path}: malformed reference kwargs or vocab: {error!r}") from None
    model = FiLMVQA(layout.config)
    state = map_state(checkpoint[f"{GENERATOR}_state"], checkpoint[f"{NETWORK}_state"], layout, model, str(path))
    model.load_state_dict(state, strict=True)
    if isinstance(map_location, (str, torch.device)):
        model.to(torch.device(map_location))
    return model.eval(), vocab


def read_reference_file(path: Path, map_location) -> dict:
    """The checkpoint dict, read without executing pickled code; ValueError names the file and the problem."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():
            # Foreign pickles make torch warn about their protocol before failing; the error below says it all.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise  # an access problem, not a property of the file's contents
    except Exception as error:  # torch raises several types for corrupt, truncated or code-carrying files
        message = str(error)
        blocked = re.search(r"GLOBAL ([\w.]+)", message)
        if blocked:
            raise CheckpointError(
                f"{path}: refused: unpickling it would need the Python global {blocked.group(1)}, and only "
                "tensors, plain containers and argparse.Namespace are read (nothing was executed). If you trust "
                "the file, strip it: ckpt = torch.load(path, weights_only=False); keep only the entries "
                f"{', '.join(REQUIRED_ENTRIES)} (plain dicts of numbers, strings and tensors); torch.save(ckpt, "
                "new_path) - see docs/reference-checkpoints.md"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt or truncated?): {failure_reason(error)}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"{path}: not a checkpoint of the reference FiLM code: it holds a {type(checkpoint).__name__}, not a dict"
        )
    args = checkpoint.get("args")
    model_type = args.get("model_type") if isinstance(args, dict) else getattr(args, "model_type", None)
    if model_type not in (None, "FiLM"):
        raise CheckpointError(
            f"{path}: a reference checkpoint of model_type {model_type!r}; only 'FiLM' checkpoints can be loaded"
        )
    missing = [key for key in REQUIRED_ENTRIES if not isinstance(checkpoint.get(key), dict)]
    if missing:
        raise CheckpointError(
            f"{path}: not a checkpoint of the reference FiLM code: missing (or not a dict) {', '.join(missing)} "
            f"(it has {', '.join(map(str, checkpoint)) or 'no entries'})"
        )
    return checkpoint


def failure_reason(error: Exception) -> str:
    """The informative line of a torch.load failure, without the weights-only boilerplate around it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    boilerplate = ("Weights only load failed", "(1)", "(2)", "Check the documentation", "Please file an issue")
    specific = [line for line in lines if re.search(r"Unsupported operand|invalid load key", line)]
    useful = specific or [line for line in lines if not line.startswith(boilerplate)]
    return f"{type(error).__name__}: {useful[0]}" if useful else type(error).__name__


@dataclass
class ReferenceLayout:
    """What it takes to place a reference checkpoint's tensors in a filmkit model."""

    config: FiLMVQAConfig
    film_size: int  # outputs of the reference decoder per ResBlock: gammas, betas and, in old files, unused extras
    gamma_shift: float  # added to the gamma biases so that filmkit's 1 + raw equals the reference's raw + baseline
    output_batchnorm: bool  # the reference builds output_bn but a linear decoder never applies it


def reference_layout(
    generator_kwargs: dict, network_kwargs: dict, generator_state: dict, network_state: dict, where: str = "checkpoint"
) -> ReferenceLayout:
    """The filmkit config equal to the reference model that these kwargs build; ValueError names any option that
    filmkit cannot reproduce. Vocabulary and answer counts come from the weights, the rest from the kwargs."""
    gen = with_defaults(generator_kwargs, GENERATOR_DEFAULTS, GENERATOR_IGNORED, f"{where}: {GENERATOR}_kwargs")
    net = with_defaults(network_kwargs, NETWORK_DEFAULTS, NETWORK_IGNORED, f"{where}: {NETWORK}_kwargs")

    def refuse(kwargs: str, option: str, value, why: str) -> NoReturn:
        raise CheckpointError(f"{where}: {kwargs}_kwargs[{option!r}] = {value!r} is not supported: {why}")

    # FiLM generator.
    if gen["encoder_type"] not in ("gru", "lstm"):
        refuse(GENERATOR, "encoder_type", gen["encoder_type"], "filmkit encodes questions with a GRU or an LSTM")
    if gen["decoder_type"] != "linear":
        refuse(
            GENERATOR,
            "decoder_type",
            gen["decoder_type"],
            "filmkit's FiLM generator is one linear layer on the question embedding (the paper's model)",
        )
    if gen["bidirectional"]:
        refuse(
            GENERATOR,
            "bidirectional",
            gen["bidirectional"],
            "the reference reads the backward direction at the <END> position, where it has seen only <END> and "
            "padding; filmkit's backward direction reads the whole question, so the weights would mean otherwise",
        )
    if gen["null_token"] != 0:
        refuse(GENERATOR, "null_token", gen["null_token"], "filmkit pads questions with token 0")
    if gen["use_bert"]:
        refuse(GENERATOR, "use_bert", gen["use_bert"], "filmkit embeds words with its own embedding table")
    if gen["module_num_layers"] != 1:
        refuse(GENERATOR, "module_num_layers", gen["module_num_layers"], "filmkit has one FiLM layer per block")
    gamma_option, baseline = gen["gamma_option"], float(gen["gamma_baseline"])
    if gamma_option not in GAMMA_OPTIONS:
        refuse(GENERATOR, "gamma_option", gamma_option, f"choose one of {', '.join(GAMMA_OPTIONS)}")
    # The reference computes gamma = f(raw) + gamma_baseline. For f = identity any baseline folds into the gamma
    # biases; filmkit's sigmoid/tanh/exp have no offset, so those need a baseline of 0.
    if gamma_option != "linear" and baseline != 0:
        refuse(
            GENERATOR,
            "gamma_baseline",
            gen["gamma_baseline"],
            f"with gamma_option {gamma_option!r} the reference adds the baseline to {gamma_option}(raw); filmkit's "
            f"{gamma_option} gamma has no offset, so only a baseline of 0 can be reproduced",
        )

    # FiLMed network.
    method = RENAMED_CONDITION_METHODS.get(net["condition_method"], net["condition_method"])
    if method not in CONDITION_METHODS:
        refuse(
            NETWORK,
            "condition_method",
            net["condition_method"],
            f"filmkit conditions by FiLM only ({', '.join(CONDITION_METHODS)})",
        )
    if net["module_num_layers"] != 1:
        refuse(NETWORK, "module_num_layers", net["module_num_layers"], "filmkit blocks have one conditioned conv")
    input_proj = 1 if net["module_input_proj"] is True else net["module_input_proj"]
    if input_proj != 1:
        refuse(NETWORK, "module_input_proj", net["module_input_proj"], "filmkit blocks start with a 1x1 projection")
    num_blocks, module_dim = net["num_modules"], net["module_dim"]
    for option in ("num_modules", "module_dim"):
        if gen[option] != net[option]:
            raise CheckpointError(
                f"{where}: {GENERATOR}_kwargs[{option!r}] = {gen[option]!r} but {NETWORK}_kwargs[{option!r}] = "
                f"{net[option]!r}; the two networks do not fit together"
            )
    pattern = tuple(net["condition_pattern"] or ())
    if pattern and len(pattern) != num_blocks:
        refuse(NETWORK, "condition_pattern", pattern, f"it needs one entry per block ({num_blocks})")
    conditioned = [flag > 0 for flag in pattern] if pattern else [True] * num_blocks
    if net["module_batchnorm_affine"] and net["module_batchnorm"] and any(conditioned):
        refuse(
            NETWORK,
            "module_batchnorm_affine",
            net["module_batchnorm_affine"],
            "filmkit's conditioned blocks use a BatchNorm without its own scale and shift (FiLM provides them)",
        )
    coords = net["use_coords"]
    coords_mode = "none" if coords <= 0 else "input" if coords == 1 else "all"
    feature_dim = tuple(net["feature_dim"])
    if len(feature_dim) != 3:
        refuse(NETWORK, "feature_dim", net["feature_dim"], "it must be (channels, height, width)")
    stride, kernel, stem_layers = net["stem_stride"], net["stem_kernel_size"], net["stem_num_layers"]
    if stem_layers < 1:
        refuse(NETWORK, "stem_num_layers", stem_layers, "filmkit's stem has at least one conv layer")
    proj_dim = net["classifier_proj_dim"]
    if not proj_dim or proj_dim <= 0:
        refuse(NETWORK, "classifier_proj_dim", proj_dim, "filmkit's classifier starts with a 1x1 projection")

    # The reference sizes its coordinate maps and pooling window as H // stride ** layers; filmkit's stem must
    # give exactly that size (checked below once the config knows its padding).
    assumed = (feature_dim[1] // stride**stem_layers, feature_dim[2] // stride**stem_layers)
    pool = global_pool(net["classifier_downsample"], assumed)
    if pool is None:
        refuse(
            NETWORK,
            "classifier_downsample",
            net["classifier_downsample"],
            f"filmkit's classifier pools the whole map, here {assumed[0]}x{assumed[1]} (maxpoolfull or avgpoolfull "
            "on a square map); a smaller window followed by flattening has no filmkit equivalent",
        )

    extra = {"imported_from": "reference FiLM checkpoint (ethanjperez/film)", "file": Path(where).name}
    values = dict(
        vocab_size=shape_of(generator_state, "encoder_embed.weight", 2, where)[0],
        num_answers=final_classifier_rows(network_state, where),
        embedding_dim=gen["wordvec_dim"],
        rnn_type=gen["encoder_type"],
        rnn_hidden_dim=gen["hidden_dim"],
        rnn_num_layers=gen["rnn_num_layers"],
        rnn_bidirectional=False,
        rnn_dropout=float(gen["rnn_dropout"]),
        generator_hidden_dims=(),
        gamma_activation=gamma_option,
        use_gamma=bool(net["use_gamma"]),
        use_beta=bool(net["use_beta"]),
        condition_pattern=None if all(conditioned) else tuple(conditioned),  # None: every block, as in presets
        # The reference puts coordinate maps on the stem exactly when its stride is 1; filmkit does so for
        # "features" input, so the input kind follows the stride.
        input_kind="features" if stride == 1 else "pixels",
        in_channels=feature_dim[0],
        image_height=feature_dim[1],
        image_width=feature_dim[2],
        stem_num_layers=stem_layers,
        stem_kernel_size=kernel,
        stem_stride=stride,
        stem_batchnorm=bool(net["stem_batchnorm"]),
        module_dim=module_dim,
        num_blocks=num_blocks,
        block_kernel_size=net["module_kernel_size"],
        film_placement=method,
        coords=coords_mode,
        residual=bool(net["module_residual"]),
        block_batchnorm=bool(net["module_batchnorm"]),
        block_dropout=float(net["module_dropout"]),
        classifier_proj_dim=proj_dim,
        classifier_pool=pool,
        classifier_fc_dims=tuple(net["classifier_fc_layers"]),
        classifier_batchnorm=bool(net["classifier_batchnorm"]),
        classifier_dropout=float(net["classifier_dropout"]),
        extra=extra,
    )
    try:
        config = FiLMVQAConfig(**values)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{where}: the reference options give no valid filmkit model: {error}") from None

    if net["stem_padding"] is None and kernel % 2 == 0:
        refuse(NETWORK, "stem_kernel_size", kernel, "the reference needs stem_padding for an even kernel")
    padding = kernel // 2 if net["stem_padding"] is None else net["stem_padding"]
    if padding != config.stem_padding:
        refuse(
            NETWORK,
            "stem_padding",
            net["stem_padding"],
            f"filmkit pads a {kernel}x{kernel} stride-{stride} stem by {config.stem_padding}, "
            f"the reference by {padding}",
        )
    if config.feature_map_size != assumed:
        refuse(
            NETWORK,
            "feature_dim",
            net["feature_dim"],
            f"the stem gives {config.feature_map_size} maps where the reference assumes {assumed}",
        )

    # Unused decoder rows (parameter_efficient=False, an option kept by the reference for its oldest models) are
    # skipped by the row selection in map_state.
    film_size = 2 * module_dim if gen["parameter_efficient"] else 4 * module_dim + 2 * num_blocks
    gamma_shift = baseline - 1.0 if gamma_option == "linear" else 0.0
    return ReferenceLayout(config, film_size, gamma_shift, bool(gen["output_batchnorm"]))


def with_defaults(kwargs: dict, defaults: dict, ignored: set, where: str) -> dict:
    unknown = sorted(set(kwargs) - set(defaults) - ignored)
    if unknown:
        raise CheckpointError(
            f"{where} has option(s) {', '.join(map(repr, unknown))} that the reference FiLM code does not define; "
            "their effect on the model is unknown, so the checkpoint is not loaded"
        )
    return {**defaults, **{key: value for key, value in kwargs.items() if key in defaults}}


def global_pool(downsample, map_size: tuple[int, int]) -> str | None:
    """filmkit's pool ("max" or "avg") equal to the reference's classifier_downsample, or None if there is none.

    The reference pools with a window of the map's height (``full``) or of the given size, then flattens; only a
    window covering the whole (square) map is a global pool. The paper's model used ``maxpoolfull``.
    """
    height, width = map_size
    match = re.fullmatch(r"(max|avg)pool(full|\d+)", str(downsample))
    if match:
        window = height if match.group(2) == "full" else int(match.group(2))
        if window == height == width:
            return match.group(1)
    return None


def shape_of(state: dict, key: str, dims: int, where: str) -> tuple[int, ...]:
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
        raise CheckpointError(f"{where}: the reference state has no {dims}-d tensor {key!r}")
    return tuple(tensor.shape)


def final_classifier_rows(network_state: dict, where: str) -> int:
    """Answer count: rows of the last linear layer, the highest-numbered ``classifier.<i>.weight``."""
    indices = [int(m.group(1)) for key in network_state if (m := re.fullmatch(r"classifier\.(\d+)\.weight", key))]
    if not indices:
        raise CheckpointError(f"{where}: the reference state has no classifier weights")
    return shape_of(network_state, f"classifier.{max(indices)}.weight", 2, where)[0]


def checked_vocab(vocab, config: FiLMVQAConfig, where: str) -> dict:
    for key in ("question_token_to_idx", "answer_token_to_idx"):
        if not isinstance(vocab.get(key), dict) or not vocab[key]:
            raise CheckpointError(f"{where}: the checkpoint's vocab has no {key!r} mapping")
    questions, answers = vocab["question_token_to_idx"], vocab["answer_token_to_idx"]
    if questions.get("<NULL>", 0) != 0:
        raise CheckpointError(f"{where}: the vocab's <NULL> token is {questions['<NULL>']}; filmkit pads with 0")
    if max(questions.values()) >= config.vocab_size:
        raise CheckpointError(
            f"{where}: the vocab has question token ids up to {max(questions.values())} but the embedding has "
            f"{config.vocab_size} rows"
        )
    if len(answers) != config.num_answers:
        raise CheckpointError(
            f"{where}: the vocab has {len(answers)} answers but the classifier gives {config.num_answers} scores"
        )
    return vocab


def key_table(layout: ReferenceLayout) -> list[tuple[str, str, str]]:
    """``(reference state dict, reference key, filmkit key)`` for every tensor copied as it is.

    The FiLM decoder (``decoder_linear``) is not listed: :func:`map_state` selects its rows. BatchNorm
    ``num_batches_tracked`` entries are listed but optional, since checkpoints from PyTorch < 0.4 lack them.
    """
    config = layout.config
    table: list[tuple[str, str, str]] = [(GENERATOR, "encoder_embed.weight", "encoder.embedding.weight")]
    for layer in range(config.rnn_num_layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            table.append((GENERATOR, f"encoder_rnn.{kind}_l{layer}", f"encoder.rnn.{kind}_l{layer}"))

    def add(reference: str, ours: str, names: tuple[str, ...]) -> None:
        table.extend((NETWORK, f"{reference}.{name}", f"network.{ours}.{name}") for name in names)

    weights = ("weight", "bias")
    running = ("running_mean", "running_var", "num_batches_tracked")
    # Stem: per layer Conv, [BatchNorm], ReLU, in one nn.Sequential on both sides.
    per_layer = 3 if config.stem_batchnorm else 2
    for layer in range(config.stem_num_layers):
        conv = layer * per_layer
        add(f"stem.{conv}", f"stem.{conv}", weights)
        if config.stem_batchnorm:
            add(f"stem.{conv + 1}", f"stem.{conv + 1}", weights + running)
    # Blocks: the reference registers block i under the name "i", with input_proj, conv1 and bn1.
    conditioned = set(config.conditioned_blocks)
    for block in range(config.num_blocks):
        add(f"{block}.input_proj", f"blocks.{block}.input_proj", weights)
        add(f"{block}.conv1", f"blocks.{block}.conv", weights)
        if config.block_batchnorm:  # affine only where no FiLM follows, as in filmkit
            add(f"{block}.bn1", f"blocks.{block}.norm", running if block in conditioned else weights + running)
    # Classifier: the reference's one nn.Sequential is Conv1x1, [BN], ReLU, pool, Flatten, then per hidden layer
    # Linear, [BN1d], ReLU, [Dropout], then the output Linear. filmkit splits it into projection and head.
    batchnorm = config.classifier_batchnorm
    add("classifier.0", "classifier.projection.0", weights)
    if batchnorm:
        add("classifier.1", "classifier.projection.1", weights + running)
    reference_index = 4 + batchnorm  # after Conv, [BN], ReLU, pool, Flatten
    head_index = 0
    per_hidden = 2 + batchnorm + (config.classifier_dropout > 0)
    for _ in config.classifier_fc_dims:
        add(f"classifier.{reference_index}", f"classifier.head.{head_index}", weights)
        if batchnorm:
            add(f"classifier.{reference_index + 1}", f"classifier.head.{head_index + 1}", weights + running)
        reference_index += per_hidden
        head_index += per_hidden
    add(f"classifier.{reference_index}", f"classifier.head.{head_index}", weights)
    return table


def map_state(
    generator_state: dict, network_state: dict, layout: ReferenceLayout, model: FiLMVQA, where: str
) -> dict[str, torch.Tensor]:
    """filmkit's state dict from the reference's two, strictly: every reference tensor is used (or is one the
    reference never applies) and every filmkit tensor is filled, with matching shapes."""
    sources = {GENERATOR: generator_state, NETWORK: network_state}
    for name, state in sources.items():
        bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{where}: {name}_state entries that are not tensors: {', '.join(bad)}")
    used: set[tuple[str, str]] = set()
    missing: list[str] = []
    ours: dict[str, torch.Tensor] = {}
    for source, reference_key, our_key in key_table(layout):
        tensor = sources[source].get(reference_key)
        if tensor is not None:
            ours[our_key] = tensor
            used.add((source, reference_key))
        elif reference_key.endswith("num_batches_tracked"):
            ours[our_key] = torch.tensor(0, dtype=torch.long)  # absent before PyTorch 0.4; only training reads it
        else:
            missing.append(f"{source}_state[{reference_key!r}]")

    # FiLM decoder: the reference emits film_size values per block, [gammas, betas, unused...]; filmkit's output
    # layer emits [gammas, betas] for the conditioned blocks only.
    config = layout.config
    decoder = {name: generator_state.get(f"decoder_linear.{name}") for name in ("weight", "bias")}
    for name, tensor in decoder.items():
        if tensor is None:
            missing.append(f"{GENERATOR}_state['decoder_linear.{name}']")
        else:
            used.add((GENERATOR, f"decoder_linear.{name}"))
    expected_rows = config.num_blocks * layout.film_size
    if model.generator is not None and None not in decoder.values():
        if decoder["weight"].shape[0] != expected_rows or decoder["bias"].shape != (expected_rows,):
            raise CheckpointError(
                f"{where}: {GENERATOR}_state['decoder_linear.weight'] has {decoder['weight'].shape[0]} rows; the "
                f"kwargs ask for {expected_rows} ({config.num_blocks} blocks x {layout.film_size})"
            )
        rows = torch.cat(
            [torch.arange(2 * config.module_dim) + block * layout.film_size for block in config.conditioned_blocks]
        )
        weight, bias = decoder["weight"][rows].clone(), decoder["bias"][rows].clone()
        if layout.gamma_shift:
            bias.view(len(config.conditioned_blocks), 2, config.module_dim)[:, 0] += layout.gamma_shift
        ours["generator.output.weight"], ours["generator.output.bias"] = weight, bias
    if layout.output_batchnorm:  # built by the reference but only applied after a recurrent decoder
        for key in generator_state:
            if key.startswith("output_bn."):
                used.add((GENERATOR, key))

    if missing:
        raise CheckpointError(f"{where}: reference tensors missing for this configuration: {', '.join(missing)}")
    leftover = [f"{name}_state[{key!r}]" for name, state in sources.items() for key in state if (name, key) not in used]
    if leftover:
        raise CheckpointError(
            f"{where}: reference tensors that map to nothing in filmkit's model: {', '.join(leftover)}"
        )
    expected = model.state_dict()
    unfilled = sorted(set(expected) - set(ours))
    if unfilled:
        raise CheckpointError(f"{where}: filmkit tensors the checkpoint does not fill: {', '.join(unfilled)}")
    reference_name = {our: f"{source}_state[{ref!r}]" for source, ref, our in key_table(layout)}
    wrong = [
        f"{reference_name.get(key, key)} is {tuple(tensor.shape)}, filmkit's {key} is {tuple(expected[key].shape)}"
        for key, tensor in ours.items()
        if tensor.shape != expected[key].shape
    ]
    if wrong:
        raise CheckpointError(f"{where}: tensor shapes do not match the kwargs: {'; '.join(wrong)}")
    return ours
