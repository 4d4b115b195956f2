"""A contact sheet of generated scenes, each image with its object list written under it.

    python scripts/contact_sheet.py --out docs/images/clevr-samples.png

The scenes are the first ``--count`` images of ``filmkit generate scenes --split val --seed SEED`` at the given
resolution (generated into a temporary folder), so the sheet shows exactly what that command makes.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from filmkit.clevr.generate import SplitSpec, generate_split
from filmkit.clevr.render import save_png
from filmkit.clevr.scene_json import read_scenes

FONT_SIZE, LINE_HEIGHT, PADDING = 13, 16, 8
CAPTION_ROWS = 6  # a title line, then objects in two text columns of five


def caption_lines(scene: dict) -> tuple[str, list[str]]:
    """The title of a scene and one line per object, e.g. ``3 large red metal cube``."""
    title = f"{scene['image_filename']}: {len(scene['objects'])} objects"
    objects = [
        f"{i} {obj['size']} {obj['color']} {obj['material']} {obj['shape']}" for i, obj in enumerate(scene["objects"])
    ]
    return title, objects


def draw_sheet(images: list[Image.Image], scenes: list[dict], columns: int) -> Image.Image:
    width, height = images[0].size
    cell_height = height + CAPTION_ROWS * LINE_HEIGHT + 2 * PADDING
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (width + PADDING) + PADDING, rows * cell_height + PADDING), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=FONT_SIZE)
    for k, (image, scene) in enumerate(zip(images, scenes, strict=True)):
        left = PADDING + (k % columns) * (width + PADDING)
        top = PADDING + (k // columns) * cell_height
        sheet.paste(image, (left, top))
        title, objects = caption_lines(scene)
        draw.text((left, top + height + 4), title, fill="black", font=font)
        per_column = CAPTION_ROWS - 1
        for i, line in enumerate(objects):
            x = left + (i // per_column) * (width // 2)
            y = top + height + 4 + (1 + i % per_column) * LINE_HEIGHT
            draw.text((x, y), line, fill=(60, 60, 60), font=font)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/images/clevr-samples.png")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", default="480x320", help="WIDTHxHEIGHT of each image")
    args = parser.parse_args()
    width, height = (int(v) for v in args.resolution.lower().split("x"))
    spec = SplitSpec(split="val", num_images=args.count, width=width, height=height, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        report = generate_split(spec, folder)
        scenes = read_scenes(report.scenes_path)["scenes"]
        images = [Image.open(report.images_dir / scene["image_filename"]).convert("RGB") for scene in scenes]
    save_png(args.out, np.asarray(draw_sheet(images, scenes, args.columns)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
