"""The 90 question families load in CLEVR's order, their data is consistent, and bad files name file and template."""

import json
from collections import Counter

import pytest

from filmkit.clevr.programs import question_type
from filmkit.clevr.templates import (
    GROUPS,
    SLOT_PATTERN,
    TemplateError,
    load_synonyms,
    load_templates,
)

TEMPLATES = load_templates()
# clevr.md: group sizes in the released global order
GROUP_SIZES = {
    "compare_integer": 9,
    "comparison": 16,
    "three_hop": 6,
    "single_and": 5,
    "same_relate": 28,
    "single_or": 8,
    "one_hop": 6,
    "two_hop": 6,
    "zero_hop": 6,
}


def final_type(template):
    """Question type of a template, from the base function its last node ends in."""
    last = template.nodes[-1]["type"]
    for macro_end in ("count", "exist"):
        if last.endswith(f"_{macro_end}"):
            last = macro_end
    return question_type([{"function": last}])


def test_ninety_families_in_the_released_group_order():
    assert [t.family_index for t in TEMPLATES] == list(range(90))
    groups = [t.name.split("[")[0] for t in TEMPLATES]
    assert list(dict.fromkeys(groups)) == list(GROUPS)
    assert Counter(groups) == GROUP_SIZES
    assert TEMPLATES[36].name == "same_relate[0]" and TEMPLATES[84].name == "zero_hop[0]"


def test_question_types_per_group_match_clevr():
    by_group = {}
    for t in TEMPLATES:
        by_group.setdefault(t.name.split("[")[0], []).append(final_type(t))
    assert set(by_group["compare_integer"]) == {"compare_integer"}
    assert set(by_group["comparison"]) == {"compare_attribute"}
    assert set(by_group["single_or"]) == {"count"}
    hops = ["count", "exist"] + ["query_attribute"] * 4
    assert by_group["zero_hop"] == by_group["one_hop"] == by_group["two_hop"] == by_group["three_hop"] == hops
    assert Counter(by_group["same_relate"]) == {"exist": 8, "count": 8, "query_attribute": 12}
    # CLEVR's type mix: 12 exist, 21 count, 9 compare integer, 32 query, 16 compare attribute families
    assert Counter(final_type(t) for t in TEMPLATES) == {
        "exist": 12,
        "count": 21,
        "compare_integer": 9,
        "query_attribute": 32,
        "compare_attribute": 16,
    }


def test_query_families_keep_the_asked_attribute_open():
    """NULL constraint: "what color is the red cube?" must never be asked."""
    for t in TEMPLATES:
        last = t.nodes[-1]["type"]
        if last.startswith("query_"):
            asked = {"color": "Color", "shape": "Shape", "size": "Size", "material": "Material"}[last[6:]]
            queried = t.nodes[t.nodes[-1]["inputs"][0]]
            slot = next(s for s in queried["side_inputs"] if t.params[s] == asked)
            assert {"type": "NULL", "params": [slot]} in t.constraints, t.name


def test_every_phrasing_mentions_every_filled_slot():
    for t in TEMPLATES:
        filled = {slot for node in t.nodes for slot in node["side_inputs"]}
        for text in t.text:
            assert set(SLOT_PATTERN.findall(text)) == filled, (t.name, text)
        assert len(t.text) >= 2, t.name


def test_programs_expand_only_into_known_macros_and_functions():
    kinds = Counter(node["type"] for t in TEMPLATES for node in t.nodes)
    assert kinds["filter_unique"] > 0 and kinds["relate_filter_count"] > 0 and kinds["relate"] == 10


def test_synonyms_cover_the_clevr_words():
    synonyms = load_synonyms()
    assert synonyms["thing"] == ["thing", "object"] and "ball" in synonyms["sphere"]
    assert synonyms["left"][0] == "left of" and synonyms["front"] == ["in front of"]


# A template in clevr-dataset-gen's own shape, with the extra keys some forks add; written for this test.
PUBLIC_STYLE = {
    "text": ["Is there a <Z> <C> <M> <S> [visible]?", "Can you find a <Z> <C> <M> <S>?"],
    "nodes": [
        {"inputs": [], "type": "scene"},
        {"side_inputs": ["<Z>", "<C>", "<M>", "<S>"], "inputs": [0], "type": "filter_exist"},
    ],
    "params": [
        {"type": "Size", "name": "<Z>"},
        {"type": "Color", "name": "<C>"},
        {"type": "Material", "name": "<M>"},
        {"type": "Shape", "name": "<S>"},
    ],
    "constraints": [],
    "leaves": [""],
}


def write(folder, name, templates):
    path = folder / name
    path.write_text(json.dumps(templates))
    return path


def test_a_folder_in_the_public_layout_loads_in_group_order(tmp_path):
    write(tmp_path, "zero_hop.json", [PUBLIC_STYLE])
    write(tmp_path, "compare_integer.json", [PUBLIC_STYLE, PUBLIC_STYLE])
    write(tmp_path, "extra.json", [PUBLIC_STYLE])
    loaded = load_templates(tmp_path)
    assert [t.name for t in loaded] == ["compare_integer[0]", "compare_integer[1]", "zero_hop[0]", "extra[0]"]
    assert [t.family_index for t in loaded] == [0, 1, 2, 3]
    assert loaded[2].answer_type == "Bool"


def broken(**changes):
    template = json.loads(json.dumps(PUBLIC_STYLE))
    for path, value in changes.items():
        target = template
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key) if key.isdigit() else key]
        target[int(last) if last.isdigit() else last] = value
    return template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (broken(nodes__1__type="filter_everything"), r"template 1: nodes\[1\].type: unknown function"),
        (broken(nodes__1__inputs=[5]), r"template 1: nodes\[1\].inputs: 5 is not the index of an earlier node"),
        (broken(nodes__1__side_inputs=["<Z>"]), r"template 1: nodes\[1\].side_inputs: filter_exist takes 4 slots"),
        (broken(params__1__type="Colour"), r"template 1: params\[1\].type: 'Colour' is not one of"),
        (broken(text__0="Is there a <Q>?"), r"template 1: text\[0\]: slot <Q> is filled by no node"),
        (broken(text__1="Is there a [big [red]] thing?"), r"template 1: text\[1\]: optional words must sit"),
        (broken(constraints=[{"type": "NEQ", "params": []}]), r"template 1: constraints\[0\].type: 'NEQ'"),
        (broken(constraints=[{"type": "OUT_NEQ", "params": [0, 9]}]), r"template 1: constraints\[0\].params"),
        (broken(constraints=[{"type": "NULL", "params": ["<X>"]}]), r"template 1: constraints\[0\].params: NULL"),
        (broken(nodes__1__type="filter_unique"), r"template 1: nodes: the last node returns an Object"),
        (broken(text=[]), r"template 1: text: expected a non-empty list"),
    ],
)
def test_bad_templates_name_the_file_the_template_and_the_field(tmp_path, template, message):
    write(tmp_path, "mine.json", [PUBLIC_STYLE, template])
    with pytest.raises(TemplateError, match=r"mine\.json: " + message):
        load_templates(tmp_path)


def test_a_slot_of_the_wrong_type_is_refused(tmp_path):
    template = broken(nodes__1__side_inputs=["<C>", "<Z>", "<M>", "<S>"])
    write(tmp_path, "mine.json", [template])
    with pytest.raises(TemplateError, match=r"template 0: nodes\[1\].side_inputs: '<C>' is a Color; .* needs a Size"):
        load_templates(tmp_path)


def test_malformed_json_names_file_and_line(tmp_path):
    (tmp_path / "bad.json").write_text('[\n  {"text": ["x"],\n  "nodes": ]\n')
    with pytest.raises(TemplateError, match=r"bad\.json: line 3, column 12: malformed JSON"):
        load_templates(tmp_path)


def test_an_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(TemplateError, match="holds no"):
        load_templates(tmp_path)
    with pytest.raises(TemplateError, match="not a folder"):
        load_templates(tmp_path / "absent")


def test_bad_synonyms_name_the_file_and_the_word(tmp_path):
    path = tmp_path / "synonyms.json"
    path.write_text(json.dumps({"cube": ["cube", "block"], "sphere": []}))
    with pytest.raises(TemplateError, match=r"synonyms\.json: sphere: expected a non-empty list"):
        load_synonyms(path)
