"""CLEVR functional programs: what each function means, and an executor that runs programs on scenes.

A program is a list of nodes in execution order. Each node names a function (under ``function``, or ``type`` as
clevr-dataset-gen writes it), the earlier nodes it reads (``inputs``) and its literal arguments (``value_inputs``,
or the generator's older ``side_inputs``)::

    [{"function": "scene", "inputs": [], "value_inputs": []},
     {"function": "filter_color", "inputs": [0], "value_inputs": ["red"]},
     {"function": "count", "inputs": [1], "value_inputs": []}]

Object sets travel between nodes as Python ints used as bitmasks (bit i set = object i is in the set), which keeps
set operations cheap for the question generator that runs these same functions millions of times. Answers leave
as CLEVR strings: "yes"/"no", "0".."10", or an attribute value.

Example::

    from filmkit.clevr.programs import execute

    execute(program, scene)   # '2'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ATTRIBUTES = ("size", "color", "material", "shape")
RELATIONS = ("left", "right", "behind", "front")
# A function that cannot produce a value (``unique`` of a set that is not a singleton) returns this.
INVALID = object()


class ProgramError(ValueError):
    """A program that cannot run on a scene; the message names the node (index and function) and the problem."""


@dataclass(frozen=True)
class Signature:
    """Types of a function's node inputs, its literal value inputs, and its output (clevr-dataset-gen's names)."""

    inputs: tuple[str, ...]
    values: tuple[str, ...]
    output: str


def _signatures() -> dict[str, Signature]:
    table = {
        "scene": Signature((), (), "ObjectSet"),
        "unique": Signature(("ObjectSet",), (), "Object"),
        "relate": Signature(("Object",), ("Relation",), "ObjectSet"),
        "union": Signature(("ObjectSet", "ObjectSet"), (), "ObjectSet"),
        "intersect": Signature(("ObjectSet", "ObjectSet"), (), "ObjectSet"),
        "count": Signature(("ObjectSet",), (), "Integer"),
        "exist": Signature(("ObjectSet",), (), "Bool"),
        "equal_integer": Signature(("Integer", "Integer"), (), "Bool"),
        "less_than": Signature(("Integer", "Integer"), (), "Bool"),
        "greater_than": Signature(("Integer", "Integer"), (), "Bool"),
    }
    for attribute in ATTRIBUTES:
        kind = attribute.capitalize()
        table[f"filter_{attribute}"] = Signature(("ObjectSet",), (kind,), "ObjectSet")
        table[f"query_{attribute}"] = Signature(("Object",), (), kind)
        table[f"same_{attribute}"] = Signature(("Object",), (), "ObjectSet")
        table[f"equal_{attribute}"] = Signature((kind, kind), (), "Bool")
    return table


FUNCTIONS: dict[str, Signature] = _signatures()


class SceneFacts:
    """One scene prepared for fast execution: attribute, relation and "same attribute" sets as bitmasks.

    >>> facts = SceneFacts({"objects": [{"color": "red"}, {"color": "red"}, {"color": "blue"}],
    ...                     "relationships": {}})
    >>> bin(facts.value_masks["color"]["red"])
    '0b11'
    """

    def __init__(self, scene: Mapping[str, Any]) -> None:
        self.objects: Sequence[Mapping[str, Any]] = scene["objects"]
        self.all = (1 << len(self.objects)) - 1
        self.value_masks: dict[str, dict[str, int]] = {attribute: {} for attribute in ATTRIBUTES}
        for index, obj in enumerate(self.objects):
            for attribute in ATTRIBUTES:
                if attribute in obj:
                    masks = self.value_masks[attribute]
                    masks[obj[attribute]] = masks.get(obj[attribute], 0) | (1 << index)
        self.relations = {
            relation: [_mask(related) for related in lists] for relation, lists in scene["relationships"].items()
        }
        self.same = {
            attribute: [masks.get(obj.get(attribute), 0) & ~(1 << index) for index, obj in enumerate(self.objects)]
            for attribute, masks in self.value_masks.items()
        }


def _mask(indices: Sequence[int]) -> int:
    mask = 0
    for index in indices:
        mask |= 1 << index
    return mask


def members(mask: int) -> list[int]:
    """The object indices in a bitmask set, ascending.

    >>> members(0b1010)
    [1, 3]
    """
    return [index for index in range(mask.bit_length()) if mask >> index & 1]


def apply(function: str, inputs: Sequence[Any], values: Sequence[str], facts: SceneFacts) -> Any:
    """The output of one function on already computed inputs; `INVALID` when ``unique`` has no single object.

    Arity and names are the caller's to check (see `run`); this is the hot path of question generation.

    >>> facts = SceneFacts({"objects": [{"shape": "cube"}, {"shape": "sphere"}], "relationships": {}})
    >>> apply("filter_shape", [0b11], ["sphere"], facts)
    2
    """
    if function == "scene":
        return facts.all
    if function == "unique":
        mask = inputs[0]
        return mask.bit_length() - 1 if mask and mask & (mask - 1) == 0 else INVALID
    if function == "relate":
        return facts.relations[values[0]][inputs[0]]
    if function == "union":
        return inputs[0] | inputs[1]
    if function == "intersect":
        return inputs[0] & inputs[1]
    if function == "count":
        return inputs[0].bit_count()
    if function == "exist":
        return inputs[0] != 0
    if function == "less_than":
        return inputs[0] < inputs[1]
    if function == "greater_than":
        return inputs[0] > inputs[1]
    kind, _, attribute = function.partition("_")
    if kind == "equal":  # equal_integer and the four equal_<attribute>
        return inputs[0] == inputs[1]
    if kind == "filter":
        return inputs[0] & facts.value_masks[attribute].get(values[0], 0)
    if kind == "query":
        return facts.objects[inputs[0]][attribute]
    if kind == "same":
        return facts.same[attribute][inputs[0]]
    raise ProgramError(f"unknown function {function!r}")


def answer_text(value: Any) -> str:
    """A terminal value as a CLEVR answer string.

    >>> answer_text(True), answer_text(3), answer_text("cyan")
    ('yes', '3', 'cyan')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def node_function(node: Mapping[str, Any]) -> str:
    """The function name of a node written with ``function`` (CLEVR v1.0) or ``type`` (clevr-dataset-gen).

    >>> node_function({"type": "count", "inputs": [0]})
    'count'
    """
    name = node.get("function", node.get("type"))
    if not isinstance(name, str):
        raise ProgramError(f"node {node!r} has no 'function' (or 'type') name")
    return name


def node_values(node: Mapping[str, Any]) -> list[str]:
    """The literal arguments of a node: ``value_inputs``, or ``side_inputs`` in generator output.

    >>> node_values({"type": "relate", "inputs": [1], "side_inputs": ["left"]})
    ['left']
    """
    return list(node.get("value_inputs", node.get("side_inputs", [])))


def run(program: Sequence[Mapping[str, Any]], scene: Mapping[str, Any] | SceneFacts) -> list[Any]:
    """Every node's output, in program order (sets as bitmasks; see `evaluate` for readable outputs).

    Raises `ProgramError` naming the node for an unknown function, wrong arity, an input index that does not point
    to an earlier node, an unknown relation, or ``unique`` on a set that is not a singleton.

    >>> scene = {"objects": [{"color": "red"}, {"color": "red"}], "relationships": {}}
    >>> run([{"function": "scene", "inputs": []}, {"function": "count", "inputs": [0]}], scene)
    [3, 2]
    >>> run([{"function": "scene", "inputs": []}, {"function": "unique", "inputs": [0]}], scene)
    Traceback (most recent call last):
    ...
    filmkit.clevr.programs.ProgramError: node 1 (unique): expected exactly one object, the input set holds 2
    """
    facts = scene if isinstance(scene, SceneFacts) else SceneFacts(scene)
    if not program:
        raise ProgramError("empty program: expected at least one node")
    outputs: list[Any] = []
    for index, node in enumerate(program):
        function = node_function(node)
        where = f"node {index} ({function})"
        signature = FUNCTIONS.get(function)
        if signature is None:
            raise ProgramError(f"{where}: unknown function (known: {', '.join(sorted(FUNCTIONS))})")
        inputs, values = list(node.get("inputs", [])), node_values(node)
        if len(inputs) != len(signature.inputs) or len(values) != len(signature.values):
            raise ProgramError(
                f"{where}: expected {len(signature.inputs)} inputs and {len(signature.values)} value inputs, "
                f"got {inputs} and {values}"
            )
        for source in inputs:
            if not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < index:
                raise ProgramError(f"{where}: input {source!r} is not the index of an earlier node")
        if function == "relate" and values[0] not in facts.relations:
            raise ProgramError(f"{where}: the scene has no relation {values[0]!r} (has: {', '.join(facts.relations)})")
        output = apply(function, [outputs[source] for source in inputs], values, facts)
        if output is INVALID:
            count = outputs[inputs[0]].bit_count()
            raise ProgramError(f"{where}: expected exactly one object, the input set holds {count}")
        outputs.append(output)
    return outputs


def evaluate(program: Sequence[Mapping[str, Any]], scene: Mapping[str, Any]) -> list[Any]:
    """Every node's output in readable form: object sets as sorted index lists, objects as an index.

    >>> scene = {"objects": [{"color": "red"}, {"color": "blue"}],
    ...          "relationships": {"left": [[1], []], "right": [[], [0]]}}
    >>> evaluate([{"function": "scene", "inputs": []},
    ...           {"function": "filter_color", "inputs": [0], "value_inputs": ["blue"]},
    ...           {"function": "unique", "inputs": [1]},
    ...           {"function": "relate", "inputs": [2], "value_inputs": ["right"]}], scene)
    [[0, 1], [1], 1, [0]]
    """
    outputs = run(program, scene)
    kinds = [FUNCTIONS[node_function(node)].output for node in program]
    return [members(value) if kind == "ObjectSet" else value for value, kind in zip(outputs, kinds, strict=True)]


def execute(program: Sequence[Mapping[str, Any]], scene: Mapping[str, Any] | SceneFacts) -> str:
    """Run a program on a scene and return its answer as a CLEVR string.

    >>> scene = {"objects": [{"shape": "cube", "color": "red"}, {"shape": "cube", "color": "blue"}],
    ...          "relationships": {"left": [[], [0]], "right": [[1], []], "front": [[], []], "behind": [[], []]}}
    >>> execute([{"type": "scene", "inputs": []},
    ...          {"type": "filter_shape", "inputs": [0], "side_inputs": ["cube"]},
    ...          {"type": "count", "inputs": [1]}], scene)
    '2'
    """
    final = FUNCTIONS.get(node_function(program[-1])) if program else None
    outputs = run(program, scene)
    if final is not None and final.output in ("ObjectSet", "Object"):
        raise ProgramError(
            f"node {len(program) - 1} ({node_function(program[-1])}): the last function returns an "
            f"{final.output}, not an answer"
        )
    return answer_text(outputs[-1])


QUESTION_TYPES = {
    "exist": "exist",
    "count": "count",
    "equal_integer": "compare_integer",
    "less_than": "compare_integer",
    "greater_than": "compare_integer",
}


def question_type(program: Sequence[Mapping[str, Any]]) -> str:
    """The reporting type of a question, from its last function (CLEVR's five types).

    >>> question_type([{"function": "scene"}, {"function": "query_color"}])
    'query_attribute'
    """
    last = node_function(program[-1])
    if last in QUESTION_TYPES:
        return QUESTION_TYPES[last]
    if last.startswith("query_"):
        return "query_attribute"
    if last.startswith("equal_"):
        return "compare_attribute"
    return "other"
