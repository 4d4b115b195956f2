import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_batch, tiny_config
from filmkit.vqa import FILM_PLACEMENTS, PRESETS, FiLMVQA, build_config, count_parameters
from filmkit.vqa.model import check_image_index


def test_paper_parameter_counts_are_exact():
    paper = count_parameters(FiLMVQA(build_config("paper", vocab_size=93, num_answers=32)))
    assert paper["total"] == 59_495_752
    assert paper["generator"] == 57_027_752
    assert (paper["rnn"], paper["film_head"], paper["embedding"]) == (52_813_824, 4_195_328, 18_600)
    assert (paper["network"], paper["stem"], paper["blocks"], paper["classifier"]) == (
        2_468_000,
        1_182_336,
        4 * 164_352,
        628_256,
    )
    pixels = count_parameters(FiLMVQA(build_config("paper-pixels", vocab_size=93, num_answers=32)))
    assert pixels["total"] == 59_107_528
    assert pixels["stem"] == 794_112


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_answers_with_the_right_shape(preset):
    config = build_config(preset, vocab_size=93, num_answers=32)
    model = FiLMVQA(config).eval()
    images = torch.rand(2, config.in_channels, config.image_height, config.image_width)
    questions = torch.tensor([[1, 10, 20, 2], [1, 30, 2, 0]])
    with torch.no_grad():
        logits = model(images, questions)
        params = model.film_params(questions)
    assert logits.shape == (2, 32)
    assert params.shape == (2, config.num_blocks, 2, config.module_dim)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("placement", FILM_PLACEMENTS)
def test_every_placement_runs(placement):
    config = tiny_config(film_placement=placement)
    images, questions, _ = tiny_batch(config)
    assert FiLMVQA(config)(images, questions).shape == (6, config.num_answers)


def test_placement_changes_where_film_acts():
    # Same weights, different placements: different outputs (each placement really moves the FiLM layer).
    outputs = {}
    state = None
    for placement in FILM_PLACEMENTS:
        model = FiLMVQA(tiny_config(film_placement=placement)).eval()
        if state is None:
            state = model.state_dict()
        model.load_state_dict(state)
        images, questions, _ = tiny_batch(model.config)
        outputs[placement] = model(images, questions)
    values = list(outputs.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not torch.allclose(values[i], values[j])


def test_identity_film_equals_an_unconditioned_network():
    # With gamma = 1 and beta = 0 supplied, every question gives the same answer for the same image.
    model = FiLMVQA(tiny_config()).eval()
    images, questions, _ = tiny_batch(model.config)
    params = model.film_params(questions)
    params[:, :, 0], params[:, :, 1] = 1.0, 0.0
    same_image = images[:1].expand_as(images)
    logits = model.answer_with_film(same_image, params)
    torch.testing.assert_close(logits, logits[:1].expand_as(logits))


ABLATIONS = {
    "paper defaults": {},
    "beta := 0": {"use_beta": False},
    "gamma := 1": {"use_gamma": False},
    "gamma sigmoid": {"gamma_activation": "sigmoid"},
    "gamma tanh": {"gamma_activation": "tanh"},
    "gamma exp": {"gamma_activation": "exp"},
    "conv-film": {"film_placement": "conv-film"},
    "relu-film": {"film_placement": "relu-film"},
    "block-input-film": {"film_placement": "block-input-film"},
    "block-output-film": {"film_placement": "block-output-film"},
    "no FiLM in last block": {"condition_pattern": (True, False)},
    "no FiLM at all": {"condition_pattern": (False, False)},
    "1x1 convs, no coords": {"coords": "none", "block_kernel_size": 1},
    "coords in every conv": {"coords": "all"},
    "no residual": {"residual": False},
    "no batch norm": {"block_batchnorm": False, "stem_batchnorm": False, "classifier_batchnorm": False},
    "dropout": {"block_dropout": 0.1, "classifier_dropout": 0.1},
    "lstm, 2 layers, bidirectional": {"rnn_type": "lstm", "rnn_num_layers": 2, "rnn_bidirectional": True},
    "average pool": {"classifier_pool": "avg"},
    "1 block": {"num_blocks": 1},
    "6 blocks": {"num_blocks": 6},
    "raw pixels": {
        "input_kind": "pixels",
        "in_channels": 3,
        "image_height": 16,
        "image_width": 16,
        "stem_num_layers": 2,
        "stem_kernel_size": 4,
        "stem_stride": 2,
    },
}


@pytest.mark.parametrize("switches", ABLATIONS.values(), ids=ABLATIONS.keys())
def test_one_step_lowers_the_loss_for_each_ablation(switches):
    torch.manual_seed(1)
    model = FiLMVQA(tiny_config(**switches))
    images, questions, answers = tiny_batch(model.config, batch=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_value():
        torch.manual_seed(2)  # identical dropout masks for both measurements
        return F.cross_entropy(model(images, questions), answers)

    before = loss_value()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_value()
    assert after.item() < before.item()


def test_gradients_reach_the_generator_and_encoder():
    model = FiLMVQA(tiny_config())
    images, questions, answers = tiny_batch(model.config)
    F.cross_entropy(model(images, questions), answers).backward()
    for name in ("generator.output.weight", "encoder.rnn.weight_ih_l0", "encoder.embedding.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_zero_generator_init_starts_every_question_at_the_identity_and_still_learns_it():
    model = FiLMVQA(tiny_config(generator_init="zero"))
    images, questions, answers = tiny_batch(model.config)
    params = model.film_params(questions)
    assert torch.equal(params[:, :, 0], torch.ones_like(params[:, :, 0]))
    assert torch.equal(params[:, :, 1], torch.zeros_like(params[:, :, 1]))
    kaiming = FiLMVQA(tiny_config()).film_params(questions)
    assert kaiming[:, :, 1].abs().max() > 0.01  # the paper's init: each question its own random betas
    F.cross_entropy(model(images, questions), answers).backward()
    assert model.generator.output.weight.grad.abs().sum() > 0  # the output layer leaves 0 at the first step


def test_batch_size_one():
    model = FiLMVQA(tiny_config())
    images, questions, _ = tiny_batch(model.config, batch=1)
    assert model.eval()(images, questions).shape == (1, 5)
    model.train()
    with pytest.raises(ValueError, match="at least 2"):
        model(images, questions)
    unnormalised = FiLMVQA(tiny_config(classifier_batchnorm=False)).train()
    assert unnormalised(images, questions).shape == (1, 5)


def test_eval_mode_is_deterministic():
    model = FiLMVQA(tiny_config(block_dropout=0.5, classifier_dropout=0.5)).eval()
    images, questions, _ = tiny_batch(model.config)
    assert torch.equal(model(images, questions), model(images, questions))


def test_return_activations_exposes_the_pooled_map():
    model = FiLMVQA(tiny_config()).eval()
    images, questions, _ = tiny_batch(model.config)
    params = model.film_params(questions)
    logits, activations = model.answer_with_film(images, params, return_activations=True)
    torch.testing.assert_close(logits, model(images, questions))
    assert activations["classifier_map"].shape == (6, 16, 6, 6)
    assert len(activations["blocks"]) == 2


BAD_INPUTS = {
    "wrong channels": (lambda im, q: (im[:, :3], q), r"images must have shape \(N, 8, 6, 6\)"),
    "wrong size": (lambda im, q: (im[:, :, :5], q), r"got \(6, 8, 5, 6\)"),
    "uint8 images": (lambda im, q: ((im * 255).to(torch.uint8), q), "must be a float tensor"),
    "empty question": (lambda im, q: (im, torch.cat([q[:5], torch.zeros(1, 8, dtype=torch.long)])), "question 5"),
    "token out of range": (lambda im, q: (im, q.masked_fill(q == q.max(), 12)), "token id 12 is outside"),
    "negative token": (lambda im, q: (im, q.masked_fill(q == q.max(), -3)), "token id -3 is outside"),
    "left padding": (lambda im, q: (im, torch.roll(q, 3, dims=1)), "right-padded"),
    "float questions": (lambda im, q: (im, q.float()), "integer"),
    "batch mismatch": (lambda im, q: (im[:2], q), "2 images but 6 questions"),
}


@pytest.mark.parametrize("corrupt,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_raises_a_clear_value_error(corrupt, message):
    model = FiLMVQA(tiny_config()).eval()
    images, questions, _ = tiny_batch(model.config)
    questions[:, 0] = 1  # every question starts with a real token, so rolling creates left padding
    bad_images, bad_questions = corrupt(images, questions)
    with pytest.raises(ValueError, match=message):
        model(bad_images, bad_questions)


def test_question_longer_than_the_model_allows():
    model = FiLMVQA(tiny_config(max_question_length=4)).eval()
    images, _, _ = tiny_batch(model.config, batch=2)
    questions = torch.tensor([[1, 3, 4, 5, 2], [1, 2, 0, 0, 0]])
    with pytest.raises(ValueError, match="5 tokens; this model reads at most 4"):
        model(images, questions)


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="config.film_placement"):
        tiny_config(film_placement="everywhere")
    with pytest.raises(ValueError, match="condition_pattern has 3 entries for 2 blocks"):
        tiny_config(condition_pattern=(True, True, False))
    with pytest.raises(ValueError, match="config.module_dim must be a positive integer"):
        tiny_config(module_dim=0)
    with pytest.raises(ValueError, match="shrinks to nothing"):
        tiny_config(stem_num_layers=5, stem_stride=2, stem_kernel_size=4)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_config("huge")


def test_an_image_index_runs_the_stem_once_per_image_with_the_same_answers():
    from filmkit.vqa import FiLMVQA, build_config

    model = FiLMVQA(build_config("cpu", vocab_size=20, num_answers=8, image_height=32, image_width=32)).eval()
    images = torch.rand(3, 3, 32, 32)
    questions = torch.tensor([[1, 5, 7, 2], [1, 4, 2, 0], [1, 6, 2, 0], [1, 9, 9, 2], [1, 3, 2, 0]])
    index = torch.tensor([2, 0, 2, 1, 0])
    calls = []
    model.network.stem.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    shared = model(images, questions, index)
    repeated = model(images[index], questions)
    assert calls == [3, 5]
    torch.testing.assert_close(shared, repeated)
    with pytest.raises(ValueError, match="outside the batch's 3 images"):
        model(images, questions, torch.tensor([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="one entry per question"):
        model(images, questions, torch.tensor([0, 1]))


def test_input_checks_read_token_values_only_on_the_cpu(monkeypatch):
    """On an accelerator a value check waits for the device; a meta tensor (no values) stands in for one."""
    model = FiLMVQA(build_config("cpu", vocab_size=20, num_answers=8))
    on_device = torch.tensor([[1, 25, 2]]).to("meta")  # 25 is outside the vocabulary, but cannot be read here
    model.check_questions(on_device)
    check_image_index(torch.tensor([0, 3]).to("meta"), 2, 2)
    monkeypatch.setenv("FILMKIT_DEBUG_CHECKS", "1")  # debugging asks for every check, syncs and all
    with pytest.raises(RuntimeError, match="meta tensors"):
        model.check_questions(on_device)  # it tries to read the values (meta tensors have none)
    monkeypatch.delenv("FILMKIT_DEBUG_CHECKS")
    with pytest.raises(ValueError, match="token id 25 is outside the vocabulary"):
        model.check_questions(torch.tensor([[1, 25, 2]]))
