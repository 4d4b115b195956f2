"""The humans-like split: rewording keeps meaning and answers, uses held-out words, and caches like Humans."""

import json
import random
import re
import sys
from pathlib import Path

from typer.testing import CliRunner

import filmkit.clevr
from filmkit.clevr.reword import OPENINGS, SYNONYMS, reword
from filmkit.cli import app
from filmkit.data.preprocess import preprocess
from filmkit.data.vocab import Vocab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fixtures import clevr_dataset  # noqa: E402

QUESTION = "Are there any gray metal cubes left of the small rubber sphere?"


def test_rate_zero_keeps_the_question_and_rate_one_rewords_every_known_phrase():
    assert reword(QUESTION, random.Random(0), rate=0.0) == QUESTION
    reworded = reword(QUESTION, random.Random(0), rate=1.0)
    assert reworded == "Can you spot any grey steel boxes left of the little plastic globe?"


def test_the_synonyms_are_held_out_of_clevrs_templates():
    data = Path(filmkit.clevr.__file__).parent / "data"
    template_words = {word for path in data.rglob("*.json") for word in re.findall(r"[A-Za-z]+", path.read_text())}
    assert not set(SYNONYMS.values()) & template_words
    assert not set(SYNONYMS.values()) & set(SYNONYMS)  # a replacement is never itself replaced
    assert {"cube", "sphere", "cylinder", "gray", "metal", "rubber", "thing"} <= template_words  # what they replace
    assert all(new != old for old, new in OPENINGS)


def test_command_writes_labelled_questions_that_preprocess_with_the_original_images(tmp_path):
    data = clevr_dataset(tmp_path / "clevr")
    out = tmp_path / "humans-like"
    arguments = ["generate", "humans-like", "--data", str(data), "--out", str(out), "--rate", "1.0"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    original = json.loads((data / "questions" / "CLEVR_train_questions.json").read_text())["questions"]
    document = json.loads((out / "questions" / "CLEVR_train_questions.json").read_text())
    assert "synthetic" in document["info"]["synthetic"]
    reworded = document["questions"]
    assert [q["answer"] for q in reworded] == [q["answer"] for q in original]
    assert [q["image_filename"] for q in reworded] == [q["image_filename"] for q in original]
    assert any(q["question"] != p["question"] for q, p in zip(reworded, original, strict=True))

    preprocess(out, tmp_path / "cache", resolution=(16, 16), splits=["train", "val"], images_root=data)
    assert "item" in Vocab.load(tmp_path / "cache" / "vocab.json").question_token_to_idx  # "thing" -> "item"

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 2 and "--overwrite" in again.output
