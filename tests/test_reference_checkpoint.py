"""Loading checkpoints of the reference FiLM implementation (ethanjperez/film, scripts/train_model.py).

The checkpoints here are built by hand in the reference's layout (its kwarg names, its state-dict key names), and
the loaded model is compared with a forward pass of the reference architecture written below with plain
torch.nn.functional operations on the reference state dict.
"""

import argparse
import dataclasses
import math
import os
import pickle
import random
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from filmkit.vqa import build_config, load_reference_checkpoint
from filmkit.vqa.reference import reference_layout

VOCAB = {
    "question_token_to_idx": {
        "<NULL>": 0,
        "<START>": 1,
        "<END>": 2,
        "<UNK>": 3,
        "Are": 4,
        "a": 5,
        "big": 6,
        "cube": 7,
        "is": 8,
        "of": 9,
        "red": 10,
        "there": 11,
    },
    "answer_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "no": 4, "yes": 5, "2": 6},
    "program_token_to_idx": {"<NULL>": 0, "<START>": 1, "<END>": 2, "<UNK>": 3, "scene": 4, "exist": 5},
}
NUM_ANSWERS = len(VOCAB["answer_token_to_idx"])


def generator_kwargs(**changes) -> dict:
    """FiLMGen kwargs as train_model.py stores them for a FiLM model (tiny sizes)."""
    kwargs = {
        "encoder_vocab_size": 12,
        "decoder_vocab_size": 6,
        "wordvec_dim": 8,
        "hidden_dim": 16,
        "rnn_num_layers": 1,
        "rnn_dropout": 0,
        "parameter_efficient": True,
        "output_batchnorm": False,
        "bidirectional": False,
        "encoder_type": "gru",
        "decoder_type": "linear",
        "gamma_option": "linear",
        "gamma_baseline": 1.0,
        "num_modules": 4,
        "module_num_layers": 1,
        "module_dim": 8,
        "debug_every": math.inf,
    }
    return {**kwargs, **changes}


def network_kwargs(**changes) -> dict:
    """FiLMedNet kwargs as train_model.py stores them: the paper's model, shrunk (features 16 x 6 x 6)."""
    kwargs = {
        "vocab": VOCAB,
        "feature_dim": (16, 6, 6),
        "stem_batchnorm": True,
        "stem_num_layers": 1,
        "module_dim": 8,
        "module_residual": True,
        "module_batchnorm": True,
        "classifier_proj_dim": 16,
        "classifier_downsample": "maxpoolfull",
        "classifier_fc_layers": (32,),
        "classifier_batchnorm": True,
        "classifier_dropout": 0,
        "num_modules": 4,
        "stem_kernel_size": 3,
        "stem_stride": 1,
        "stem_padding": None,
        "module_num_layers": 1,
        "module_batchnorm_affine": False,
        "module_dropout": 0.0,
        "module_input_proj": 1,
        "module_kernel_size": 3,
        "use_gamma": True,
        "use_beta": True,
        "use_coords": 1,
        "debug_every": math.inf,
        "print_verbose_every": math.inf,
        "condition_method": "bn-film",
        "condition_pattern": (1, 1, 1, 1),
    }
    return {**kwargs, **changes}


PIXELS = {"feature_dim": (3, 16, 16), "stem_num_layers": 2, "stem_kernel_size": 4, "stem_stride": 2, "stem_padding": 1}


def random_like_reference(shape, kind: str) -> torch.Tensor:
    if kind == "running_var":
        return torch.rand(shape) + 0.5
    if kind == "num_batches_tracked":
        return torch.tensor(1234)
    return 0.3 * torch.randn(shape)


def batchnorm_state(prefix: str, dim: int, affine: bool) -> dict:
    names = (("weight", "bias") if affine else ()) + ("running_mean", "running_var", "num_batches_tracked")
    return {f"{prefix}.{name}": random_like_reference((dim,), name) for name in names}


def reference_states(gen: dict, net: dict) -> tuple[dict, dict]:
    """Random tensors under the reference's key names, shaped as FiLMGen and FiLMedNet build their layers."""
    hidden, dim, blocks = gen["hidden_dim"], gen["module_dim"], gen["num_modules"]
    gates = {"gru": 3, "lstm": 4}[gen["encoder_type"]]
    generator = {"encoder_embed.weight": random_like_reference((gen["encoder_vocab_size"], gen["wordvec_dim"]), "")}
    for layer in range(gen["rnn_num_layers"]):
        inputs = gen["wordvec_dim"] if layer == 0 else hidden
        generator[f"encoder_rnn.weight_ih_l{layer}"] = random_like_reference((gates * hidden, inputs), "")
        generator[f"encoder_rnn.weight_hh_l{layer}"] = random_like_reference((gates * hidden, hidden), "")
        generator[f"encoder_rnn.bias_ih_l{layer}"] = random_like_reference((gates * hidden,), "")
        generator[f"encoder_rnn.bias_hh_l{layer}"] = random_like_reference((gates * hidden,), "")
    film_size = 2 * dim if gen["parameter_efficient"] else 4 * dim + 2 * blocks
    generator["decoder_linear.weight"] = random_like_reference((blocks * film_size, hidden), "")
    generator["decoder_linear.bias"] = random_like_reference((blocks * film_size,), "")
    if gen["output_batchnorm"]:
        generator.update(batchnorm_state("output_bn", film_size, affine=True))

    coords = 2 if net["use_coords"] > 0 else 0
    channels = net["feature_dim"][0] + (coords if net["stem_stride"] == 1 else 0)
    network = {}
    # build_stem: [Conv, (BatchNorm), ReLU] per layer in one nn.Sequential.
    index = 0
    for _ in range(net["stem_num_layers"]):
        network[f"stem.{index}.weight"] = random_like_reference(
            (dim, channels, net["stem_kernel_size"], net["stem_kernel_size"]), ""
        )
        network[f"stem.{index}.bias"] = random_like_reference((dim,), "")
        index += 1
        if net["stem_batchnorm"]:
            network.update(batchnorm_state(f"stem.{index}", dim, affine=True))
            index += 1
        index += 1  # ReLU
        channels = dim
    pattern = net["condition_pattern"] or (1,) * blocks
    kernel = net["module_kernel_size"]
    for block in range(blocks):
        network[f"{block}.input_proj.weight"] = random_like_reference((dim, dim + coords, 1, 1), "")
        network[f"{block}.input_proj.bias"] = random_like_reference((dim,), "")
        conv_inputs = dim + (coords if net["use_coords"] >= 2 else 0)
        network[f"{block}.conv1.weight"] = random_like_reference((dim, conv_inputs, kernel, kernel), "")
        network[f"{block}.conv1.bias"] = random_like_reference((dim,), "")
        if net["module_batchnorm"]:
            network.update(batchnorm_state(f"{block}.bn1", dim, affine=not pattern[block]))
    # build_classifier: Conv1x1, (BN), ReLU, Pool, Flatten, then [Linear, (BN1d), ReLU, (Dropout)] ..., Linear.
    layers = ["conv"] + ["bn2d"] * net["classifier_batchnorm"] + ["relu", "pool", "flatten"]
    for _ in net["classifier_fc_layers"]:
        layers += ["linear"] + ["bn1d"] * net["classifier_batchnorm"] + ["relu"]
        layers += ["dropout"] * (net["classifier_dropout"] > 0)
    layers.append("linear")
    widths = iter(list(net["classifier_fc_layers"]) + [NUM_ANSWERS])
    previous = net["classifier_proj_dim"]
    for index, layer in enumerate(layers):
        if layer == "conv":
            network[f"classifier.{index}.weight"] = random_like_reference((previous, dim + coords, 1, 1), "")
            network[f"classifier.{index}.bias"] = random_like_reference((previous,), "")
        elif layer in ("bn2d", "bn1d"):
            network.update(batchnorm_state(f"classifier.{index}", previous, affine=True))
        elif layer == "linear":
            width = next(widths)
            network[f"classifier.{index}.weight"] = random_like_reference((width, previous), "")
            network[f"classifier.{index}.bias"] = random_like_reference((width,), "")
            previous = width
    return generator, network


def write_checkpoint(path, gen: dict, net: dict, states=None, args_as_namespace: bool = True, **save_options):
    """A file laid out as train_model.py writes it."""
    generator_state, network_state = states or reference_states(gen, net)
    args = {"model_type": "FiLM", "checkpoint_path": str(path), "learning_rate": 3e-4, "debug_every": math.inf}
    checkpoint = {
        "args": argparse.Namespace(**args) if args_as_namespace else args,
        "program_generator_kwargs": gen,
        "program_generator_state": generator_state,
        "execution_engine_kwargs": net,
        "execution_engine_state": network_state,
        "baseline_kwargs": None,
        "baseline_state": None,
        "baseline_type": None,
        "vocab": VOCAB,
        "train_losses": [2.1, 1.7],
        "train_rewards": [],
        "train_losses_ts": [100, 200],
        "train_accs": [0.5],
        "val_accs": [0.48],
        "val_accs_ts": [200],
        "best_val_acc": 0.48,
        "model_t": 200,
    }
    torch.save(checkpoint, path, **save_options)
    return checkpoint


# ----------------------------------------------------------------------------------------------------------------
# The reference architecture, written out with functional ops on the reference state dicts.


def reference_question_embedding(gen: dict, state: dict, questions: torch.Tensor) -> torch.Tensor:
    """FiLMGen.encoder: the RNN runs over the whole padded batch; the output is read at the last non-<NULL> token
    that is followed by <NULL> (or at the last position)."""
    batch, length = questions.shape
    last = []
    for row in questions.tolist():
        ends = [t for t in range(length - 1) if row[t] != 0 and row[t + 1] == 0]
        last.append(ends[0] if ends else length - 1)
    sequence = F.embedding(questions, state["encoder_embed.weight"])
    hidden = gen["hidden_dim"]
    for layer in range(gen["rnn_num_layers"]):
        w_ih, w_hh = state[f"encoder_rnn.weight_ih_l{layer}"], state[f"encoder_rnn.weight_hh_l{layer}"]
        b_ih, b_hh = state[f"encoder_rnn.bias_ih_l{layer}"], state[f"encoder_rnn.bias_hh_l{layer}"]
        h = torch.zeros(batch, hidden)
        c = torch.zeros(batch, hidden)
        outputs = []
        for t in range(length):
            from_input = F.linear(sequence[:, t], w_ih, b_ih)
            from_hidden = F.linear(h, w_hh, b_hh)
            if gen["encoder_type"] == "gru":  # gate order r, z, n
                i_r, i_z, i_n = from_input.chunk(3, dim=1)
                h_r, h_z, h_n = from_hidden.chunk(3, dim=1)
                reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                candidate = torch.tanh(i_n + reset * h_n)
                h = (1 - update) * candidate + update * h
            else:  # LSTM, gate order i, f, g, o
                i, f, g, o = (from_input + from_hidden).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        sequence = torch.stack(outputs, dim=1)
    return sequence[torch.arange(batch), torch.tensor(last)]


def reference_film(gen: dict, net: dict, state: dict, questions: torch.Tensor):
    """FiLMGen.decoder (linear) + modify_output, then FiLMedNet's split into (gammas, betas)."""
    dim, blocks = gen["module_dim"], gen["num_modules"]
    film_size = 2 * dim if gen["parameter_efficient"] else 4 * dim + 2 * blocks
    encoded = reference_question_embedding(gen, state, questions)
    film = F.linear(encoded, state["decoder_linear.weight"], state["decoder_linear.bias"])
    film = film.view(len(questions), blocks, film_size)
    gammas, betas = film[:, :, :dim], film[:, :, dim : 2 * dim]
    functions = {"linear": lambda x: x, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp}
    gammas = functions[gen["gamma_option"]](gammas) + gen["gamma_baseline"]
    if not net["use_gamma"]:
        gammas = torch.ones_like(gammas)
    if not net["use_beta"]:
        betas = torch.zeros_like(betas)
    return gammas, betas


def batchnorm(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state.get(f"{prefix}.weight"),
        state.get(f"{prefix}.bias"),
        training=False,
        eps=1e-5,
    )


def reference_forward(gen: dict, net: dict, states, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
    generator_state, state = states
    gammas, betas = reference_film(gen, net, generator_state, questions)
    batch = len(images)
    stride, layers = net["stem_stride"], net["stem_num_layers"]
    height, width = net["feature_dim"][1] // stride**layers, net["feature_dim"][2] // stride**layers
    # coord_map: channel 0 is x (varies along the width), channel 1 is y (along the height), both in [-1, 1].
    xs = torch.linspace(-1, 1, width).view(1, width).expand(height, width)
    ys = torch.linspace(-1, 1, height).view(height, 1).expand(height, width)
    coords = torch.stack((xs, ys)).unsqueeze(0).expand(batch, 2, height, width)
    use_coords = net["use_coords"]

    x = torch.cat((images, coords), 1) if stride == 1 and use_coords > 0 else images
    padding = net["stem_padding"] if net["stem_padding"] is not None else net["stem_kernel_size"] // 2
    index = 0
    for _ in range(layers):
        x = F.conv2d(x, state[f"stem.{index}.weight"], state[f"stem.{index}.bias"], stride=stride, padding=padding)
        if net["stem_batchnorm"]:
            x = batchnorm(x, state, f"stem.{index + 1}")
        x = F.relu(x)
        index += 3 if net["stem_batchnorm"] else 2

    pattern = net["condition_pattern"] or (1,) * net["num_modules"]
    # vr/utils.py renames old option values when it loads a checkpoint: 'cbn' is today's 'bn-film'.
    method = {"cbn": "bn-film"}.get(net["condition_method"], net["condition_method"])
    for block in range(net["num_modules"]):
        conditioned = pattern[block] > 0

        def film(features, where, block=block, conditioned=conditioned):
            if conditioned and method == where:
                return features * gammas[:, block, :, None, None] + betas[:, block, :, None, None]
            return features

        x = film(x, "block-input-film")
        x = torch.cat((x, coords), 1) if use_coords >= 1 else x
        x = F.relu(F.conv2d(x, state[f"{block}.input_proj.weight"], state[f"{block}.input_proj.bias"]))
        out = torch.cat((x, coords), 1) if use_coords >= 2 else x
        kernel = net["module_kernel_size"]
        out = F.conv2d(out, state[f"{block}.conv1.weight"], state[f"{block}.conv1.bias"], padding=kernel // 2)
        out = film(out, "conv-film")
        if net["module_batchnorm"]:
            out = batchnorm(out, state, f"{block}.bn1")
        out = film(out, "bn-film")
        out = film(F.relu(out), "relu-film")
        if net["module_residual"]:
            out = x + out
        x = film(out, "block-output-film")

    x = torch.cat((x, coords), 1) if use_coords > 0 else x
    x = F.conv2d(x, state["classifier.0.weight"], state["classifier.0.bias"])
    index = 1
    if net["classifier_batchnorm"]:
        x = batchnorm(x, state, "classifier.1")
        index += 1
    x = F.relu(x)
    pool = F.max_pool2d if net["classifier_downsample"].startswith("max") else F.avg_pool2d
    x = pool(x, kernel_size=height, stride=height).flatten(1)
    index += 3  # ReLU, pool, Flatten
    for _ in net["classifier_fc_layers"]:
        x = F.linear(x, state[f"classifier.{index}.weight"], state[f"classifier.{index}.bias"])
        if net["classifier_batchnorm"]:
            x = batchnorm(x, state, f"classifier.{index + 1}")
        x = F.relu(x)
        index += 2 + net["classifier_batchnorm"] + (net["classifier_dropout"] > 0)
    return F.linear(x, state[f"classifier.{index}.weight"], state[f"classifier.{index}.bias"])


def sample_inputs(net: dict, batch: int = 5):
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, *net["feature_dim"], generator=generator)
    # Right-padded questions of different lengths, one without padding: <START> ... <END> <NULL>...
    questions = torch.zeros(batch, 9, dtype=torch.long)
    for row, length in enumerate((9, 4, 6, 3, 7)[:batch]):
        questions[row, 0], questions[row, length - 1] = 1, 2
        questions[row, 1 : length - 1] = torch.randint(4, 12, (length - 2,), generator=generator)
    return images, questions


# ----------------------------------------------------------------------------------------------------------------
# (a) every reference tensor lands where it belongs.

EXPECTED_KEYS = {  # reference key -> filmkit key, for the default tiny checkpoint (4 blocks, batchnorm everywhere)
    "encoder_embed.weight": "encoder.embedding.weight",
    "encoder_rnn.weight_ih_l0": "encoder.rnn.weight_ih_l0",
    "encoder_rnn.weight_hh_l0": "encoder.rnn.weight_hh_l0",
    "encoder_rnn.bias_ih_l0": "encoder.rnn.bias_ih_l0",
    "encoder_rnn.bias_hh_l0": "encoder.rnn.bias_hh_l0",
    "decoder_linear.weight": "generator.output.weight",
    "decoder_linear.bias": "generator.output.bias",
    "stem.0.weight": "network.stem.0.weight",
    "stem.0.bias": "network.stem.0.bias",
    **{
        f"stem.1.{name}": f"network.stem.1.{name}"
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    },
    **{
        key: value
        for block in range(4)
        for key, value in {
            f"{block}.input_proj.weight": f"network.blocks.{block}.input_proj.weight",
            f"{block}.input_proj.bias": f"network.blocks.{block}.input_proj.bias",
            f"{block}.conv1.weight": f"network.blocks.{block}.conv.weight",
            f"{block}.conv1.bias": f"network.blocks.{block}.conv.bias",
            f"{block}.bn1.running_mean": f"network.blocks.{block}.norm.running_mean",
            f"{block}.bn1.running_var": f"network.blocks.{block}.norm.running_var",
            f"{block}.bn1.num_batches_tracked": f"network.blocks.{block}.norm.num_batches_tracked",
        }.items()
    },
    "classifier.0.weight": "network.classifier.projection.0.weight",
    "classifier.0.bias": "network.classifier.projection.0.bias",
    **{
        f"classifier.1.{name}": f"network.classifier.projection.1.{name}"
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    },
    "classifier.5.weight": "network.classifier.head.0.weight",
    "classifier.5.bias": "network.classifier.head.0.bias",
    **{
        f"classifier.6.{name}": f"network.classifier.head.1.{name}"
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    },
    "classifier.8.weight": "network.classifier.head.3.weight",
    "classifier.8.bias": "network.classifier.head.3.bias",
}


def test_every_reference_tensor_lands_in_its_parameter(tmp_path):
    gen, net = generator_kwargs(), network_kwargs()
    checkpoint = write_checkpoint(tmp_path / "film.pt", gen, net)
    model, vocab = load_reference_checkpoint(tmp_path / "film.pt")
    ours = model.state_dict()
    reference = {**checkpoint["program_generator_state"], **checkpoint["execution_engine_state"]}
    assert set(reference) == set(EXPECTED_KEYS)
    assert set(ours) == set(EXPECTED_KEYS.values())
    for reference_key, our_key in EXPECTED_KEYS.items():
        assert torch.equal(ours[our_key], reference[reference_key]), f"{reference_key} -> {our_key}"
    assert vocab == VOCAB
    assert not model.training
    config = model.config
    assert (config.vocab_size, config.num_answers, config.rnn_hidden_dim, config.embedding_dim) == (12, 7, 16, 8)
    assert (config.num_blocks, config.module_dim, config.classifier_fc_dims) == (4, 8, (32,))
    assert (config.input_kind, config.coords, config.film_placement) == ("features", "input", "bn-film")


def test_paper_kwargs_give_the_paper_presets():
    """The kwargs of the paper's models (scripts/train/film.sh, with the linear decoder the paper's parameter count
    implies) map onto filmkit's paper and paper-pixels presets exactly."""
    paper_generator = generator_kwargs(
        encoder_vocab_size=93, wordvec_dim=200, hidden_dim=4096, num_modules=4, module_dim=128
    )
    paper_network = network_kwargs(
        feature_dim=(1024, 14, 14), module_dim=128, classifier_proj_dim=512, classifier_fc_layers=(1024,)
    )
    shapes = ({"encoder_embed.weight": torch.empty(93, 200)}, {"classifier.8.weight": torch.empty(32, 1024)})
    for network, preset in (
        (paper_network, "paper"),
        ({**paper_network, **PIXELS, "stem_num_layers": 4, "feature_dim": (3, 224, 224)}, "paper-pixels"),
    ):
        config = reference_layout(paper_generator, network, *shapes).config
        expected = build_config(preset, vocab_size=93, num_answers=32)
        assert dataclasses.replace(config, extra={}) == expected, preset


# ----------------------------------------------------------------------------------------------------------------
# (b) the loaded model computes what the reference computes.

VARIANTS = {
    "paper-features": ({}, {}),
    "raw-pixels": ({"num_modules": 2}, {**PIXELS, "num_modules": 2, "condition_pattern": ()}),
    "lstm-and-options": (
        {
            "encoder_type": "lstm",
            "rnn_num_layers": 2,
            "parameter_efficient": False,
            "gamma_baseline": 0.5,
            "output_batchnorm": True,
        },
        {
            "condition_pattern": (1, 0, 1, 0),
            "condition_method": "relu-film",
            "use_coords": 2,
            "classifier_batchnorm": False,
            "classifier_dropout": 0.1,
            "classifier_fc_layers": (32, 16),
            "classifier_downsample": "avgpoolfull",
            "use_beta": False,
            "module_dropout": 0.1,
        },
    ),
    "tanh-no-coords": (
        {"gamma_option": "tanh", "gamma_baseline": 0},
        {
            "condition_method": "conv-film",
            "use_coords": 0,
            "stem_batchnorm": False,
            "module_batchnorm": False,
            "module_residual": False,
            "stem_num_layers": 2,
        },
    ),
    "block-input-film": ({"gamma_option": "exp", "gamma_baseline": 0}, {"condition_method": "block-input-film"}),
    "block-output-film": (
        {"num_modules": 3},
        {"condition_method": "block-output-film", "num_modules": 3, "condition_pattern": (0, 1, 1), "use_gamma": False},
    ),
    "old-name-cbn": ({}, {"condition_method": "cbn", "module_input_proj": True}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_matches_the_reference_architecture(tmp_path, variant):
    generator_changes, network_changes = VARIANTS[variant]
    gen, net = generator_kwargs(**generator_changes), network_kwargs(**network_changes)
    checkpoint = write_checkpoint(tmp_path / "film.pt", gen, net)
    model, _ = load_reference_checkpoint(tmp_path / "film.pt")
    images, questions = sample_inputs(net)
    states = (checkpoint["program_generator_state"], checkpoint["execution_engine_state"])
    with torch.no_grad():
        expected = reference_forward(gen, net, states, images, questions)
        got = model(images, questions)
    assert got.shape == (len(images), NUM_ANSWERS)
    assert expected.abs().max() > 0.1  # the comparison is not between two near-zero tensors
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_gamma_baseline_is_part_of_the_comparison(tmp_path):
    """The hand-written forward is sensitive to the gamma baseline, so the fold into the biases is really tested."""
    gen, net = generator_kwargs(gamma_baseline=0.5), network_kwargs()
    checkpoint = write_checkpoint(tmp_path / "film.pt", gen, net)
    model, _ = load_reference_checkpoint(tmp_path / "film.pt")
    images, questions = sample_inputs(net)
    states = (checkpoint["program_generator_state"], checkpoint["execution_engine_state"])
    with torch.no_grad():
        wrong_baseline = reference_forward({**gen, "gamma_baseline": 1.0}, net, states, images, questions)
        got = model(images, questions)
    assert not torch.allclose(got, wrong_baseline, atol=1e-3)


def test_old_formats_args_dicts_and_missing_batch_counters_load(tmp_path):
    """train_model.py stores args.__dict__; PyTorch 0.x wrote the legacy (non-zip) format and no
    num_batches_tracked buffers."""
    gen, net = generator_kwargs(), network_kwargs()
    generator_state, network_state = reference_states(gen, net)
    network_state = {key: value for key, value in network_state.items() if not key.endswith("num_batches_tracked")}
    path = tmp_path / "old.pt"
    write_checkpoint(
        path,
        gen,
        net,
        states=(generator_state, network_state),
        args_as_namespace=False,
        _use_new_zipfile_serialization=False,
    )
    model, _ = load_reference_checkpoint(path)
    images, questions = sample_inputs(net)
    with torch.no_grad():
        expected = reference_forward(gen, net, (generator_state, network_state), images, questions)
        torch.testing.assert_close(model(images, questions), expected, rtol=1e-5, atol=1e-5)
    assert int(model.network.stem[1].num_batches_tracked) == 0


def test_tensors_saved_on_cuda_load_on_the_cpu(tmp_path, monkeypatch):
    gen, net = generator_kwargs(), network_kwargs()
    path = tmp_path / "gpu.pt"
    with monkeypatch.context() as patch:  # tag every storage as cuda:0, as a GPU training run writes it
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        checkpoint = write_checkpoint(path, gen, net)
    if not torch.cuda.is_available():  # the file really asks for a GPU
        with pytest.raises(RuntimeError, match="CUDA"), torch.serialization.safe_globals([argparse.Namespace]):
            torch.load(path, weights_only=True)
    model, _ = load_reference_checkpoint(path)
    assert all(tensor.device.type == "cpu" for tensor in model.state_dict().values())
    assert torch.equal(model.encoder.embedding.weight, checkpoint["program_generator_state"]["encoder_embed.weight"])


# ----------------------------------------------------------------------------------------------------------------
# (c) loading never runs pickled code.


class _RunsShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsAFunction:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload, global_name", [(_RunsShellCommand, "system"), (_CallsAFunction, "eval")])
def test_files_with_code_are_refused_and_never_run(tmp_path, payload, global_name):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "malicious.pt"
    gen, net = generator_kwargs(), network_kwargs()
    generator_state, network_state = reference_states(gen, net)
    torch.save(
        {
            "args": payload(marker),
            "program_generator_kwargs": gen,
            "program_generator_state": generator_state,
            "execution_engine_kwargs": net,
            "execution_engine_state": network_state,
            "vocab": VOCAB,
        },
        path,
    )
    with pytest.raises(ValueError, match=rf"malicious\.pt: refused: .*global \S*{global_name}.*If you trust"):
        load_reference_checkpoint(path)
    assert not marker.exists()
    assert global_name.encode() in path.read_bytes()  # the payload is in the file; plain unpickling would run it


def test_a_pickled_function_is_refused(tmp_path):
    path = tmp_path / "function.pt"
    gen, net = generator_kwargs(), network_kwargs()
    generator_state, network_state = reference_states(gen, net)
    torch.save(
        {
            "args": {"model_type": "FiLM", "callback": pickle.loads},
            "program_generator_kwargs": gen,
            "program_generator_state": generator_state,
            "execution_engine_kwargs": net,
            "execution_engine_state": network_state,
            "vocab": VOCAB,
        },
        path,
    )
    with pytest.raises(ValueError, match=r"function\.pt: refused: .*loads"):
        load_reference_checkpoint(path)


# ----------------------------------------------------------------------------------------------------------------
# (d) corrupt and foreign files.


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(random.Random(7).randbytes(400))  # fixed bytes: a random 'c' opcode would read as a global
    with pytest.raises(ValueError, match=r"garbage\.pt: not a readable torch checkpoint"):
        load_reference_checkpoint(garbage)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: not a readable torch checkpoint"):
        load_reference_checkpoint(empty)
    whole = tmp_path / "whole.pt"
    write_checkpoint(whole, generator_kwargs(), network_kwargs())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.pt: not a readable torch checkpoint"):
        load_reference_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"weight": torch.zeros(3)}, "epoch": 3}, foreign)
    foreign_message = r"foreign\.pt: not a checkpoint of the reference FiLM code: missing \(or not a dict\) "
    foreign_message += r"program_generator_kwargs, .*execution_engine_state, vocab"
    with pytest.raises(ValueError, match=foreign_message):
        load_reference_checkpoint(foreign)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(ValueError, match=r"tensor\.pt: .* holds a Tensor, not a dict"):
        load_reference_checkpoint(tensor)
    with pytest.raises(ValueError, match=r"absent\.pt: no such checkpoint file"):
        load_reference_checkpoint(tmp_path / "absent.pt")


def test_other_reference_models_are_named(tmp_path):
    path = tmp_path / "baseline.pt"
    torch.save(
        {
            "args": argparse.Namespace(model_type="CNN+LSTM+SA"),
            "program_generator_state": None,
            "baseline_state": {"x": torch.zeros(1)},
            "vocab": VOCAB,
        },
        path,
    )
    with pytest.raises(ValueError, match=r"baseline\.pt: a reference checkpoint of model_type 'CNN\+LSTM\+SA'"):
        load_reference_checkpoint(path)


# ----------------------------------------------------------------------------------------------------------------
# (e) options filmkit cannot reproduce, and strictness about tensors.

UNSUPPORTED = [
    ("network", "condition_method", "concat"),
    ("generator", "decoder_type", "gru"),
    ("generator", "encoder_type", "linear"),
    ("generator", "bidirectional", True),
    ("network", "classifier_downsample", "maxpool2"),
    ("network", "classifier_downsample", "aggressive"),
    ("network", "module_batchnorm_affine", True),
    ("network", "module_input_proj", 3),
    ("network", "module_num_layers", 2),
    ("generator", "gamma_option", "softplus"),
]


@pytest.mark.parametrize("part, option, value", UNSUPPORTED)
def test_unsupported_options_are_named(tmp_path, part, option, value):
    gen, net = generator_kwargs(), network_kwargs()
    states = reference_states(gen, net)
    if part == "generator":
        gen[option] = value
    else:
        net[option] = value
    write_checkpoint(tmp_path / "film.pt", gen, net, states=states)
    kwargs_name = "program_generator_kwargs" if part == "generator" else "execution_engine_kwargs"
    with pytest.raises(ValueError, match=rf"film\.pt: {kwargs_name}\['{option}'\] = {value!r} is not supported"):
        load_reference_checkpoint(tmp_path / "film.pt")


def test_a_nonlinear_gamma_with_a_baseline_is_refused(tmp_path):
    gen, net = generator_kwargs(gamma_option="sigmoid", gamma_baseline=1.0), network_kwargs()
    write_checkpoint(tmp_path / "film.pt", gen, net)
    with pytest.raises(ValueError, match=r"\['gamma_baseline'\] = 1.0 is not supported: with gamma_option 'sigmoid'"):
        load_reference_checkpoint(tmp_path / "film.pt")


def test_unknown_kwargs_are_refused(tmp_path):
    gen, net = generator_kwargs(), network_kwargs(film_dropout=0.2)
    write_checkpoint(tmp_path / "film.pt", gen, net)
    with pytest.raises(ValueError, match=r"execution_engine_kwargs has option\(s\) 'film_dropout'"):
        load_reference_checkpoint(tmp_path / "film.pt")


def test_unmapped_missing_and_misshapen_tensors_are_named(tmp_path):
    gen, net = generator_kwargs(), network_kwargs()
    path = tmp_path / "film.pt"

    generator_state, network_state = reference_states(gen, net)
    network_state["4.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    write_checkpoint(path, gen, net, states=(generator_state, network_state))
    with pytest.raises(ValueError, match=r"map to nothing in filmkit's model: execution_engine_state\['4.conv1.weight"):
        load_reference_checkpoint(path)

    generator_state, network_state = reference_states(gen, net)
    del network_state["2.bn1.running_var"], generator_state["encoder_rnn.bias_hh_l0"]
    write_checkpoint(path, gen, net, states=(generator_state, network_state))
    with pytest.raises(
        ValueError,
        match=r"missing .*program_generator_state\['encoder_rnn.bias_hh_l0'\], "
        r"execution_engine_state\['2.bn1.running_var'\]",
    ):
        load_reference_checkpoint(path)

    generator_state, network_state = reference_states(gen, net)
    network_state["classifier.0.weight"] = torch.zeros(16, 8, 1, 1)  # as if trained without coordinate maps
    write_checkpoint(path, gen, net, states=(generator_state, network_state))
    with pytest.raises(
        ValueError,
        match=r"execution_engine_state\['classifier.0.weight'\] is \(16, 8, 1, 1\), "
        r"filmkit's network.classifier.projection.0.weight is \(16, 10, 1, 1\)",
    ):
        load_reference_checkpoint(path)


def test_a_vocab_that_does_not_fit_the_weights_is_refused(tmp_path):
    gen, net = generator_kwargs(), network_kwargs()
    checkpoint = write_checkpoint(tmp_path / "film.pt", gen, net)
    checkpoint["vocab"] = {**VOCAB, "answer_token_to_idx": {"yes": 0, "no": 1}}
    torch.save(checkpoint, tmp_path / "film.pt")
    with pytest.raises(ValueError, match=r"film\.pt: the vocab has 2 answers but the classifier gives 7 scores"):
        load_reference_checkpoint(tmp_path / "film.pt")


def test_the_documented_snippet_runs(tmp_path):
    docs = Path(__file__).resolve().parents[1] / "docs" / "reference-checkpoints.md"
    snippet = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.DOTALL)[0]
    path = tmp_path / "best.pt"
    write_checkpoint(path, generator_kwargs(), network_kwargs())
    snippet, replaced = re.subn(r'^path = ".*?"', f"path = {str(path)!r}", snippet, flags=re.MULTILINE)
    assert replaced == 1
    namespace: dict = {}
    exec(compile(snippet, str(docs), "exec"), namespace)
    assert namespace["answer"] in VOCAB["answer_token_to_idx"]
    assert namespace["questions"][0, 0] == 1 and namespace["questions"][0, -1] == 2
