"""Fine-tuning: new words join the vocabulary, only the question side learns, accuracy before and after."""

import json
import shutil

import pytest
import torch
from eval_data import trained_world
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.data.dataset import CachedSplit
from filmkit.data.vocab import UNK, Vocab
from filmkit.train.evaluate import evaluate
from filmkit.train.finetune import grow_vocabulary
from filmkit.vqa import load_checkpoint


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = trained_world(tmp_path_factory.mktemp("finetune"))
    root = world["root"]
    # Questions only, in other words ("colour" and "Which" are new), about the first dataset's images: the shape
    # of the real CLEVR-Humans, whose images are CLEVR's.
    shutil.copytree(root / "dataset" / "questions", root / "reworded" / "questions")
    for path in (root / "reworded" / "questions").glob("*.json"):
        document = json.loads(path.read_text())
        for record in document["questions"]:
            record["question"] = record["question"].replace("What color", "Which colour")
        path.write_text(json.dumps(document))
    return world


def test_new_words_start_as_unk_so_the_grown_model_answers_as_before(world):
    model = load_checkpoint(world["checkpoint"]).model
    vocab = world["vocab"]
    old_ids = torch.tensor([vocab.encode_question("Which colour is the cube?")[0]])
    with torch.no_grad():
        before = model.film_params(old_ids)
    bigger, added = grow_vocabulary(model, vocab, ["Which colour is it?", "Which colour now?"], min_count=2)
    assert sorted(added) == ["Which", "colour"]
    new_ids = torch.tensor([bigger.encode_question("Which colour is the cube?")[0]])
    assert not torch.equal(old_ids, new_ids)
    with torch.no_grad():
        torch.testing.assert_close(model.film_params(new_ids), before)
    assert model.encoder.embedding.num_embeddings == len(bigger.question_tokens) == model.config.vocab_size


class NewWordsAsUnknown(torch.nn.Module):
    """``model`` with every question token from ``known`` on (the words a grown vocabulary appended) read as <UNK>."""

    def __init__(self, model, known: int):
        super().__init__()
        self.model, self.known = model, known

    def forward(self, images, questions):
        return self.model(images, questions.masked_fill(questions >= self.known, UNK))


def test_finetune_trains_the_question_side_only_and_reports_before_and_after(world):
    out = world["root"] / "humans"
    arguments = ["finetune", "--checkpoint", str(world["checkpoint"]), "--data", str(world["root"] / "reworded")]
    arguments += ["--images-root", str(world["root"] / "dataset"), "--out", str(out), "--steps", "4", "--workers", "1"]
    arguments += ["--set", "batch_size=4", "--set", "val_subset=4", "--set", "lr=0.01"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "finetune.json").read_text())
    assert sorted(summary["added_words"]) == ["Which", "colour"]
    assert summary["steps"] == 4
    # Before: the original model, reading the new words as <UNK> as it always did, on the new validation questions.
    val, vocab = CachedSplit(out / "cache", "val"), world["vocab"]
    original = NewWordsAsUnknown(load_checkpoint(world["checkpoint"]).model, len(vocab.question_tokens))
    assert summary["val_accuracy_before"] == evaluate(original, val).accuracy
    assert summary["val_accuracy_after"] == evaluate(load_checkpoint(out / "run" / "best.pt").model, val).accuracy
    assert Vocab.load(out / "cache" / "vocab.json").question_token_to_idx["colour"] >= len(
        world["vocab"].question_tokens
    )

    start = load_checkpoint(out / "init.pt").model.state_dict()
    tuned = load_checkpoint(out / "run" / "last.pt").model.state_dict()
    network = [name for name in start if name.startswith("network.")]
    assert network and all(torch.equal(start[name], tuned[name]) for name in network)  # weights and BN statistics
    assert not torch.equal(start["encoder.embedding.weight"], tuned["encoder.embedding.weight"])

    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 2 and "--overwrite" in again.output
