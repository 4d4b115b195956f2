"""A two-image generated dataset with its questions, and the shipped model: what the serve tests look at."""

from __future__ import annotations

from pathlib import Path

from filmkit.clevr.generate import SplitSpec, generate_split
from filmkit.clevr.questions import QuestionSettings, generate_question_file
from filmkit.clevr.scenes import SamplingRules


def make_serve_dataset(root: Path) -> Path:
    """``root`` with val/ images (64x64, the shipped model's size) and five questions for each."""
    spec = SplitSpec(split="val", num_images=2, width=64, height=64, rules=SamplingRules(min_objects=3, max_objects=4))
    report = generate_split(spec, root, workers=1)
    generate_question_file(
        report.scenes_path, root / "questions" / "CLEVR_val_questions.json", QuestionSettings(per_image=5)
    )
    return root
