"""Question templates (families) and synonyms: loading and checking the JSON files that define them.

A template file is a JSON list in clevr-dataset-gen's shape; each template has

- ``text``: phrasings with slots such as ``<Z>`` (size), ``<C>`` (color), ``<M>`` (material), ``<S>`` (shape) and
  ``<R>`` (relation), numbered for later objects (``<C2>``), and optional words in brackets (``[that is]``);
- ``nodes``: the program, each node ``{"type", "inputs", "side_inputs"}``, where ``side_inputs`` name slots and
  ``type`` may be a macro (``filter_unique``, ``relate_filter_count``, ...) that expands into base functions;
- ``params``: the slots, ``{"name": "<C2>", "type": "Color"}``;
- ``constraints``: ``NULL`` (the slot must stay empty, so the question does not give its answer away) and
  ``OUT_NEQ`` (two nodes must not output the same thing).

The nine group files ship in ``filmkit/clevr/data/templates``; family indices run over the groups in the order of
the released CLEVR (`GROUPS`), so family 0 is the first template of ``compare_integer.json``. The public
``CLEVR_1.0_templates`` folder loads too and gives the same indices.

Example::

    from filmkit.clevr.templates import load_templates

    templates = load_templates()
    templates[84].text[0]     # 'How many <Z> <C> <M> <S>s are there?'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from filmkit.clevr.programs import FUNCTIONS, RELATIONS, Signature
from filmkit.jsonfiles import read_json

GROUPS = (
    "compare_integer",
    "comparison",
    "three_hop",
    "single_and",
    "same_relate",
    "single_or",
    "one_hop",
    "two_hop",
    "zero_hop",
)
OBJECT_SLOTS = ("Size", "Color", "Material", "Shape")
MACROS: dict[str, Signature] = {
    "filter": Signature(("ObjectSet",), OBJECT_SLOTS, "ObjectSet"),
    "filter_unique": Signature(("ObjectSet",), OBJECT_SLOTS, "Object"),
    "filter_count": Signature(("ObjectSet",), OBJECT_SLOTS, "Integer"),
    "filter_exist": Signature(("ObjectSet",), OBJECT_SLOTS, "Bool"),
    "relate_filter": Signature(("Object",), ("Relation", *OBJECT_SLOTS), "ObjectSet"),
    "relate_filter_unique": Signature(("Object",), ("Relation", *OBJECT_SLOTS), "Object"),
    "relate_filter_count": Signature(("Object",), ("Relation", *OBJECT_SLOTS), "Integer"),
    "relate_filter_exist": Signature(("Object",), ("Relation", *OBJECT_SLOTS), "Bool"),
}
SLOT_TYPES = (*OBJECT_SLOTS, "Relation")
CONSTRAINT_TYPES = ("NULL", "OUT_NEQ")
SLOT_PATTERN = re.compile(r"<[A-Z][A-Z0-9]*>")


class TemplateError(ValueError):
    """A template or synonyms file that cannot be used; the message names the file, the template and the field."""


@dataclass(frozen=True)
class Template:
    """One question family: its global index, where it came from, its phrasings, program, slots and constraints.

    ``params`` maps each slot name to its type, in the file's order.
    """

    family_index: int
    source: str
    index_in_file: int
    text: tuple[str, ...]
    nodes: tuple[Mapping[str, Any], ...]
    params: Mapping[str, str]
    constraints: tuple[Mapping[str, Any], ...]

    @property
    def answer_type(self) -> str:
        """The type of the answer: Bool, Integer or an attribute type (Color, ...)."""
        return signature(self.nodes[-1]["type"]).output

    @property
    def has_relate(self) -> bool:
        """True when the program holds a raw ``relate`` node (its questions get the degeneracy check)."""
        return any(node["type"] == "relate" for node in self.nodes)

    @property
    def name(self) -> str:
        """``<file stem>[<index in file>]``, e.g. ``zero_hop[0]``, for messages."""
        return f"{Path(self.source).stem}[{self.index_in_file}]"


def signature(function: str) -> Signature:
    """The signature of a base function or a template macro.

    >>> signature("filter_count").output
    'Integer'
    """
    return FUNCTIONS.get(function) or MACROS[function]


def default_templates_dir() -> Path:
    """The folder of the nine template files that ship with filmkit.

    >>> sorted(path.stem for path in default_templates_dir().glob("*.json"))[:2]
    ['compare_integer', 'comparison']
    """
    return Path(str(resources.files("filmkit.clevr").joinpath("data", "templates")))


def load_templates(directory: str | Path | None = None) -> list[Template]:
    """Every template of a folder of template files, numbered globally (released CLEVR order for known groups).

    Files named after the nine CLEVR groups come first, in `GROUPS` order; any other ``*.json`` follows,
    alphabetically. Raises `TemplateError` naming the file and template for anything malformed.

    >>> templates = load_templates()
    >>> len(templates), templates[0].name, templates[89].name
    (90, 'compare_integer[0]', 'zero_hop[5]')
    """
    folder = Path(directory) if directory is not None else default_templates_dir()
    if not folder.is_dir():
        raise TemplateError(f"{folder}: not a folder of template files")
    files = sorted(folder.glob("*.json"), key=lambda path: (_group_rank(path.stem), path.name))
    if not files:
        raise TemplateError(f"{folder}: holds no *.json template files")
    templates: list[Template] = []
    for path in files:
        templates.extend(load_template_file(path, first_index=len(templates)))
    return templates


def _group_rank(stem: str) -> int:
    return GROUPS.index(stem) if stem in GROUPS else len(GROUPS)


def load_template_file(path: str | Path, first_index: int = 0) -> list[Template]:
    """The templates of one file; the first gets family index ``first_index``.

    >>> [t.family_index for t in load_template_file(default_templates_dir() / "zero_hop.json", 84)][:2]
    [84, 85]
    """
    path = Path(path)
    document = read_json(path, TemplateError)
    if not isinstance(document, list):
        raise TemplateError(f"{path}: expected a JSON list of templates, got {type(document).__name__}")
    return [parse_template(raw, str(path), index, first_index + index) for index, raw in enumerate(document)]


def parse_template(raw: Any, source: str, index_in_file: int, family_index: int) -> Template:
    """Check one template and return it; errors read ``<source>: template <i>: <field>: <problem>``.

    >>> parse_template({"text": ["Is there a <C> thing?"], "params": [{"name": "<C>", "type": "Color"}],
    ...                 "nodes": [{"type": "scene", "inputs": []},
    ...                           {"type": "filter_color", "inputs": [0], "side_inputs": ["<C>"]},
    ...                           {"type": "exist", "inputs": [1]}]}, "mine.json", 0, 90).answer_type
    'Bool'
    """
    where = f"{source}: template {index_in_file}"
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: expected an object, got {type(raw).__name__}")
    for field in ("text", "nodes", "params"):
        if not isinstance(raw.get(field), list) or not raw[field]:
            raise TemplateError(f"{where}: {field}: expected a non-empty list")
    params = _check_params(raw["params"], where)
    nodes = _check_nodes(raw["nodes"], params, where)
    filled = {slot for node in nodes for slot in node["side_inputs"]}
    text = _check_text(raw["text"], filled, where)
    constraints = _check_constraints(raw.get("constraints", []), params, len(nodes), where)
    return Template(family_index, source, index_in_file, text, nodes, params, constraints)


def _check_params(raw: list, where: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for index, param in enumerate(raw):
        field = f"{where}: params[{index}]"
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise TemplateError(f"{field}: expected {{'name': '<C>', 'type': 'Color'}}, got {param!r}")
        if param.get("type") not in SLOT_TYPES:
            raise TemplateError(f"{field}.type: {param.get('type')!r} is not one of {', '.join(SLOT_TYPES)}")
        if param["name"] in params:
            raise TemplateError(f"{field}.name: {param['name']} is declared twice")
        params[param["name"]] = param["type"]
    return params


def _check_nodes(raw: list, params: Mapping[str, str], where: str) -> tuple[dict[str, Any], ...]:
    nodes: list[dict[str, Any]] = []
    for index, node in enumerate(raw):
        field = f"{where}: nodes[{index}]"
        if not isinstance(node, dict):
            raise TemplateError(f"{field}: expected an object, got {node!r}")
        function = node.get("type", node.get("function"))
        if function not in FUNCTIONS and function not in MACROS:
            raise TemplateError(f"{field}.type: unknown function {function!r}")
        expected = signature(function)
        inputs = node.get("inputs", [])
        if not isinstance(inputs, list) or len(inputs) != len(expected.inputs):
            raise TemplateError(f"{field}.inputs: {function} takes {len(expected.inputs)} inputs, got {inputs!r}")
        for source, wanted in zip(inputs, expected.inputs, strict=True):
            if not isinstance(source, int) or isinstance(source, bool) or not 0 <= source < index:
                raise TemplateError(f"{field}.inputs: {source!r} is not the index of an earlier node")
            produced = signature(nodes[source]["type"]).output
            if produced != wanted:
                raise TemplateError(f"{field}.inputs: {function} needs {wanted}, node {source} gives {produced}")
        side = node.get("side_inputs", node.get("value_inputs", []))
        if not isinstance(side, list) or len(side) != len(expected.values):
            raise TemplateError(
                f"{field}.side_inputs: {function} takes {len(expected.values)} slots "
                f"({', '.join(expected.values) or 'none'}), got {side!r}"
            )
        for slot, wanted in zip(side, expected.values, strict=True):
            if params.get(slot) != wanted:
                problem = "is not declared in params" if slot not in params else f"is a {params[slot]}"
                raise TemplateError(f"{field}.side_inputs: {slot!r} {problem}; {function} needs a {wanted} slot")
        nodes.append({"type": function, "inputs": list(inputs), "side_inputs": list(side)})
    last = signature(nodes[-1]["type"]).output
    if last in ("ObjectSet", "Object"):
        raise TemplateError(f"{where}: nodes: the last node returns an {last}, not an answer")
    return tuple(nodes)


def _check_text(raw: list, filled: set[str], where: str) -> tuple[str, ...]:
    for index, text in enumerate(raw):
        field = f"{where}: text[{index}]"
        if not isinstance(text, str) or not text.strip():
            raise TemplateError(f"{field}: expected a non-empty string, got {text!r}")
        unknown = [slot for slot in SLOT_PATTERN.findall(text) if slot not in filled]
        if unknown:
            raise TemplateError(f"{field}: slot {unknown[0]} is filled by no node (no side_inputs name it)")
        if not _brackets_balanced(text):
            raise TemplateError(f"{field}: optional words must sit in single, unnested [brackets]: {text!r}")
    return tuple(text.strip() for text in raw)


def _brackets_balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            return False
    return depth == 0


def _check_constraints(raw: Any, params: Mapping[str, str], num_nodes: int, where: str) -> tuple[dict, ...]:
    if not isinstance(raw, list):
        raise TemplateError(f"{where}: constraints: expected a list")
    constraints = []
    for index, constraint in enumerate(raw):
        field = f"{where}: constraints[{index}]"
        kind = constraint.get("type") if isinstance(constraint, dict) else None
        targets = constraint.get("params") if isinstance(constraint, dict) else None
        if kind not in CONSTRAINT_TYPES:
            raise TemplateError(f"{field}.type: {kind!r} is not one of {', '.join(CONSTRAINT_TYPES)}")
        if kind == "NULL" and not (isinstance(targets, list) and len(targets) == 1 and targets[0] in params):
            raise TemplateError(f"{field}.params: NULL takes one declared slot, got {targets!r}")
        nodes_ok = isinstance(targets, list) and len(targets) == 2
        nodes_ok = nodes_ok and all(isinstance(i, int) and 0 <= i < num_nodes for i in targets)
        if kind == "OUT_NEQ" and not nodes_ok:
            raise TemplateError(f"{field}.params: OUT_NEQ takes two node indices below {num_nodes}, got {targets!r}")
        constraints.append({"type": kind, "params": list(targets)})
    return tuple(constraints)


def slot_values(properties: Any = None) -> dict[str, list[str]]:
    """The values each slot type ranges over, from the CLEVR properties (default: the built-in world).

    >>> slot_values()["Size"]
    ['large', 'small']
    """
    if properties is None:
        from filmkit.clevr.properties import load_properties

        properties = load_properties()
    return {
        "Size": list(properties.sizes),
        "Color": list(properties.colors),
        "Material": list(properties.materials),
        "Shape": list(properties.shapes),
        "Relation": list(RELATIONS),
    }


def load_synonyms(path: str | Path | None = None) -> dict[str, list[str]]:
    """Word -> its interchangeable phrasings (``{"cube": ["cube", "block"], ...}``); default: filmkit's file.

    >>> load_synonyms()["sphere"]
    ['sphere', 'ball']
    """
    default = resources.files("filmkit.clevr").joinpath("data", "synonyms.json")
    source = Path(path) if path is not None else Path(str(default))
    document = read_json(source, TemplateError)
    if not isinstance(document, dict):
        raise TemplateError(f"{source}: expected an object mapping words to lists of phrasings")
    for word, choices in document.items():
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise TemplateError(f"{source}: {word}: expected a non-empty list of strings, got {choices!r}")
    return {word: list(choices) for word, choices in document.items()}


def answer_values(template: Template, values: Mapping[str, Sequence[str]]) -> list[str]:
    """Every answer a template can give, as CLEVR strings (the keys of its balancing counts).

    >>> answer_values(load_templates()[84], slot_values())[:3]
    ['0', '1', '2']
    """
    kind = template.answer_type
    if kind == "Bool":
        return ["yes", "no"]
    if kind == "Integer":
        return [str(n) for n in range(11)]
    return list(values[kind])
