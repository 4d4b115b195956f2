"""Question types with stable codes: the paper's five Table 1 categories and the program's final function.

The codes never depend on the data (the reference code numbered types in order of appearance, so the same
number meant different things in different files); -1 marks a question without a program (CLEVR-Humans).
"""

from __future__ import annotations

# Table 1 column order of the paper.
CATEGORIES = ("count", "exist", "compare_integer", "query_attribute", "compare_attribute")
CATEGORY_TITLES = {
    "count": "Count",
    "exist": "Exist",
    "compare_integer": "Compare Integer",
    "query_attribute": "Query Attribute",
    "compare_attribute": "Compare Attribute",
}
FINAL_FUNCTIONS = (
    "count",
    "exist",
    "equal_integer",
    "less_than",
    "greater_than",
    "query_color",
    "query_material",
    "query_shape",
    "query_size",
    "equal_color",
    "equal_material",
    "equal_shape",
    "equal_size",
)
NO_TYPE = -1

_CATEGORY_OF_FUNCTION = {
    "count": "count",
    "exist": "exist",
    "equal_integer": "compare_integer",
    "less_than": "compare_integer",
    "greater_than": "compare_integer",
    "query_color": "query_attribute",
    "query_material": "query_attribute",
    "query_shape": "query_attribute",
    "query_size": "query_attribute",
    "equal_color": "compare_attribute",
    "equal_material": "compare_attribute",
    "equal_shape": "compare_attribute",
    "equal_size": "compare_attribute",
}


def final_function(program: list[dict] | None) -> str | None:
    """Name of the program's last function (``function`` or ``type`` key), or None without a program."""
    if not program:
        return None
    last = program[-1]
    return last.get("function", last.get("type"))


def type_codes(program: list[dict] | None) -> tuple[int, int]:
    """(category code, final-function code) of a question; -1 for each when there is no program.

    >>> type_codes([{"function": "scene", "inputs": []}, {"function": "count", "inputs": [0]}])
    (0, 0)
    >>> type_codes(None)
    (-1, -1)
    """
    function = final_function(program)
    if function is None:
        return NO_TYPE, NO_TYPE
    if function not in _CATEGORY_OF_FUNCTION:
        raise ValueError(f"program ends in {function!r}, which is not a CLEVR answer function")
    return CATEGORIES.index(_CATEGORY_OF_FUNCTION[function]), FINAL_FUNCTIONS.index(function)
