"""Every CLEVR function means what clevr.md says, on a scene built by hand; bad programs fail naming the node."""

import pytest

from filmkit.clevr.programs import FUNCTIONS, ProgramError, evaluate, execute, question_type

# Four objects on a line from left (x=-2) to right (x=2); depth y = 1, -1, 0.5, -0.5 ("behind" = larger y).
OBJECTS = [
    {"shape": "cube", "size": "large", "color": "red", "material": "metal"},
    {"shape": "sphere", "size": "small", "color": "red", "material": "rubber"},
    {"shape": "cylinder", "size": "large", "color": "blue", "material": "rubber"},
    {"shape": "cube", "size": "small", "color": "green", "material": "metal"},
]
SCENE = {
    "objects": OBJECTS,
    "relationships": {
        "right": [[1, 2, 3], [2, 3], [3], []],
        "left": [[], [0], [0, 1], [0, 1, 2]],
        "behind": [[], [0, 2, 3], [0], [0, 2]],
        "front": [[1, 2, 3], [], [1, 3], [1]],
    },
}


def node(function, *inputs, value=None):
    return {"function": function, "inputs": list(inputs), "value_inputs": [] if value is None else [value]}


def the(shape):
    """Program prefix selecting the only object of ``shape``; its last node is index 2."""
    return [node("scene"), node("filter_shape", 0, value=shape), node("unique", 1)]


def test_scene_returns_every_object():
    assert evaluate([node("scene")], SCENE) == [[0, 1, 2, 3]]


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        ("filter_color", "red", [0, 1]),
        ("filter_shape", "cube", [0, 3]),
        ("filter_size", "small", [1, 3]),
        ("filter_material", "rubber", [1, 2]),
        ("filter_color", "yellow", []),
    ],
)
def test_filters_keep_matching_objects(function, value, expected):
    assert evaluate([node("scene"), node(function, 0, value=value)], SCENE)[-1] == expected


def test_filters_chain():
    program = [node("scene"), node("filter_color", 0, value="red"), node("filter_size", 1, value="large")]
    assert evaluate(program, SCENE)[-1] == [0]


def test_unique_returns_the_single_object():
    assert evaluate(the("sphere"), SCENE)[-1] == 1


@pytest.mark.parametrize("shape", ["cube", "cone"])
def test_unique_of_a_set_that_is_not_a_singleton_names_the_node(shape):
    with pytest.raises(ProgramError, match=r"node 2 \(unique\): expected exactly one object, the input set holds"):
        execute([*the(shape), node("query_color", 2)], SCENE)


@pytest.mark.parametrize(
    ("relation", "expected"),
    [("right", [2, 3]), ("left", [0]), ("behind", [0, 2, 3]), ("front", [])],
)
def test_relate_reads_the_scene_relationships(relation, expected):
    assert evaluate([*the("sphere"), node("relate", 2, value=relation)], SCENE)[-1] == expected


def test_union_and_intersect():
    red = [node("scene"), node("filter_color", 0, value="red")]
    metal = [node("scene"), node("filter_material", 2, value="metal")]
    base = red + metal
    assert evaluate([*base, node("union", 1, 3)], SCENE)[-1] == [0, 1, 3]
    assert evaluate([*base, node("intersect", 1, 3)], SCENE)[-1] == [0]


def test_count_and_exist_answer_as_strings():
    cubes = [node("scene"), node("filter_shape", 0, value="cube")]
    assert execute([*cubes, node("count", 1)], SCENE) == "2"
    assert execute([*cubes, node("exist", 1)], SCENE) == "yes"
    cones = [node("scene"), node("filter_shape", 0, value="cone")]
    assert execute([*cones, node("count", 1)], SCENE) == "0"
    assert execute([*cones, node("exist", 1)], SCENE) == "no"


@pytest.mark.parametrize(
    ("attribute", "answer"), [("color", "red"), ("shape", "sphere"), ("size", "small"), ("material", "rubber")]
)
def test_query_returns_the_attribute(attribute, answer):
    assert execute([*the("sphere"), node(f"query_{attribute}", 2)], SCENE) == answer


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [("color", [0]), ("material", [2]), ("size", [3]), ("shape", [])],
)
def test_same_attribute_excludes_the_object_itself(attribute, expected):
    assert evaluate([*the("sphere"), node(f"same_{attribute}", 2)], SCENE)[-1] == expected


@pytest.mark.parametrize(
    ("attribute", "answer"), [("color", "no"), ("size", "yes"), ("material", "no"), ("shape", "no")]
)
def test_equal_attribute_compares_two_objects(attribute, answer):
    # the cylinder (object 2) is large blue rubber; the red cube (object 0) is large red metal
    program = [
        *the("cylinder"),
        node("scene"),
        node("filter_color", 3, value="red"),
        node("filter_shape", 4, value="cube"),
    ]
    program += [node("unique", 5), node(f"query_{attribute}", 2), node(f"query_{attribute}", 6)]
    program.append(node(f"equal_{attribute}", 7, 8))
    assert execute(program, SCENE) == answer


@pytest.mark.parametrize(
    ("function", "answer"), [("equal_integer", "no"), ("less_than", "yes"), ("greater_than", "no")]
)
def test_integer_comparisons(function, answer):
    # two red things against four things in all
    program = [node("scene"), node("filter_color", 0, value="red"), node("count", 1), node("scene"), node("count", 3)]
    assert execute([*program, node(function, 2, 4)], SCENE) == answer


def test_equal_integer_says_yes_on_equal_counts():
    program = [node("scene"), node("filter_color", 0, value="red"), node("count", 1)]
    program += [node("scene"), node("filter_size", 3, value="small"), node("count", 4), node("equal_integer", 2, 5)]
    assert execute(program, SCENE) == "yes"


def test_generator_dialect_with_type_and_side_inputs_runs():
    program = [
        {"type": "scene", "inputs": []},
        {"type": "filter_shape", "inputs": [0], "side_inputs": ["sphere"]},
        {"type": "unique", "inputs": [1]},
        {"type": "relate", "inputs": [2], "side_inputs": ["right"]},
        {"type": "count", "inputs": [3]},
    ]
    assert execute(program, SCENE) == "2"


def test_the_executor_knows_exactly_the_clevr_functions():
    documented = {"scene", "unique", "relate", "union", "intersect", "count", "exist", "equal_integer"}
    documented |= {"less_than", "greater_than"}
    for attribute in ("color", "shape", "size", "material"):
        documented |= {f"filter_{attribute}", f"query_{attribute}", f"same_{attribute}", f"equal_{attribute}"}
    assert set(FUNCTIONS) == documented


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ([node("scene"), node("filter_colour", 0, value="red")], r"node 1 \(filter_colour\): unknown function"),
        ([node("scene"), node("count", 3)], r"node 1 \(count\): input 3 is not the index of an earlier node"),
        ([node("scene"), node("count", 1)], r"node 1 \(count\): input 1 is not the index of an earlier node"),
        ([node("scene"), node("union", 0)], r"node 1 \(union\): expected 2 inputs and 0 value inputs"),
        ([node("scene"), node("filter_color", 0)], r"node 1 \(filter_color\): expected 1 inputs and 1 value inputs"),
        ([*the("sphere"), node("relate", 2, value="above")], r"node 3 \(relate\): the scene has no relation 'above'"),
        ([node("scene")], r"node 0 \(scene\): the last function returns an ObjectSet, not an answer"),
        ([], r"empty program"),
    ],
)
def test_invalid_programs_raise_a_value_error_naming_the_node(program, message):
    with pytest.raises(ValueError, match=message):
        execute(program, SCENE)


def test_question_types_follow_the_last_function():
    names = ["exist", "count", "equal_integer", "less_than", "greater_than", "query_shape", "equal_color"]
    types = [question_type([node("scene"), node(name)]) for name in names]
    assert types == ["exist", "count", "compare_integer", "compare_integer", "compare_integer"] + [
        "query_attribute",
        "compare_attribute",
    ]
