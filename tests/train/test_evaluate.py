import json
from collections import Counter

import numpy as np
import pytest
import torch
from eval_data import (
    PixelOracle,
    make_cache,
    make_dataset,
    oracle_answer,
    save_tiny_checkpoint,
    tiny_model,
    trained_tiny_model,
)
from typer.testing import CliRunner

from filmkit.cli import app
from filmkit.data.dataset import CachedSplit
from filmkit.data.question_types import CATEGORIES, FINAL_FUNCTIONS
from filmkit.data.vocab import expand_vocab
from filmkit.train.evaluate import EvalResult, evaluate, mask_special_answers, write_predictions

runner = CliRunner()
CATEGORY_OF = {
    "count": "count",
    "exist": "exist",
    "query_color": "query_attribute",
    "equal_size": "compare_attribute",
    "less_than": "compare_integer",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    records = make_dataset(root / "dataset")
    vocab = make_cache(root / "dataset", root / "cache")
    model = trained_tiny_model(vocab, root / "cache")
    return {"records": records, "vocab": vocab, "cache": root / "cache", "dataset": root / "dataset", "model": model}


def test_counts_match_a_hand_computation_from_the_models_logits(world):
    split = CachedSplit(world["cache"], "val")
    model = world["model"]
    result = evaluate(model, split, batch_size=4)  # several batches, the last one partial

    batch = split[list(range(len(split)))]
    with torch.no_grad():
        logits = model(batch["images"], batch["questions"])
    logits[:, :4] = float("-inf")  # special answer tokens are never predicted
    predicted = logits.argmax(dim=1).numpy()
    right = predicted == batch["answers"].numpy()
    assert len(set(predicted)) > 2 and 0 < right.sum() < len(split)  # a model whose answers vary

    assert np.array_equal(result.predictions, predicted)
    assert np.array_equal(result.indices, np.arange(len(split)))
    assert result.overall.tolist() == [right.sum(), len(split)]
    assert result.accuracy == pytest.approx(right.mean())
    for code, name in enumerate(CATEGORIES):
        members = batch["categories"].numpy() == code
        assert result.categories[code].tolist() == [right[members].sum(), members.sum()], name
    assert result.categories[:, 1].min() > 0  # the fixture covers all five Table 1 categories


def test_tallies_by_category_function_and_family_follow_the_question_files(world):
    vocab, records = world["vocab"], world["records"]["val"]
    split = CachedSplit(world["cache"], "val")
    result = evaluate(PixelOracle(len(vocab.answer_tokens)), split, batch_size=5)

    expected = {"function": Counter(), "family": Counter(), "category": Counter()}
    totals = {"function": Counter(), "family": Counter(), "category": Counter()}
    for record in records:
        function = record["program"][-1]["function"]
        keys = {"function": function, "family": record["question_family_index"], "category": CATEGORY_OF[function]}
        for kind, key in keys.items():
            totals[kind][key] += 1
            expected[kind][key] += oracle_answer(record, vocab) == record["answer"]
    assert 0 < sum(expected["function"].values()) < len(records)  # some right, some wrong
    for code, name in enumerate(FINAL_FUNCTIONS):
        assert result.functions[code].tolist() == [expected["function"][name], totals["function"][name]], name
    for code, name in enumerate(CATEGORIES):
        assert result.categories[code].tolist() == [expected["category"][name], totals["category"][name]], name
    assert result.families.tolist() == [[expected["family"][f], totals["family"][f]] for f in range(5)]
    summary = result.to_json()
    assert summary["functions"]["query_color"]["total"] == totals["function"]["query_color"]
    assert "equal_color" not in summary["functions"]  # no such question: left out, not reported as 0 of 0
    assert summary["families"]["3"]["correct"] == expected["family"][3]


def test_predictions_file_lists_answers_in_the_question_files_order(world, tmp_path):
    vocab, records = world["vocab"], world["records"]["val"]
    split = CachedSplit(world["cache"], "val")
    result = evaluate(PixelOracle(len(vocab.answer_tokens)), split)
    path = write_predictions(tmp_path / "predictions.txt", result, split)

    by_index = sorted(records, key=lambda record: record["question_index"])
    assert [record["question_index"] for record in records] != sorted(r["question_index"] for r in records)
    assert path.read_text().splitlines() == [oracle_answer(record, vocab) for record in by_index]


def test_shards_merge_and_counts_sum_like_an_all_reduce(world):
    split = CachedSplit(world["cache"], "val")
    model = world["model"]
    full = evaluate(model, split)
    shards = [evaluate(model, split, indices=range(rank, len(split), 3)) for rank in range(3)]

    merged = EvalResult.merge(shards)
    assert np.array_equal(merged.counts_vector(), full.counts_vector())
    assert np.array_equal(merged.predictions, full.predictions)
    assert np.array_equal(merged.indices, full.indices)
    summed = torch.stack([torch.from_numpy(shard.counts_vector()) for shard in shards]).sum(dim=0)
    rebuilt = shards[1].with_counts(summed)
    assert rebuilt.to_json() == full.to_json() and rebuilt.questions == len(split)
    assert np.array_equal(rebuilt.predictions, shards[1].predictions)


def test_evaluation_restores_training_mode_and_supports_bf16(world):
    split = CachedSplit(world["cache"], "val")
    model = tiny_model(world["vocab"]).train()
    result = evaluate(model, split, precision="bf16", indices=[0, 2])
    assert model.training
    assert result.questions == 2 and result.overall[1] == 2
    with pytest.raises(ValueError, match="precision"):
        evaluate(model, split, precision="int8")


def test_a_split_without_answers_gets_predictions_and_no_accuracy(world, tmp_path):
    split = CachedSplit(world["cache"], "test")
    result = evaluate(world["model"], split)
    assert result.questions == len(world["records"]["test"]) == len(split)
    assert not result.has_answers and result.accuracy is None
    assert result.category_accuracy["count"] is None
    summary = result.to_json()
    assert summary["overall"] == {"accuracy": None, "correct": 0, "total": 0}
    assert summary["has_answers"] is False and summary["questions"] == len(split)
    assert "no accuracy" in result.to_markdown()
    lines = write_predictions(tmp_path / "test.txt", result, split).read_text().splitlines()
    assert len(lines) == len(split) and set(lines) <= set(world["vocab"].answer_tokens[4:])


def test_markdown_table_has_the_paper_columns_and_matching_numbers(world):
    vocab = world["vocab"]
    result = evaluate(PixelOracle(len(vocab.answer_tokens)), CachedSplit(world["cache"], "val"))
    lines = result.to_markdown("val").splitlines()
    header = next(line for line in lines if "Overall" in line)
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == [
        "Overall",
        "Count",
        "Exist",
        "Compare Integer",
        "Query Attribute",
        "Compare Attribute",
    ]
    accuracy_row = next(line for line in lines if line.startswith("| accuracy (%) |"))
    assert accuracy_row.split("|")[2].strip() == f"{100 * result.accuracy:.1f}"
    assert any(line.startswith("| less_than |") for line in lines)
    assert any(line.startswith("| family |") for line in lines)


def test_special_answers_are_masked():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 0.5, 1.0]])
    masked = mask_special_answers(logits)
    assert masked.argmax().item() == 5 and logits[0, 0] == 5.0  # the input is left alone


# -- the command line --------------------------------------------------------------------------------------------


def run(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_eval_command_writes_tables_json_markdown_and_predictions(world, tmp_path):
    vocab, model = world["vocab"], world["model"]
    checkpoint = save_tiny_checkpoint(tmp_path / "run" / "best.pt", model, vocab)
    result = run(
        "eval",
        "--checkpoint",
        checkpoint,
        "--data",
        world["cache"],
        "--split",
        "val",
        "--predictions",
        tmp_path / "val.txt",
        "--batch-size",
        3,
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    expected = evaluate(model, CachedSplit(world["cache"], "val"))
    assert "Overall" in result.output and "less_than" in result.output
    assert f" {100 * expected.accuracy:.1f} " in result.output
    report = json.loads((tmp_path / "run" / "eval-val.json").read_text())
    assert report["overall"]["correct"] == int(expected.overall[0])
    assert report["split"] == "val" and report["step"] == 7
    assert report["categories"]["count"]["title"] == "Count"
    assert "| accuracy (%) |" in (tmp_path / "run" / "eval-val.md").read_text()
    write_predictions(tmp_path / "direct.txt", expected, CachedSplit(world["cache"], "val"))
    assert (tmp_path / "val.txt").read_text() == (tmp_path / "direct.txt").read_text()


def test_eval_command_caches_a_dataset_folder_and_evaluates_a_test_split(world, tmp_path):
    vocab = world["vocab"]
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", world["model"], vocab)
    result = run(
        "eval",
        "--checkpoint",
        checkpoint,
        "--data",
        world["dataset"],
        "--split",
        "test",
        "--cache",
        tmp_path / "cache",
        "--workers",
        1,
        "--predictions",
        tmp_path / "test.txt",
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 0, result.output
    assert "no accuracy" in result.output
    assert (tmp_path / "cache" / "test_questions.h5").exists()
    assert len((tmp_path / "test.txt").read_text().splitlines()) == len(world["records"]["test"])
    report = json.loads((tmp_path / "out" / "eval-test.json").read_text())
    assert report["has_answers"] is False and report["overall"]["accuracy"] is None


def test_eval_command_refuses_a_cache_with_another_vocabulary(world, tmp_path):
    other, added = expand_vocab(world["vocab"], ["Is there a purple cylinder?"])
    assert added
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pt", tiny_model(other), other)
    result = run("eval", "--checkpoint", checkpoint, "--data", world["cache"], "--split", "val")
    assert result.exit_code == 2
    assert "vocabulary is not the checkpoint's (2 question tokens differ)" in result.output
    assert "Traceback" not in result.output
    # The way out the message names: cache the dataset anew with the checkpoint's vocabulary.
    result = run(
        "eval", "--checkpoint", checkpoint, "--data", world["dataset"], "--cache", tmp_path / "mine", "--workers", 1
    )
    assert result.exit_code == 0, result.output
    assert "purple" in (tmp_path / "mine" / "vocab.json").read_text()


def test_eval_command_reports_a_corrupt_checkpoint_in_one_line(world, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    result = run("eval", "--checkpoint", broken, "--data", world["cache"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "broken.pt: not a filmkit checkpoint" in result.output
    assert "weights_only" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run("eval", "--checkpoint", tmp_path / "absent.pt", "--data", world["cache"])
    assert result.exit_code == 2 and "no such checkpoint file" in result.output
