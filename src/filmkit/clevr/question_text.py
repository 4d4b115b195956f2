"""Question text from a filled template: one phrasing, synonyms, optional words, and small grammar repairs.

Example::

    render_question(template, {"<Z>": "", "<C>": "red", "<M>": "", "<S>": "cube"}, load_synonyms(), rng)
    # 'How many red blocks are there?'
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

from filmkit.clevr.templates import Template

OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
TWO_OBJECT_SLOTS = frozenset(f"<{letter}{suffix}>" for letter in "ZCMS" for suffix in ("", "2"))


def render_question(
    template: Template, values: Mapping[str, str], synonyms: Mapping[str, Sequence[str]], rng: random.Random
) -> str:
    """Fill one randomly chosen phrasing of ``template`` with ``values`` ('' = slot left open).

    An open shape reads "thing" (or a synonym); every word with synonyms is drawn from them; each [optional]
    part is kept half the time.

    >>> from filmkit.clevr.templates import load_templates
    >>> render_question(load_templates()[84], {"<Z>": "", "<C>": "", "<M>": "", "<S>": ""}, {}, random.Random(0))
    'What is the number of things?'
    """
    text = rng.choice(template.text)
    for slot, value in values.items():
        word = value or ("thing" if template.params[slot] == "Shape" else "")
        if word in synonyms:
            word = rng.choice(synonyms[word])
        text = text.replace(slot, word)
    text = _drop_redundant_other(text, template, values)
    text = OPTIONAL.sub(lambda match: match.group(1) if rng.random() < 0.5 else "", text)
    return tidy(text)


def _drop_redundant_other(text: str, template: Template, values: Mapping[str, str]) -> str:
    """'another red cube ... as the blue cube': the two differ anyway, so "other" only confuses; drop it."""
    if set(template.params) != TWO_OBJECT_SLOTS:
        return text
    for letter in "ZCMS":
        first, second = values.get(f"<{letter}>", ""), values.get(f"<{letter}2>", "")
        if first and second and first != second:
            return text.replace(" another ", " a ").replace(" other ", " ")
    return text


def tidy(text: str) -> str:
    """Single spaces, no space before punctuation, and "an" before a vowel.

    >>> tidy("Is there a  object  left of the   cube ?")
    'Is there an object left of the cube?'
    """
    text = " ".join(text.split())
    text = re.sub(r"\s+([?;,.])", r"\1", text)
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)
