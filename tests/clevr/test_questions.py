"""Question generation: answers are what the programs compute, constraints hold, every family instantiates, answers
are balanced, output is deterministic for any number of workers, and the files and commands work."""

import contextlib
import json
import random
from collections import Counter, defaultdict

import numpy as np
import pytest
from typer.testing import CliRunner

from filmkit.clevr.dataset import PRESETS, Preset, SplitPlan, build_dataset
from filmkit.clevr.programs import FUNCTIONS, ProgramError, execute
from filmkit.clevr.properties import load_properties
from filmkit.clevr.question_json import QuestionFileError, read_questions, write_questions
from filmkit.clevr.question_search import ScenePrep, search
from filmkit.clevr.question_text import render_question
from filmkit.clevr.questions import QuestionSettings, Vocabulary, generate_question_file, generate_questions
from filmkit.clevr.scene_json import SceneFileError, write_scenes
from filmkit.clevr.scenes import SamplingRules, sample_scene
from filmkit.clevr.templates import parse_template
from filmkit.cli import app

PROPS = load_properties()
NUM_SCENES = 200


@pytest.fixture(scope="module")
def scenes():
    """Scenes sampled by CLEVR's rules without the visibility render, as a reader would load them from JSON."""
    rules = SamplingRules(min_pixels=0)
    sampled = [
        sample_scene(np.random.default_rng(i), PROPS, rules, split="val", image_index=i) for i in range(NUM_SCENES)
    ]
    return json.loads(json.dumps(sampled))


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.load()


@pytest.fixture(scope="module")
def questions(scenes, vocabulary):
    return generate_questions(scenes, QuestionSettings(seed=0), vocabulary)


def test_every_written_answer_is_what_the_program_computes(scenes, questions):
    assert len(questions) > 0.95 * 10 * NUM_SCENES
    for q in questions:
        assert execute(q["program"], scenes[q["image_index"]]) == q["answer"], q["question"]


def test_programs_are_base_functions_in_the_released_form(questions):
    for q in questions:
        for node in q["program"]:
            assert set(node) == {"function", "inputs", "value_inputs"}
            assert node["function"] in FUNCTIONS


def test_questions_carry_the_clevr_v1_fields(scenes, questions):
    fields = {"question", "answer", "program", "question_family_index", "image_filename", "image_index"}
    for index, q in enumerate(questions):
        assert set(q) == fields | {"question_index", "split"}
        assert q["question_index"] == index
        assert q["image_filename"] == scenes[q["image_index"]]["image_filename"] and q["split"] == "val"


def test_ten_questions_per_image_with_no_repeated_text(questions):
    by_image = defaultdict(list)
    for q in questions:
        by_image[q["image_index"]].append(q["question"])
    assert all(len(texts) <= 10 and len(set(texts)) == len(texts) for texts in by_image.values())
    assert sum(len(texts) == 10 for texts in by_image.values()) >= 0.95 * NUM_SCENES


def test_templates_are_used_evenly(questions):
    uses = Counter(q["question_family_index"] for q in questions)
    assert set(uses) == set(range(90))
    assert max(uses.values()) - min(uses.values()) <= 3  # least-used first keeps them level


def test_each_family_instantiates_on_200_scenes_and_its_constraints_hold(scenes, vocabulary):
    preps = [ScenePrep(scene) for scene in scenes]
    for template in vocabulary.templates:
        found = []
        for scene, prep in zip(scenes, preps, strict=True):
            candidate = search(template, prep, vocabulary.values, random.Random(len(found)), lambda c: True)
            if candidate is not None:
                found.append((scene, candidate))
            if len(found) == 5:
                break
        assert found, f"family {template.family_index} ({template.name}) never instantiated"
        for scene, candidate in found:
            assert execute(candidate.program(), scene) == candidate.answer
            for constraint in template.constraints:
                if constraint["type"] == "NULL":
                    assert candidate.values[constraint["params"][0]] == "", (template.name, candidate.values)
                else:
                    first, second = (candidate.mapped[i] for i in constraint["params"])
                    assert candidate.outputs[first] != candidate.outputs[second], template.name


def mean_top_answer_share(questions):
    by_family = defaultdict(Counter)
    for q in questions:
        by_family[q["question_family_index"]][q["answer"]] += 1
    return np.mean([counts.most_common(1)[0][1] / sum(counts.values()) for counts in by_family.values()])


def test_balancing_flattens_answers(scenes, vocabulary, questions):
    unbalanced = generate_questions(scenes, QuestionSettings(seed=0, balance=False), vocabulary)
    balanced_share, unbalanced_share = mean_top_answer_share(questions), mean_top_answer_share(unbalanced)
    assert balanced_share < unbalanced_share - 0.05, (balanced_share, unbalanced_share)
    yes_no = [q["answer"] for q in questions if q["answer"] in ("yes", "no")]
    assert abs(yes_no.count("yes") / len(yes_no) - 0.5) < 0.03  # CLEVR's yes/no questions are balanced


def test_relate_questions_are_not_degenerate(scenes, questions):
    """Replacing a relate by the whole scene must change the answer (or leave no single object to ask about)."""
    checked = 0
    for q in questions:
        for index, node in enumerate(q["program"]):
            if node["function"] == "relate" and q["question_family_index"] in range(31, 36):
                changed = [dict(n) for n in q["program"]]
                changed[index] = {"function": "scene", "inputs": [], "value_inputs": []}
                with contextlib.suppress(ProgramError):  # no single object left to ask about: not degenerate
                    assert execute(changed, scenes[q["image_index"]]) != q["answer"], q["question"]
                checked += 1
    assert checked > 50


def test_the_same_questions_for_any_number_of_workers(scenes, vocabulary):
    settings = QuestionSettings(seed=5, reset_every=40)
    serial = generate_questions(scenes[:120], settings, vocabulary, workers=1)
    parallel = generate_questions(scenes[:120], settings, vocabulary, workers=2)
    assert serial == parallel
    other_seed = generate_questions(scenes[:120], QuestionSettings(seed=6, reset_every=40), vocabulary, workers=1)
    assert [q["question"] for q in other_seed] != [q["question"] for q in serial]


TEXT_TEMPLATE = parse_template(
    {
        "text": ["Is there a <Z> <S> [right here]?"],
        "nodes": [
            {"type": "scene", "inputs": []},
            {"type": "filter_size", "inputs": [0], "side_inputs": ["<Z>"]},
            {"type": "filter_shape", "inputs": [1], "side_inputs": ["<S>"]},
            {"type": "exist", "inputs": [2]},
        ],
        "params": [{"type": "Size", "name": "<Z>"}, {"type": "Shape", "name": "<S>"}],
    },
    "test.json",
    0,
    0,
)


def test_wording_draws_synonyms_keeps_optional_words_half_the_time_and_reads_open_shapes_as_thing(vocabulary):
    texts = [
        render_question(TEXT_TEMPLATE, {"<Z>": "", "<S>": ""}, vocabulary.synonyms, random.Random(i))
        for i in range(200)
    ]
    assert set(texts) == {
        "Is there a thing right here?",
        "Is there a thing?",
        "Is there an object right here?",
        "Is there an object?",
    }
    assert 70 < sum("right here" in text for text in texts) < 130
    spheres = {
        render_question(TEXT_TEMPLATE, {"<Z>": "large", "<S>": "sphere"}, vocabulary.synonyms, random.Random(i))
        for i in range(50)
    }
    assert {"Is there a big ball?", "Is there a large sphere right here?"} <= spheres


def test_other_is_dropped_when_the_two_objects_are_already_different(vocabulary):
    template = vocabulary.templates[48]  # "How many other <Z2> <C2> <M2> <S2>s are the same size as the <Z> ..."
    assert all(" other " in text for text in template.text)
    open_values = dict.fromkeys(template.params, "")
    same = render_question(template, {**open_values, "<C>": "red", "<C2>": "red"}, {}, random.Random(0))
    different = render_question(template, {**open_values, "<C>": "red", "<C2>": "blue"}, {}, random.Random(0))
    assert " other " in same and " other " not in different


def test_question_files_with_type_keys_and_bool_or_int_answers_read_in_the_released_form(tmp_path):
    raw = {
        "info": {"split": "val"},
        "questions": [
            {"question": "Q1", "image_index": 0, "answer": True, "program": [{"type": "scene", "inputs": []}]},
            {"question": "Q2", "image_index": 0, "answer": 3, "program": [{"type": "scene", "inputs": []}]},
            {"question": "Q3", "image_index": 1, "answer": "cyan"},
        ],
    }
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    document = read_questions(path)
    assert [q["answer"] for q in document["questions"]] == ["yes", "3", "cyan"]
    assert document["questions"][0]["program"] == [{"function": "scene", "inputs": [], "value_inputs": []}]
    write_questions(tmp_path / "out.json", document["questions"], document["info"])
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["questions"][1]["answer"] == "3" and "function" in written["questions"][1]["program"][0]


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"question": "Q", "image_index": 0, "program": [{"type": "count", "inputs": ["x"]}]}, r"program\[0\].inputs"),
        ({"question": "Q", "image_index": 0, "answer": [1]}, r"questions\[1\].answer: expected a string"),
        ({"image_index": 0}, r"questions\[1\].question: expected the question text"),
        ({"question": "Q", "image_index": "0"}, r"questions\[1\].image_index: expected an integer"),
    ],
)
def test_bad_question_files_name_the_file_and_field(tmp_path, question, message):
    path = tmp_path / "bad_questions.json"
    path.write_text(json.dumps({"questions": [{"question": "ok", "image_index": 0}, question]}))
    with pytest.raises(QuestionFileError, match=r"bad_questions\.json: (questions\[1\]\.)?" + message):
        read_questions(path)


def test_question_file_records_settings_and_can_leave_answers_out(tmp_path, scenes):
    scenes_path = tmp_path / "CLEVR_val_scenes.json"
    write_scenes(scenes_path, scenes[:30], info={"split": "val", "version": "1.0"})
    out = tmp_path / "CLEVR_val_questions.json"
    report = generate_question_file(scenes_path, out, QuestionSettings(seed=3, per_image=4), with_answers=False)
    document = read_questions(out)
    assert report.questions == len(document["questions"]) <= 120 and report.images == 30
    assert all("answer" not in q for q in document["questions"])
    record = document["info"]["filmkit"]
    assert document["info"]["split"] == "val" and record["seed"] == 3 and record["per_image"] == 4
    assert not record["with_answers"] and len(record["scenes_sha256"]) == 64


def test_a_bad_scene_file_names_the_file_and_field(tmp_path, scenes):
    bad = json.loads(json.dumps(scenes[:2]))
    bad[0]["objects"][1]["color"] = "pink"
    path = tmp_path / "bad_scenes.json"
    path.write_text(json.dumps({"info": {}, "scenes": bad}))
    with pytest.raises(
        SceneFileError, match=r"bad_scenes\.json: scenes\[0\]\.objects\[1\]\.color: unknown color 'pink'"
    ):
        generate_question_file(path, tmp_path / "q.json")


runner = CliRunner()


def test_generate_questions_and_stats_commands(tmp_path, scenes):
    root = tmp_path / "data"
    for split, part in (("train", scenes[:120]), ("val", scenes[120:])):
        renamed = [dict(scene, split=split) for scene in part]
        write_scenes(root / "scenes" / f"CLEVR_{split}_scenes.json", renamed, info={"split": split})
        out = root / "questions" / f"CLEVR_{split}_questions.json"
        args = ["generate", "questions", "--scenes", str(root / "scenes" / f"CLEVR_{split}_scenes.json")]
        result = runner.invoke(app, [*args, "--out", str(out), "--seed", "1", "--workers", "1"])
        assert result.exit_code == 0, result.output
        assert "questions about" in result.output and out.exists()
    result = runner.invoke(app, ["stats", str(root), "--json", str(tmp_path / "stats.json")])
    assert result.exit_code == 0, result.output
    assert "question-only guess" in result.output
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert list(stats["splits"]) == ["train", "val"] and stats["splits"]["train"]["families_covered"] == 90
    assert 3 <= stats["splits"]["val"]["objects_per_scene"]["mean"] <= 10
    assert 0.25 < stats["question_only"]["val"]["accuracy"] < 0.6  # far from 100%: the image matters
    # --data, as every other command takes its dataset, says the same; both at once, or neither, is refused
    by_option = runner.invoke(app, ["stats", "--data", str(root), "--json", str(tmp_path / "again.json")])
    assert by_option.exit_code == 0, by_option.output
    assert json.loads((tmp_path / "again.json").read_text()) == stats
    for words in (["stats"], ["stats", str(root), "--data", str(root)]):
        refused = runner.invoke(app, words)
        assert refused.exit_code == 2 and "give the dataset folder once" in refused.output


def test_commands_report_bad_input_in_one_line(tmp_path):
    result = runner.invoke(app, ["generate", "questions", "--scenes", str(tmp_path / "none.json"), "--out", "q.json"])
    assert result.exit_code == 2 and "error:" in result.output and "none.json: cannot read" in result.output
    result = runner.invoke(app, ["generate", "dataset", "--preset", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown preset 'huge' (known: tiny, demo, clevr-mini, clevr-cpu, clevr-full, cogent, cogent-mini)" in (
        result.output
    )


def test_presets_have_the_documented_sizes():
    mini = PRESETS["clevr-mini"]
    assert (mini.width, mini.height) == (128, 128)
    assert [(s.name, s.num_images) for s in mini.splits] == [("train", 10_000), ("val", 1_000), ("test", 1_000)]
    assert [(s.name, s.num_images) for s in PRESETS["clevr-full"].splits][0] == ("train", 70_000)
    # clevr-cpu: CLEVR's rules and training size at the speedrun's resolution, 10,000+ held-out questions per split.
    cpu = PRESETS["clevr-cpu"]
    assert (cpu.width, cpu.height, cpu.min_objects, cpu.max_objects) == (64, 64, 3, 10)
    sizes = {s.name: s.num_images * cpu.per_image for s in cpu.splits}
    assert sizes["train"] >= 700_000 and sizes["val"] >= 10_000 and sizes["test"] >= 10_000
    cogent = [(s.name, s.condition) for s in PRESETS["cogent"].splits]
    assert cogent == [("trainA", "A"), ("valA", "A"), ("valB", "B"), ("testA", "A"), ("testB", "B")]
    cogent_mini = PRESETS["cogent-mini"]
    assert [(s.name, s.condition) for s in cogent_mini.splits] == cogent
    assert [s.num_images for s in cogent_mini.splits] == [10_000, 1_000, 1_000, 1_000, 1_000]


def test_build_dataset_writes_every_split_and_resumes(tmp_path):
    preset = Preset("small", "a test recipe", 24, 24, (SplitPlan("trainA", 6, "A"), SplitPlan("valB", 3, "B")), 5)
    first = build_dataset(preset, tmp_path, seed=2, workers=1)
    assert first.splits["trainA"].images_written == 6 and not first.splits["trainA"].questions_reused
    assert (tmp_path / "images" / "valB" / "CLEVR_valB_000002.png").exists()
    valb = read_questions(tmp_path / "questions" / "CLEVR_valB_questions.json")["questions"]
    assert 0 < len(valb) <= 15 and {q["split"] for q in valb} == {"valB"}
    again = build_dataset(preset, tmp_path, seed=2, workers=1)
    assert again.splits["trainA"].images_reused == 6 and again.splits["trainA"].questions_reused
    record = json.loads((tmp_path / "dataset.json").read_text())
    assert record["preset"] == "small" and record["seed"] == 2 and record["versions"]["filmkit"]
    assert record["splits"]["valB"]["questions"] == len(valb)


def test_a_preset_can_narrow_the_object_range(tmp_path):
    preset = Preset("few", "few objects", 24, 24, (SplitPlan("train", 6),), 3, min_objects=3, max_objects=4)
    build_dataset(preset, tmp_path, workers=1)
    scenes = json.loads((tmp_path / "scenes" / "CLEVR_train_scenes.json").read_text())["scenes"]
    assert {len(scene["objects"]) for scene in scenes} <= {3, 4}
    record = json.loads((tmp_path / "dataset.json").read_text())
    assert (record["preset_settings"]["min_objects"], record["preset_settings"]["max_objects"]) == (3, 4)
