"""Generate CLEVR questions for scenes, by the released generator's rules, deterministically and in parallel.

For each image, templates are tried least-used first (ties in random order) until ``per_image`` questions exist.
Each template is filled by depth-first search (`question_search`); a complete candidate is kept only if

- its answer passes the balancing rule: per template, an answer is refused when its count so far exceeds 1.1 x the
  count of the second most common answer, or 5 x max(median count, 5);
- for templates with a raw ``relate``, the relation matters (replacing it by the whole scene changes the answer);
- its text differs from every question already asked about the image.

Answer and template counts reset every ``reset_every`` (250) images, as in CLEVR. That makes each run of 250
images, counted from the start of the scene list, independent of all others: such a block is the unit of work
for the worker processes, and each image draws its randomness from (seed, split, position). The output is
therefore the same for any number of workers.

Example::

    from filmkit.clevr.questions import QuestionSettings, generate_questions

    questions = generate_questions(scenes, QuestionSettings(seed=7), workers=2)
    questions[0]["question"], questions[0]["answer"]
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filmkit import __version__
from filmkit.clevr.parallel import run_parallel
from filmkit.clevr.question_json import write_questions
from filmkit.clevr.question_search import ScenePrep, is_degenerate, search
from filmkit.clevr.question_text import render_question
from filmkit.clevr.scene_json import read_scenes
from filmkit.clevr.templates import Template, answer_values, load_synonyms, load_templates, slot_values
from filmkit.jsonfiles import gc_paused

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class QuestionSettings:
    """What decides the questions of a scene list, besides the scenes, templates and synonyms.

    ``balance=False`` turns answer balancing off (for comparison only; CLEVR always balances).

    >>> QuestionSettings().per_image
    10
    """

    per_image: int = 10
    seed: int = 0
    reset_every: int = 250
    balance: bool = True

    def __post_init__(self) -> None:
        if self.per_image < 1 or self.reset_every < 1 or self.seed < 0:
            raise ValueError("per_image and reset_every must be positive, and seed >= 0")


class AnswerBalance:
    """Per-template answer counts and template use counts, with CLEVR's rule for refusing an answer.

    >>> balance = AnswerBalance(load_templates()[85:86], slot_values())
    >>> balance.record(85, "yes")
    >>> balance.allows(85, "yes"), balance.allows(85, "no")   # 1 > 1.1 x 0: "yes" must wait for a "no"
    (False, True)
    """

    def __init__(self, templates: Sequence[Template], values: Mapping[str, Sequence[str]]) -> None:
        self.answers = {t.family_index: dict.fromkeys(answer_values(t, values), 0) for t in templates}
        self.uses = dict.fromkeys(self.answers, 0)

    def allows(self, family: int, answer: str) -> bool:
        counts = self.answers[family]
        ranked = sorted(counts.values())
        current = counts.get(answer, 0)
        return current <= 1.1 * ranked[-2] and current <= 5 * max(ranked[len(ranked) // 2], 5)

    def record(self, family: int, answer: str) -> None:
        self.answers[family][answer] = self.answers[family].get(answer, 0) + 1
        self.uses[family] += 1


@dataclass(frozen=True)
class Vocabulary:
    """The templates and words a generation run uses; picklable, so worker processes get it once."""

    templates: tuple[Template, ...]
    synonyms: Mapping[str, Sequence[str]]
    values: Mapping[str, Sequence[str]]

    @classmethod
    def load(cls, templates_dir: str | Path | None = None, synonyms_path: str | Path | None = None, properties=None):
        """Templates (default: filmkit's 90), synonyms and slot values (from the CLEVR properties).

        >>> vocabulary = Vocabulary.load()
        >>> len(vocabulary.templates), vocabulary.synonyms["cube"], vocabulary.values["Material"]
        (90, ['cube', 'block'], ['rubber', 'metal'])
        """
        return cls(tuple(load_templates(templates_dir)), load_synonyms(synonyms_path), slot_values(properties))

    def fingerprint(self) -> str:
        """A SHA-256 of templates and synonyms: equal fingerprints, equal questions for equal scenes and seed.

        >>> Vocabulary.load().fingerprint() == Vocabulary.load().fingerprint()
        True
        """
        content = [[t.text, t.nodes, t.params, t.constraints] for t in self.templates]
        blob = json.dumps([content, self.synonyms, self.values], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def image_rng(seed: int, split: str, position: int) -> random.Random:
    """The random stream of one image's questions, independent of every other image and of the workers.

    >>> image_rng(0, "val", 3).random() == image_rng(0, "val", 3).random()
    True
    """
    return random.Random(f"filmkit-questions/{seed}/{split}/{position}")


def questions_for_scene(
    scene: Mapping[str, Any],
    vocabulary: Vocabulary,
    balance: AnswerBalance,
    rng: random.Random,
    settings: QuestionSettings = QuestionSettings(),
) -> list[dict[str, Any]]:
    """Up to ``settings.per_image`` questions about one scene (without ``question_index``); updates ``balance``.

    >>> scene = {"objects": [{"size": "large", "color": "red", "material": "metal", "shape": "cube"},
    ...                      {"size": "small", "color": "blue", "material": "rubber", "shape": "sphere"}],
    ...          "relationships": {"left": [[1], []], "right": [[], [0]], "front": [[], []], "behind": [[], []]},
    ...          "image_index": 0, "image_filename": "CLEVR_new_000000.png", "split": "new"}
    >>> vocabulary = Vocabulary.load()
    >>> made = questions_for_scene(scene, vocabulary, AnswerBalance(vocabulary.templates, vocabulary.values),
    ...                            random.Random(0))
    >>> len(made), sorted(made[0])
    (10, ['answer', 'image_filename', 'image_index', 'program', 'question', 'question_family_index', 'split'])
    """
    prep = ScenePrep(scene)
    ties = {t.family_index: rng.random() for t in vocabulary.templates}
    order = sorted(vocabulary.templates, key=lambda t: (balance.uses[t.family_index], ties[t.family_index]))
    made: list[dict[str, Any]] = []
    texts: set[str] = set()
    for template in order:
        text = ""

        def accept(candidate, template=template) -> bool:
            nonlocal text
            if settings.balance and not balance.allows(template.family_index, candidate.answer):
                return False
            if template.has_relate and is_degenerate(candidate, prep):
                return False
            text = render_question(template, candidate.values, vocabulary.synonyms, rng)
            return text not in texts

        found = search(template, prep, vocabulary.values, rng, accept)
        if found is None:
            continue
        balance.record(template.family_index, found.answer)
        texts.add(text)
        made.append(
            {
                "question": text,
                "answer": found.answer,
                "program": found.program(),
                "question_family_index": template.family_index,
                "image_filename": scene["image_filename"],
                "image_index": scene["image_index"],
                "split": scene["split"],
            }
        )
        if len(made) == settings.per_image:
            break
    return made


@dataclass(frozen=True)
class _BlockJob:
    """Questions for one block of scenes that share balancing counts; runs in a worker process."""

    vocabulary: Vocabulary
    settings: QuestionSettings

    def __call__(self, task: tuple[int, Sequence[Mapping[str, Any]]]) -> tuple[int, list[list[dict[str, Any]]]]:
        start, scenes = task
        balance = AnswerBalance(self.vocabulary.templates, self.vocabulary.values)
        per_scene = []
        for offset, scene in enumerate(scenes):
            rng = image_rng(self.settings.seed, scene["split"], start + offset)
            per_scene.append(questions_for_scene(scene, self.vocabulary, balance, rng, self.settings))
        return start, per_scene


@gc_paused()  # the questions of 70,000 scenes, none in a cycle
def generate_questions(
    scenes: Sequence[Mapping[str, Any]],
    settings: QuestionSettings = QuestionSettings(),
    vocabulary: Vocabulary | None = None,
    *,
    workers: int | None = 1,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Questions for every scene, in scene order, numbered by ``question_index``; the same for any ``workers``.

    ``workers=None`` uses every core. ``progress(done_images, total_images)`` is called as blocks finish.

    >>> generate_questions([])
    []
    """
    vocabulary = vocabulary or Vocabulary.load()
    size = settings.reset_every
    tasks = [(start, list(scenes[start : start + size])) for start in range(0, len(scenes), size)]
    results: dict[int, list[list[dict[str, Any]]]] = {}
    done = 0

    def collect(result: tuple[int, list[list[dict[str, Any]]]]) -> None:
        nonlocal done
        results[result[0]] = result[1]
        done += len(result[1])
        if progress is not None:
            progress(done, len(scenes))

    run_parallel(_BlockJob(vocabulary, settings), tasks, workers, on_result=collect)
    questions = [q for start in sorted(results) for per_scene in results[start] for q in per_scene]
    for index, question in enumerate(questions):
        question["question_index"] = index
    return questions


@dataclass
class QuestionReport:
    """What `generate_question_file` did: counts, families used and time."""

    questions: int
    images: int
    families: int
    seconds: float
    path: Path


def generate_question_file(
    scenes_path: str | Path,
    out_path: str | Path,
    settings: QuestionSettings = QuestionSettings(),
    *,
    templates_dir: str | Path | None = None,
    workers: int | None = 1,
    with_answers: bool = True,
    progress: Progress | None = None,
) -> QuestionReport:
    """Read a CLEVR scene file, generate questions and write a CLEVR v1.0 question file (atomically).

    ``with_answers=False`` leaves the answers out, as in a released test split. The file's ``info`` records the
    settings, the scene file's SHA-256 and a fingerprint of templates and synonyms under ``filmkit``.

    Example::

        generate_question_file("out/scenes/CLEVR_val_scenes.json", "out/questions/CLEVR_val_questions.json",
                               QuestionSettings(seed=1), workers=2)
        # QuestionReport(questions=9987, images=1000, families=90, ...)
    """
    started = time.perf_counter()
    document = read_scenes(scenes_path)
    vocabulary = Vocabulary.load(templates_dir)
    questions = generate_questions(document["scenes"], settings, vocabulary, workers=workers, progress=progress)
    if not with_answers:
        for question in questions:
            del question["answer"]
    info = {key: document["info"][key] for key in ("split", "version", "license") if key in document["info"]}
    info["filmkit"] = question_record(settings, vocabulary, file_sha256(scenes_path), with_answers)
    write_questions(out_path, questions, info)
    families = len({q["question_family_index"] for q in questions})
    return QuestionReport(
        len(questions), len(document["scenes"]), families, time.perf_counter() - started, Path(out_path)
    )


def question_record(
    settings: QuestionSettings, vocabulary: Vocabulary, scenes_sha256: str, with_answers: bool = True
) -> dict[str, Any]:
    """What decides a question file, as stored in its ``info["filmkit"]``: equal records, equal files.

    >>> sorted(question_record(QuestionSettings(), Vocabulary.load(), "0" * 64))[:4]
    ['balance', 'filmkit_version', 'per_image', 'reset_every']
    """
    return {
        **asdict(settings),
        "with_answers": with_answers,
        "scenes_sha256": scenes_sha256,
        "templates_sha256": vocabulary.fingerprint(),
        "filmkit_version": __version__,
    }


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as handle:
    ...     _ = handle.write(b"abc")
    >>> file_sha256(handle.name)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
