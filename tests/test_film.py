import pytest
import torch

from filmkit.film import FiLM, FiLMGenerator, film, parametrise_gamma


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 7), (4, 3, 5, 6), (4, 3, 2, 5, 6)])
def test_identity_parameters_leave_features_unchanged(shape):
    features = torch.randn(shape)
    ones, zeros = torch.ones(4, 3), torch.zeros(4, 3)
    assert torch.equal(film(features, ones, zeros), features)
    channel_last = features.movedim(1, -1)
    assert torch.equal(film(channel_last, ones, zeros, channel_dim=-1), channel_last)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_each_channel_gets_its_own_scale_and_shift(shape):
    features = torch.randn(shape)
    gamma, beta = torch.randn(2, 3), torch.randn(2, 3)
    out = film(features, gamma, beta)
    for n in range(2):
        for c in range(3):
            torch.testing.assert_close(out[n, c], gamma[n, c] * features[n, c] + beta[n, c])
    # Channel-last gives the same numbers with the channel axis moved.
    last = film(features.movedim(1, -1), gamma, beta, channel_dim=-1)
    torch.testing.assert_close(last, out.movedim(1, -1))


def test_film_module_matches_function():
    layer = FiLM(channel_dim=-1)
    features, gamma, beta = torch.randn(2, 5, 4), torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(layer(features, gamma, beta), film(features, gamma, beta, channel_dim=-1))


def test_mismatched_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match=r"gamma must have shape \(N, C\) = \(2, 3\)"):
        film(torch.randn(2, 3, 4, 4), torch.ones(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch dimension"):
        film(torch.randn(2, 3), torch.ones(2, 3), torch.zeros(2, 3), channel_dim=0)


def test_gamma_parametrisations():
    raw = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(parametrise_gamma(raw, "linear"), 1 + raw)
    assert parametrise_gamma(raw, "sigmoid").min() > 0 and parametrise_gamma(raw, "sigmoid").max() < 1
    assert parametrise_gamma(raw, "tanh").min() > -1 and parametrise_gamma(raw, "tanh").max() < 1
    assert parametrise_gamma(raw, "exp").min() > 0
    with pytest.raises(ValueError, match="unknown gamma activation 'relu'"):
        parametrise_gamma(raw, "relu")


def test_generator_shape_and_switches():
    cond = torch.randn(5, 6)
    generator = FiLMGenerator(6, num_layers=3, num_channels=4, hidden_dims=(10,))
    params = generator(cond)
    assert params.shape == (5, 3, 2, 4)
    # gamma = 1 + the raw output: the raw output is what the last linear layer computes.
    raw = generator.output(generator.hidden(cond)).view(5, 3, 2, 4)
    torch.testing.assert_close(params[:, :, 0], 1 + raw[:, :, 0])
    torch.testing.assert_close(params[:, :, 1], raw[:, :, 1])

    fixed = FiLMGenerator(6, 3, 4, use_gamma=False, use_beta=False)
    params = fixed(cond)
    assert torch.equal(params[:, :, 0], torch.ones(5, 3, 4))
    assert torch.equal(params[:, :, 1], torch.zeros(5, 3, 4))
    # The switches do not change the parameter count.
    assert sum(p.numel() for p in fixed.parameters()) == 6 * 24 + 24


def test_generator_conditions_a_cnn_and_receives_gradients():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    generator = FiLMGenerator(cond_dim=2, num_layers=1, num_channels=4)
    goals = torch.eye(2)
    images = torch.randn(1, 3, 5, 5).expand(2, -1, -1, -1)
    gamma, beta = generator(goals).unbind(dim=2)
    out = torch.relu(film(conv(images), gamma[:, 0], beta[:, 0]))
    # Same image, different goals: different features.
    assert not torch.allclose(out[0], out[1])
    out.sum().backward()
    assert generator.output.weight.grad is not None and generator.output.weight.grad.abs().sum() > 0


def test_generator_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown gamma activation"):
        FiLMGenerator(4, 1, 4, gamma_activation="softplus")
    with pytest.raises(ValueError, match="must be positive"):
        FiLMGenerator(4, 0, 4)
    with pytest.raises(ValueError, match=r"\(N, cond_dim\)"):
        FiLMGenerator(4, 1, 4)(torch.randn(4))
