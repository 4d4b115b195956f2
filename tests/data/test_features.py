import importlib.util

import numpy as np
import pytest
import torch
from fixtures import clevr_dataset

import filmkit.data.preprocess as preprocess_module
from filmkit.data.dataset import CachedSplit
from filmkit.data.features import FeatureEncoder, normalise_for_imagenet
from filmkit.data.preprocess import preprocess

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def test_imagenet_normalisation_uses_the_correct_std():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = normalise_for_imagenet(images)
    for channel, (mean, std) in enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)):
        expected = (images[:, channel].float() / 255 - mean) / std
        torch.testing.assert_close(out[:, channel], expected)


def test_feature_pipeline_writes_encoded_images(tmp_path, monkeypatch):
    # A stand-in trunk (average pooling to 14 x 14) checks the plumbing: 224 x 224 decode, normalise, store float.
    trunk = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(14))
    monkeypatch.setattr(preprocess_module, "resnet101_encoder", lambda weights: FeatureEncoder(trunk, (3, 14, 14)))
    data = clevr_dataset(tmp_path / "clevr")
    manifest = preprocess(
        data,
        tmp_path / "cache",
        features="resnet101",
        weights="unused.pth",
        splits=["val"],
        vocab_path=_vocab(tmp_path, data),
    )
    assert manifest["image_kind"] == "resnet101" and manifest["resolution"] == [224, 224]
    assert (tmp_path / "cache" / "val_features.h5").exists()
    batch = CachedSplit(tmp_path / "cache", "val")[[0]]
    assert batch["images"].shape == (1, 3, 14, 14)
    red = 100 / 255  # image index 10 of the fixture has red = 100 everywhere
    np.testing.assert_allclose(batch["images"][0, 0].numpy(), (red - 0.485) / 0.229, rtol=1e-4)


def _vocab(tmp_path, data):
    preprocess(data, tmp_path / "pixels", resolution=(8, 8), splits=["train"])
    return tmp_path / "pixels" / "vocab.json"


def test_features_need_weights_and_a_known_name(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    with pytest.raises(ValueError, match="needs --weights"):
        preprocess(data, tmp_path / "cache", features="resnet101")
    with pytest.raises(ValueError, match="unknown features 'vgg'"):
        preprocess(data, tmp_path / "cache", features="vgg", weights="w.pth")


@pytest.mark.skipif(HAS_TORCHVISION, reason="checks the message shown when torchvision is absent")
def test_features_without_torchvision_say_how_to_install_it(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    with pytest.raises(ValueError, match=r"pip install 'filmkit\[features\]'"):
        preprocess(data, tmp_path / "cache", features="resnet101", weights="w.pth")


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision (the [features] extra) is not installed")
def test_resnet101_trunk_gives_conv4_maps(tmp_path):
    import torchvision

    from filmkit.data.features import resnet101_encoder

    weights = tmp_path / "resnet101.pth"
    torch.save(torchvision.models.resnet101(weights=None).state_dict(), weights)
    encoder = resnet101_encoder(weights)
    out = encoder(np.zeros((1, 3, 224, 224), dtype=np.uint8))
    assert out.shape == (1, 1024, 14, 14) and out.dtype == np.float32
