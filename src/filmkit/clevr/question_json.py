"""Read and write CLEVR v1.0 question files (``questions/CLEVR_<split>_questions.json``).

A question file is ``{"info": {...}, "questions": [question, ...]}``. Readers meet three dialects: the released
files (programs with ``function`` and ``value_inputs``, string answers), clevr-dataset-gen's raw output (``type``
and ``side_inputs``, answers as bools and ints) and CLEVR-Humans (no program, no family). `read_questions` accepts
all three and returns the released form; `write_questions` always writes it, atomically. Errors name the file and
the field, e.g. ``CLEVR_val_questions.json: questions[12].program[3].inputs: expected a list of node indices``.

Example::

    from filmkit.clevr.question_json import read_questions

    questions = read_questions("CLEVR_v1.0/questions/CLEVR_val_questions.json")["questions"]
    questions[0]["answer"], questions[0]["program"][0]   # ('yes', {'function': 'scene', ...})
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filmkit.atomic import atomic_output
from filmkit.jsonfiles import gc_paused, read_json


class QuestionFileError(ValueError):
    """A question file that cannot be read, or one that does not follow the CLEVR v1.0 layout."""


def read_questions(path: str | os.PathLike) -> dict[str, Any]:
    """Read a question file and return ``{"info", "questions"}`` in the released form (string answers, ``function``).

    Example::

        read_questions("CLEVR_v1.0/questions/CLEVR_val_questions.json")["questions"][0]["split"]   # 'val'
    """
    path = Path(path)
    document = read_json(path, QuestionFileError)
    if not isinstance(document, dict) or not isinstance(document.get("questions"), list):
        raise QuestionFileError(f"{path}: expected an object with a 'questions' list")
    info = document.get("info", {})
    if not isinstance(info, dict):
        raise QuestionFileError(f"{path}: info: expected an object")
    with gc_paused():
        questions = [normalize_question(q, f"{path}: questions[{i}]") for i, q in enumerate(document["questions"])]
    return {"info": info, "questions": questions}


def write_questions(path: str | os.PathLike, questions: Iterable[Mapping[str, Any]], info: Mapping[str, Any]) -> None:
    """Write questions in the released form, atomically (a reader never sees half a file).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "q.json"
    >>> write_questions(target, [{"question": "Is it?", "answer": True, "image_index": 0}], {"split": "val"})
    >>> read_questions(target)["questions"][0]["answer"]
    'yes'
    """
    with gc_paused():
        normalized = [normalize_question(q, f"{path}: questions[{i}]") for i, q in enumerate(questions)]
    document = {"info": dict(info), "questions": normalized}
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(document))  # one C-encoded string: json.dump encodes in Python, ~5x slower


def normalize_question(question: Any, where: str = "question") -> dict[str, Any]:
    """One question in the released form; raises `QuestionFileError` naming ``where`` and the field.

    >>> normalize_question({"question": "How many?", "answer": 2, "image_index": 4,
    ...                     "program": [{"type": "scene", "inputs": []}]})["program"]
    [{'function': 'scene', 'inputs': [], 'value_inputs': []}]
    """
    if not isinstance(question, Mapping):
        raise QuestionFileError(f"{where}: expected an object, got {type(question).__name__}")
    if not isinstance(question.get("question"), str):
        raise QuestionFileError(f"{where}.question: expected the question text, got {question.get('question')!r}")
    if not _is_int(question.get("image_index")):
        raise QuestionFileError(f"{where}.image_index: expected an integer, got {question.get('image_index')!r}")
    result = dict(question)
    if "answer" in question:
        result["answer"] = normalize_answer(question["answer"], f"{where}.answer")
    if "program" in question:
        result["program"] = normalize_program(question["program"], f"{where}.program")
    family = question.get("question_family_index")
    if family is not None and not _is_int(family):
        raise QuestionFileError(f"{where}.question_family_index: expected an integer, got {family!r}")
    return result


def normalize_answer(answer: Any, where: str = "answer") -> str:
    """True/False -> "yes"/"no", 3 -> "3", strings unchanged.

    >>> normalize_answer(False), normalize_answer(7), normalize_answer("metal")
    ('no', '7', 'metal')
    """
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if _is_int(answer):
        return str(answer)
    if isinstance(answer, str):
        return answer
    raise QuestionFileError(f"{where}: expected a string, bool or integer answer, got {answer!r}")


def normalize_program(program: Any, where: str = "program") -> list[dict[str, Any]]:
    """Program nodes as ``{"function", "inputs", "value_inputs"}`` (from ``type``/``side_inputs`` if need be).

    >>> normalize_program([{"type": "relate", "inputs": [1], "side_inputs": ["left"]}])
    [{'function': 'relate', 'inputs': [1], 'value_inputs': ['left']}]
    """
    if not isinstance(program, list):
        raise QuestionFileError(f"{where}: expected a list of nodes, got {type(program).__name__}")
    nodes = []
    for index, node in enumerate(program):
        field = f"{where}[{index}]"
        if not isinstance(node, Mapping):
            raise QuestionFileError(f"{field}: expected an object, got {node!r}")
        function = node.get("function", node.get("type"))
        if not isinstance(function, str):
            raise QuestionFileError(f"{field}: expected a 'function' (or 'type') name, got {function!r}")
        inputs = node.get("inputs", [])
        if not isinstance(inputs, list) or not all(_is_int(i) for i in inputs):
            raise QuestionFileError(f"{field}.inputs: expected a list of node indices, got {inputs!r}")
        values = node.get("value_inputs", node.get("side_inputs", []))
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise QuestionFileError(f"{field}.value_inputs: expected a list of strings, got {values!r}")
        nodes.append({"function": function, "inputs": list(inputs), "value_inputs": list(values)})
    return nodes


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
