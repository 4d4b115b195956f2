"""The fused Adam the trainer uses follows the same update rule as torch's default Adam."""

import torch

from filmkit.train.loop import make_adam


def test_fused_adam_matches_the_default_implementation():
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    plain_model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    plain_model.load_state_dict(fused_model.state_dict())
    fused = make_adam(fused_model.parameters(), lr=1e-2, weight_decay=1e-3)
    plain = torch.optim.Adam(plain_model.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    if torch.torch_version.TorchVersion(torch.__version__) >= "2.4":  # CPU Adam is fused from torch 2.4 on
        assert fused.defaults["fused"]
    inputs, targets = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for _ in range(20):
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
