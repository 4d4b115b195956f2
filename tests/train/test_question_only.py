"""The question-only guess has one definition: `filmkit stats` (question files) and the speedrun (caches) agree."""

from __future__ import annotations

import json

from train_fixtures import clevr_dataset

from filmkit.analysis.baselines import question_only_correct
from filmkit.clevr.stats import dataset_stats, question_only_guesses
from filmkit.data.dataset import CachedSplit
from filmkit.data.preprocess import preprocess


def test_ties_go_to_the_smallest_answer_and_unseen_families_to_the_overall_majority():
    train_families, train_answers = [3, 3, 7, 7, 7, 8], ["yes", "no", "0", "0", "2", "0"]
    assert question_only_guesses(train_families, train_answers, [3, 7, 8, 42]) == ["no", "0", "0", "0"]
    assert question_only_guesses([3, 3], [5, 4], [3]) == [4]  # answer ids: the smaller id


def test_stats_on_question_files_and_the_guess_on_a_cache_score_every_question_alike(tmp_path):
    root = clevr_dataset(tmp_path / "clevr")
    val_path = root / "questions" / "CLEVR_val_questions.json"
    document = json.loads(val_path.read_text())
    # a family the training split never asks: guessed with the overall majority ("0", six times in training),
    # not with its question type's majority (exist: a yes/no tie), so this "no" question is scored wrong
    unseen = next(q for q in document["questions"] if q["question_family_index"] == 3 and q["answer"] == "no")
    unseen["question_family_index"] = 42
    val_path.write_text(json.dumps(document))

    stats = dataset_stats(root)["question_only"]["val"]["accuracy"]
    cache = tmp_path / "cache"
    preprocess(root, cache, resolution=(16, 16))
    train, val = CachedSplit(cache, "train"), CachedSplit(cache, "val")
    correct = question_only_correct(train, val)
    assert stats == correct.mean()
    assert not correct[val.arrays.families == 42].any()
    # family 3 in training: "yes" 3 times, "no" 3 times: the tie goes to "no" in both
    no = val.vocab.answer_token_to_idx["no"]
    family_3 = val.arrays.families == 3
    assert (correct[family_3] == (val.arrays.answers[family_3] == no)).all()
