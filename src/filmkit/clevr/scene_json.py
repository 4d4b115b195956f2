"""Read, write and validate CLEVR v1.0 scene files (``scenes/CLEVR_<split>_scenes.json``).

A scene file is ``{"info": {...}, "scenes": [scene, ...]}``. Every error names the file and the field, e.g.
``CLEVR_val_scenes.json: scenes[3].objects[2].color: unknown color 'pink'``, so a bad file is fixed at a glance.
Writes are atomic: a reader (or an interrupted run) never sees half a file.

Example::

    from filmkit.clevr.scene_json import read_scenes, write_scenes

    document = read_scenes("CLEVR_v1.0/scenes/CLEVR_val_scenes.json")
    write_scenes("subset_scenes.json", document["scenes"][:10], info=document["info"])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from filmkit import jsonfiles
from filmkit.atomic import atomic_output

RELATIONS = ("right", "behind", "front", "left")
OBJECT_NAME_FIELDS = ("shape", "color", "size", "material")
MAX_REPORTED_ERRORS = 10


class SceneFileError(ValueError):
    """A JSON file that cannot be read, or a scene file that does not follow the CLEVR v1.0 layout."""


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a malformed one raises `SceneFileError` naming the file, line and column."""
    return jsonfiles.read_json(path, SceneFileError)


def write_json_atomic(path: str | os.PathLike, document: Any) -> None:
    """Write ``document`` as JSON to a temporary file beside ``path``, then rename it into place.

    ``path`` holds either the old content or the new one, never a fragment.

    Example::

        write_json_atomic("out/scene.json", {"objects": []})
    """
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(document))  # one C-encoded string: json.dump encodes in Python, ~5x slower


def read_scenes(path: str | os.PathLike, properties: Any = None) -> dict:
    """Read and validate a CLEVR scene file; returns ``{"info": ..., "scenes": [...]}``.

    Names are checked against ``properties`` (default: the built-in CLEVR properties).

    Example::

        document = read_scenes("CLEVR_v1.0/scenes/CLEVR_val_scenes.json")
        document["scenes"][0]["objects"][0]["color"]     # 'brown'
    """
    document = read_json(path)
    validate_scenes(document, source=str(path), properties=properties)
    return document


def write_scenes(path: str | os.PathLike, scenes: Sequence[dict], info: dict, properties: Any = None) -> None:
    """Validate ``scenes`` and write them atomically as a CLEVR v1.0 scene file.

    Example::

        write_scenes("scenes/CLEVR_new_scenes.json", scenes, info={"split": "new", "version": "1.0"})
    """
    document = {"info": dict(info), "scenes": list(scenes)}
    validate_scenes(document, source=str(path), properties=properties)
    write_json_atomic(path, document)


def validate_scenes(document: Any, source: str = "<scenes>", properties: Any = None) -> None:
    """Raise `SceneFileError` listing (up to ten) problems, each as ``source: field: message``.

    >>> scene = {"split": "val", "image_filename": "CLEVR_val_000000.png", "objects": [],
    ...          "directions": {}, "relationships": {"right": [], "behind": [], "front": [], "left": []}}
    >>> validate_scenes({"info": {}, "scenes": [scene]}, source="x.json")
    Traceback (most recent call last):
    filmkit.clevr.scene_json.SceneFileError: x.json: scenes[0]: missing field 'image_index'
    """
    names = _known_names(properties)
    errors = list(_document_errors(document, names))
    if errors:
        shown = [f"{source}: {error}" for error in errors[:MAX_REPORTED_ERRORS]]
        if len(errors) > MAX_REPORTED_ERRORS:
            shown.append(f"{source}: ... and {len(errors) - MAX_REPORTED_ERRORS} more problems")
        raise SceneFileError("\n".join(shown))


def _known_names(properties: Any) -> dict[str, list[str]]:
    if properties is None:
        from filmkit.clevr.properties import load_properties

        properties = load_properties()
    return {
        "shape": list(properties.shapes),
        "color": list(properties.colors),
        "size": list(properties.sizes),
        "material": list(properties.materials),
    }


def _document_errors(document: Any, names: dict[str, list[str]]) -> Iterator[str]:
    if not isinstance(document, dict):
        yield f"top level: expected an object with 'info' and 'scenes', got {_kind(document)}"
        return
    if not isinstance(document.get("info", {}), dict):
        yield f"info: expected an object, got {_kind(document['info'])}"
    scenes = document.get("scenes")
    if not isinstance(scenes, list):
        yield f"scenes: expected a list, got {_kind(scenes)}" if "scenes" in document else "missing field 'scenes'"
        return
    for index, scene in enumerate(scenes):
        yield from _scene_errors(scene, f"scenes[{index}]", names)


def _scene_errors(scene: Any, where: str, names: dict[str, list[str]]) -> Iterator[str]:
    if not isinstance(scene, dict):
        yield f"{where}: expected an object, got {_kind(scene)}"
        return
    expected = {
        "split": str,
        "image_index": int,
        "image_filename": str,
        "objects": list,
        "directions": dict,
        "relationships": dict,
    }
    for field, kind in expected.items():
        yield from _field_errors(scene, field, kind, where)
    if not all(isinstance(scene.get(field), expected[field]) for field in ("objects", "directions", "relationships")):
        return  # the checks below need these three containers
    objects = scene["objects"]
    for index, obj in enumerate(objects):
        yield from _object_errors(obj, f"{where}.objects[{index}]", names)
    for name, vector in scene["directions"].items():
        if not _is_vector(vector, 3):
            yield f"{where}.directions.{name}: expected 3 numbers, got {vector!r}"
    yield from _relationship_errors(scene["relationships"], len(objects), f"{where}.relationships")


def _object_errors(obj: Any, where: str, names: dict[str, list[str]]) -> Iterator[str]:
    if not isinstance(obj, dict):
        yield f"{where}: expected an object, got {_kind(obj)}"
        return
    for field in OBJECT_NAME_FIELDS:
        problems = list(_field_errors(obj, field, str, where))
        yield from problems
        if not problems and obj[field] not in names[field]:
            yield f"{where}.{field}: unknown {field} {obj[field]!r} (known: {', '.join(names[field])})"
    for field in ("3d_coords", "pixel_coords"):
        if field not in obj:
            yield f"{where}: missing field {field!r}"
        elif not _is_vector(obj[field], 3):
            yield f"{where}.{field}: expected 3 numbers, got {obj[field]!r}"
    if _is_vector(obj.get("pixel_coords"), 3) and not all(_is_int(value) for value in obj["pixel_coords"][:2]):
        yield f"{where}.pixel_coords: pixel x and y must be integers, got {obj['pixel_coords'][:2]!r}"
    if "rotation" not in obj:
        yield f"{where}: missing field 'rotation'"
    elif not _is_number(obj["rotation"]):
        yield f"{where}.rotation: expected a number of degrees, got {obj['rotation']!r}"


def _relationship_errors(relationships: dict, num_objects: int, where: str) -> Iterator[str]:
    for relation in RELATIONS:
        related = relationships.get(relation)
        if not isinstance(related, list) or len(related) != num_objects:
            yield f"{where}.{relation}: expected a list with one entry per object ({num_objects})"
            continue
        for i, others in enumerate(related):
            valid = isinstance(others, list) and all(_is_int(j) and 0 <= j < num_objects and j != i for j in others)
            if not valid:
                yield f"{where}.{relation}[{i}]: expected indices of other objects, got {others!r}"


def _field_errors(container: dict, field: str, kind: type, where: str) -> Iterator[str]:
    if field not in container:
        yield f"{where}: missing field {field!r}"
    elif kind is int and not _is_int(container[field]):
        yield f"{where}.{field}: expected an integer, got {container[field]!r}"
    elif not isinstance(container[field], kind):
        yield f"{where}.{field}: expected {_KIND_NAMES[kind]}, got {_kind(container[field])}"


_KIND_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "an object"}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(type(value), repr(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_vector(value: Any, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(_is_number(v) for v in value)
