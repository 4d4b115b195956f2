"""Fill a template's slots on one scene: depth-first search over slot values, pruned as early as possible.

The search walks the template's nodes in order. A plain node is appended as is; a node with one slot (a raw
``relate`` or ``filter_color``) branches over every value of the slot's type; a macro branches over whole filter
combinations and expands into base functions (``filter_unique`` -> ``filter_*`` nodes + ``unique``). Every branch
runs its new nodes at once, so a ``unique`` that does not find exactly one object, or a broken ``NULL``/``OUT_NEQ``
constraint, cuts the branch before anything below it is tried. Branches are visited in random order, and the
first complete program that the caller's ``accept`` approves (answer balancing, degeneracy, duplicate text) wins.

Filter options follow clevr-dataset-gen: only attribute combinations that occur in the scene, plus, for counting
and existence, as many combinations that match nothing, so "0" and "no" answers stay common; relations keep only a
tenth of "trivial" options (those where the relation removes no object).

Example::

    from filmkit.clevr.question_search import ScenePrep, search

    found = search(template, ScenePrep(scene), slot_values(), random.Random(0), accept=lambda c: True)
    found.answer, found.values   # ('2', {'<Z>': 'large', '<C>': '', ...})
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from filmkit.clevr.programs import ATTRIBUTES, INVALID, SceneFacts, answer_text, apply
from filmkit.clevr.templates import MACROS, Template

# A node of a program being built: (function, input indices, value inputs).
Node = tuple[str, tuple[int, ...], tuple[str, ...]]
FilterKey = tuple[Any, ...]  # (size, color, material, shape); None where the filter leaves it open
TRIVIAL_SHARE = 0.1
# Branches tried per template and image before giving up. A scene that cannot give an answer balancing accepts
# would otherwise be searched exhaustively; 95% of successes take under ~100 branches, and a template that gives
# up stays least used, so it is tried first on the next image.
MAX_STATES = 1000


class ScenePrep:
    """A scene with what the search asks of it again and again: execution facts and filter options.

    ``filter_masks`` maps every attribute combination that matches at least one object (``None`` = any value)
    to the set of objects it matches.

    >>> prep = ScenePrep({"objects": [{"size": "large", "color": "red", "material": "metal", "shape": "cube"}],
    ...                   "relationships": {"left": [[]], "right": [[]], "front": [[]], "behind": [[]]}})
    >>> len(prep.filter_masks), prep.filter_masks[(None, "red", None, None)]
    (16, 1)
    """

    def __init__(self, scene: Mapping[str, Any] | SceneFacts) -> None:
        self.facts = scene if isinstance(scene, SceneFacts) else SceneFacts(scene)
        self.filter_masks: dict[FilterKey, int] = {}
        for index, obj in enumerate(self.facts.objects):
            values = tuple(obj.get(attribute) for attribute in ATTRIBUTES)
            for pattern in range(16):  # every subset of the four attributes
                key = tuple(value if pattern >> bit & 1 else None for bit, value in enumerate(values))
                self.filter_masks[key] = self.filter_masks.get(key, 0) | (1 << index)
        self._relate_cache: dict[tuple[int, bool, bool], tuple[list, list]] = {}

    def relate_options(self, obj: int, unique: bool, include_zero: bool) -> tuple[list, list]:
        """(non-trivial, trivial) lists of (relation, filter key) that pick objects related to ``obj``.

        An option is trivial when the relation removes nothing: every object the filter matches is related.
        """
        cache_key = (obj, unique, include_zero)
        if cache_key not in self._relate_cache:
            useful, trivial = [], []
            for relation, related_sets in self.facts.relations.items():
                related = related_sets[obj]
                for key, matched in self.filter_masks.items():
                    both = related & matched
                    size = both.bit_count()
                    if (unique and size != 1) or (not include_zero and size == 0):
                        continue
                    (trivial if both == matched else useful).append((relation, key))
            self._relate_cache[cache_key] = (useful, trivial)
        return self._relate_cache[cache_key]


@dataclass
class Candidate:
    """A complete instantiation: program in base functions, node outputs, slot values ('' = left open), the
    answer, and for each template node the index of the program node that carries its output."""

    nodes: list[Node]
    outputs: list[Any]
    values: dict[str, str]
    answer: str
    mapped: list[int]

    def program(self) -> list[dict[str, Any]]:
        """The program in CLEVR v1.0 form (``function``, ``inputs``, ``value_inputs``).

        >>> Candidate([("scene", (), ()), ("count", (0,), ())], [1, 1], {}, "1", [0, 1]).program()[1]
        {'function': 'count', 'inputs': [0], 'value_inputs': []}
        """
        return [
            {"function": function, "inputs": list(inputs), "value_inputs": list(values)}
            for function, inputs, values in self.nodes
        ]


@dataclass
class _State:
    nodes: list[Node]
    outputs: list[Any]
    values: dict[str, str]
    mapped: list[int]  # template node index -> index of its last node in the expanded program
    done: int  # template nodes expanded so far


def search(
    template: Template,
    prep: ScenePrep,
    slot_values: Mapping[str, Sequence[str]],
    rng: random.Random,
    accept: Callable[[Candidate], bool],
    max_states: int = MAX_STATES,
) -> Candidate | None:
    """The first complete, valid instantiation of ``template`` on the scene that ``accept`` approves, or None.

    >>> from filmkit.clevr.templates import load_templates, slot_values
    >>> scene = {"objects": [{"size": "large", "color": "red", "material": "metal", "shape": "cube"}],
    ...          "relationships": {"left": [[]], "right": [[]], "front": [[]], "behind": [[]]}}
    >>> found = search(load_templates()[88], ScenePrep(scene), slot_values(), random.Random(0), lambda c: True)
    >>> found.answer   # family 88 asks for the colour of the only object of some description
    'red'
    """
    stack: list[Iterator[_State]] = [iter([_State([], [], {}, [], 0)])]
    visited = 0
    while stack and visited < max_states:
        state = next(stack[-1], None)
        if state is None:
            stack.pop()
            continue
        visited += 1
        if state.done == len(template.nodes):
            answer = answer_text(state.outputs[-1])
            candidate = Candidate(state.nodes, state.outputs, state.values, answer, state.mapped)
            if accept(candidate):
                return candidate
            continue
        stack.append(_children(template, state, prep, slot_values, rng))
    return None


def _children(
    template: Template, state: _State, prep: ScenePrep, slot_values: Mapping[str, Sequence[str]], rng: random.Random
) -> Iterator[_State]:
    """The valid states one template node further, in random order, built lazily."""
    node = template.nodes[state.done]
    function, sources = node["type"], [state.mapped[i] for i in node["inputs"]]
    slots = node["side_inputs"]
    if function in MACROS:
        for relation, key in _macro_options(function, slots, template, state, sources, prep, slot_values, rng):
            settings = _slot_settings(slots, relation, key)
            child = _extend(state, _expand_macro(function, sources, settings, len(state.nodes)), settings, prep)
            if child is not None and _constraints_hold(template, child):
                yield child
        return
    choices: list[str | None] = [None]
    if slots:
        choices = list(slot_values[template.params[slots[0]]])
        rng.shuffle(choices)
    for value in choices:
        settings = {slots[0]: value} if slots else {}
        new = [(function, tuple(sources), (value,) if slots else ())]
        child = _extend(state, new, settings, prep)
        if child is not None and _constraints_hold(template, child):
            yield child


def _macro_options(function, slots, template, state, sources, prep, slot_values, rng) -> list[tuple]:
    """The (relation or None, filter key) options of a macro node, shuffled."""
    if function.startswith("relate_filter"):
        unique = function.endswith("_unique")
        include_zero = function.endswith(("_count", "_exist"))
        useful, trivial = prep.relate_options(state.outputs[sources[0]], unique, include_zero)
        keep = round(len(useful) * TRIVIAL_SHARE / (1 - TRIVIAL_SHARE))
        keys = list(useful) + (rng.sample(trivial, min(keep, len(trivial))) if keep else [])
    else:
        within = state.outputs[sources[0]]
        found = {key: within & mask for key, mask in prep.filter_masks.items()}
        if function == "filter":
            found.pop((None, None, None, None), None)  # a filter that filters nothing is not a question
        if function == "filter_unique":
            found = {key: mask for key, mask in found.items() if mask and mask & (mask - 1) == 0}
        else:
            singles = sum(1 for mask in found.values() if mask and mask & (mask - 1) == 0)
            extra = len(found) if function == "filter_exist" else singles
            _add_absent_keys(found, extra, template, slots, slot_values, rng)
        keys = [(None, key) for key in found]
    rng.shuffle(keys)
    return keys


def _add_absent_keys(found: dict, count: int, template: Template, slots, slot_values, rng: random.Random) -> None:
    """Add up to ``count`` attribute combinations that match no object (their answers are 0 or "no").

    ``found`` holds every combination present in the scene, so a new one matches nothing; the all-open
    combination is never new (it matches everything).
    """
    choices = [list(slot_values[template.params[slot]]) + [None] for slot in slots]
    target = len(found) + count
    for _ in range(count * 4):  # a few misses (combinations already present) are expected
        if len(found) >= target:
            break
        key = tuple(rng.choice(values) for values in choices)
        if any(value is not None for value in key):
            found.setdefault(key, 0)


def _slot_settings(slots: Sequence[str], relation: str | None, key: FilterKey) -> dict[str, str]:
    """Slot -> value for one option; template checking guarantees macro slots come as (relation,) Z, C, M, S."""
    settings = {}
    if relation is not None:
        settings[slots[0]] = relation
        slots = slots[1:]
    settings.update((slot, "" if value is None else value) for slot, value in zip(slots, key, strict=True))
    return settings


def _expand_macro(function: str, sources: list[int], settings: dict[str, str], start: int) -> list[Node]:
    """Base-function nodes for one macro, e.g. filter_count -> filter_color, filter_shape, count."""
    new: list[Node] = []
    last = sources[0]
    values = list(settings.values())
    if function.startswith("relate_filter"):
        new.append(("relate", (last,), (values.pop(0),)))
        last = start
    for attribute, value in zip(ATTRIBUTES, values, strict=True):
        if value:
            new.append((f"filter_{attribute}", (last,), (value,)))
            last = start + len(new) - 1
    final = function.rsplit("_", 1)[-1]
    if final in ("unique", "count", "exist"):
        new.append((final, (last,), ()))
    return new


def _extend(state: _State, new: list[Node], settings: dict[str, str], prep: ScenePrep) -> _State | None:
    """The state with ``new`` nodes run and appended; None when a node is invalid (a failed ``unique``)."""
    outputs = list(state.outputs)
    for function, inputs, values in new:
        output = apply(function, [outputs[i] for i in inputs], values, prep.facts)
        if output is INVALID:
            return None
        outputs.append(output)
    values = {**state.values, **settings} if settings else state.values
    return _State(state.nodes + new, outputs, values, state.mapped + [len(outputs) - 1], state.done + 1)


def _constraints_hold(template: Template, state: _State) -> bool:
    for constraint in template.constraints:
        if constraint["type"] == "NULL":
            if state.values.get(constraint["params"][0]):
                return False
        else:  # OUT_NEQ, checked once both nodes exist
            first, second = constraint["params"]
            both_made = max(first, second) < state.done
            if both_made and state.outputs[state.mapped[first]] == state.outputs[state.mapped[second]]:
                return False
    return True


def is_degenerate(candidate: Candidate, prep: ScenePrep) -> bool:
    """True when replacing some ``relate`` by the whole scene leaves the answer unchanged (the relation is idle).

    >>> scene = {"objects": [{"color": "red"}, {"color": "blue"}],
    ...          "relationships": {"left": [[1], []], "right": [[], [0]], "front": [[], []], "behind": [[], []]}}
    >>> nodes = [("scene", (), ()), ("filter_color", (0,), ("red",)), ("unique", (1,), ()),
    ...          ("relate", (2,), ("left",)), ("count", (3,), ())]
    >>> is_degenerate(Candidate(nodes, [], {}, "1", []), ScenePrep(scene))   # left of the red one: 1; anywhere: 2
    False
    """
    for index, (function, _, _) in enumerate(candidate.nodes):
        if function == "relate" and _answer_without(candidate.nodes, index, prep.facts) == candidate.answer:
            return True
    return False


def _answer_without(nodes: list[Node], replaced: int, facts: SceneFacts) -> str | None:
    """The answer with node ``replaced`` turned into ``scene`` and the nodes it fed alone dropped."""
    program = list(nodes)
    program[replaced] = ("scene", (), ())
    used, pending = set(), [len(program) - 1]
    while pending:
        index = pending.pop()
        if index not in used:
            used.add(index)
            pending.extend(program[index][1])
    renumber = {old: new for new, old in enumerate(sorted(used))}
    outputs: list[Any] = []
    for old in sorted(used):
        function, inputs, values = program[old]
        output = apply(function, [outputs[renumber[i]] for i in inputs], values, facts)
        if output is INVALID:
            return None
        outputs.append(output)
    return answer_text(outputs[-1])
