"""Every measured figure in README.md is quoted from its record, so a rerun that changes a figure shows here.

The table "Measured on this project's 2-core CPU machines" names the home of each row's figures (a docs page or a
benchmark's JSON record): every number in the row's figure cell must be in that home. Anywhere else in the README, a
figure with a unit (a percentage, samples/s, minutes, ms, a speed-up) must be in one of the homes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLE_HEADER = "| what | figure | home of the figure |"
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
FIGURE_WITH_UNIT = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)(?=\s*(?:%|samples/s|minutes|ms\b|x\b|images/s|questions/s))")


def record_text(path: Path) -> str:
    """What a home holds as text: a page as written; a JSON record's numbers also as they are rounded in prose."""
    text = path.read_text()
    if path.suffix != ".json":
        return text
    spellings = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            spellings.extend([f"{value:,.0f}", f"{value:.1f}", f"{value:.2f}", f"{value:,.1f}"])

    walk(json.loads(text))
    return text + "\n" + " ".join(spellings)


def table_rows(text: str) -> list[tuple[str, str, list[Path]]]:
    assert TABLE_HEADER in text, "README.md lost its table of measured figures"
    rows = []
    for line in text[text.index(TABLE_HEADER) :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        what, figure, homes = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((what, figure, [ROOT / home.strip() for home in homes.split(",")]))
    return rows


def unheld_figures(text: str) -> list[str]:
    """The README's figures that their homes do not hold, each with where it was quoted."""
    rows = table_rows(text)
    problems = []
    for what, figure, homes in rows:
        absent = [home for home in homes if not home.is_file()]
        if absent:
            problems.append(f"row {what} names {absent[0]}, which does not exist")
            continue
        held = "\n".join(record_text(home) for home in homes)
        problems += [f"row {what}: {n}" for n in NUMBER.findall(figure) if n not in held]
    every_home = {home for _, _, row_homes in rows for home in row_homes if home.is_file()}
    held = "\n".join(record_text(home) for home in sorted(every_home))
    prose = text[: text.index(TABLE_HEADER)]
    problems += [f"prose: {n}" for n in sorted(set(FIGURE_WITH_UNIT.findall(prose))) if n not in held]
    return problems


def test_every_figure_in_the_readme_is_held_by_its_record():
    text = README.read_text()
    assert len(table_rows(text)) >= 8
    assert unheld_figures(text) == []


def test_a_changed_or_invented_figure_is_caught():
    text = README.read_text()
    speedrun = "51.4% validation, 51.4% test"
    assert speedrun in text
    assert unheld_figures(text.replace(speedrun, "61.4% validation, 51.4% test")) == [
        "row `filmkit speedrun` on clevr-cpu (70,000 images, ~700,000 questions at 64x64), 60 minutes, this "
        "round's machine: 61.4"
    ]
    invented = text.replace("## In ten lines", "It trains at 7,777 samples/s.\n\n## In ten lines")
    assert unheld_figures(invented) == ["prose: 7,777"]
