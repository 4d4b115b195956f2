"""A small render shows what CLEVR's 480x320 render shows once resized, as `filmkit preprocess` resizes real CLEVR."""

import numpy as np
from PIL import Image

from filmkit.clevr.properties import load_properties
from filmkit.clevr.render import render_scene

SCENE = {
    "objects": [
        {"shape": "cube", "size": "large", "material": "rubber", "color": "red", "3d_coords": [-2.0, 1.5, 0.7],
         "rotation": 20.0},
        {"shape": "sphere", "size": "small", "material": "metal", "color": "cyan", "3d_coords": [2.2, -1.0, 0.35],
         "rotation": 0.0},
        {"shape": "cylinder", "size": "large", "material": "rubber", "color": "yellow", "3d_coords": [0.5, 2.5, 0.7],
         "rotation": 0.0},
    ]
}  # fmt: skip


def test_a_64x64_render_matches_a_480x320_render_resized_like_real_clevr():
    properties = load_properties()
    wide = render_scene(SCENE, properties, 480, 320)
    resized = np.asarray(Image.fromarray(wide.image).resize((64, 64), Image.BICUBIC)).astype(float)
    small = render_scene(SCENE, properties, 64, 64).image.astype(float)
    assert np.abs(small - resized).mean() < 1.5  # the same picture up to filtering (0.47 of 255 levels measured)
    # Every object sits where the resized image has it: mask centroids in relative coordinates agree.
    masks = render_scene(SCENE, properties, 64, 64).masks
    for index in range(3):
        rows, cols = np.nonzero(wide.masks == index)
        small_rows, small_cols = np.nonzero(masks == index)
        np.testing.assert_allclose(
            [small_cols.mean() / 64, small_rows.mean() / 64], [cols.mean() / 480, rows.mean() / 320], atol=0.02
        )
    # Another framing of the same scene (the centre square of the view) is far off: the check tells framings apart.
    unsquashed = np.asarray(Image.fromarray(wide.image).crop((80, 0, 400, 320)).resize((64, 64), Image.BICUBIC))
    assert np.abs(small - unsquashed.astype(float)).mean() > 2 * np.abs(small - resized).mean()
