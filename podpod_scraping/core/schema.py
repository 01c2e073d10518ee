"""The building blocks of the scraper config's one schema, and how its errors read.

Every section of the YAML file (``sources``, ``fetch``, ``images``, ``refresh``) is a frozen
pydantic model built from these pieces: strict scalars (``true`` is not a number, ``2.5``
is not a count), finite numbers only, unknown keys refused. The same models are what the
code consumes, so the file and the code can never disagree about what a value means.

:func:`load_yaml_model` turns a pydantic error into one line per problem that names the
file, the line, the key path (``fetch.total_timeout``) and the fix: a typo must be found
in seconds, not after a run's retries.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

#: Tags of discriminated unions (the ``kind`` of a source): pydantic puts the tag in an
#: error's location (``sources.0.musicbrainz.user_agent``); the file has no such key.
UNION_TAGS: set[str] = set()


class ScraperConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where.

    The one exception type for every configuration problem (missing file, bad YAML, bad
    value): a run that raises it cannot heal by retrying.
    """


class FrozenModel(BaseModel):
    """A config section: immutable, hashable, and refusing keys it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


#: A number that must be finite (no ``.nan``/``.inf``) and a real number (not ``true``).
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
NonNegativeFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
#: A string with something in it (surrounding whitespace dropped).
NonEmptyStr = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[int | str, ...]


def load_yaml_model(model: type[M], text: str, origin: str) -> M:
    """Parse YAML ``text`` (from ``origin``, a file name) into ``model``, or raise
    :class:`ScraperConfigError` listing every problem with its line and fix."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise ScraperConfigError(f"{origin}: not valid YAML: {error}") from error
    finally:
        loader.dispose()
    duplicate = _first_duplicate_key(node) if node is not None else None
    if duplicate is not None:
        path, line, first = duplicate
        raise ScraperConfigError(
            f"{origin}:{line}: {dotted(path)}: given twice (first on line {first}); the "
            "second would silently replace the first: keep one"
        )
    if not isinstance(data, dict):
        raise ScraperConfigError(
            f"{origin}: expected a mapping with a 'sources' list, got "
            f"{'an empty file' if data is None else type(data).__name__}; start the file "
            "with 'sources:' (see README, Sources)"
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        lines = key_lines(node) if node is not None else {}
        problems = [f"{origin}:{_describe(model, d, lines)}" for d in _root_causes(error)]
        if len(problems) == 1:
            raise ScraperConfigError(problems[0]) from None
        raise ScraperConfigError(
            f"{origin}: {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems)
        ) from None


def _root_causes(error: ValidationError) -> list[ErrorDetails]:
    """The errors, less a list's "too short" that only counts its items' failures."""
    details = error.errors()
    return [
        d
        for d in details
        if not (
            d["type"] == "too_short"
            and any(
                len(o["loc"]) > len(d["loc"]) and o["loc"][: len(d["loc"])] == d["loc"]
                for o in details
            )
        )
    ]


def key_lines(node: yaml.Node, path: KeyPath = ()) -> dict[KeyPath, int]:
    """1-based line of every key path in a composed YAML document (items: their own line)."""
    lines: dict[KeyPath, int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines.update(key_lines(value, child))
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(key_lines(item, (*path, index)))
    return lines


def _first_duplicate_key(node: yaml.Node, path: KeyPath = ()) -> tuple[KeyPath, int, int] | None:
    """A key given twice in one mapping (YAML keeps the last one without a word)."""
    children: list[tuple[KeyPath, yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in seen:
                return (*path, name), line, seen[name]
            seen[name] = line
            children.append(((*path, name), value))
    elif isinstance(node, yaml.SequenceNode):
        children.extend(((*path, index), item) for index, item in enumerate(node.value))
    for child_path, child in children:
        found = _first_duplicate_key(child, child_path)
        if found is not None:
            return found
    return None


def dotted(path: KeyPath) -> str:
    """``('sources', 0, 'selector')`` → ``sources[0].selector``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _describe(model: type[BaseModel], detail: ErrorDetails, lines: dict[KeyPath, int]) -> str:
    loc = [part for part in detail["loc"] if isinstance(part, int | str)]
    path = tuple(
        part
        for index, part in enumerate(loc)
        if not (index and isinstance(loc[index - 1], int) and part in UNION_TAGS)
    )
    line = next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)
    where = f"{line if line is not None else '?'}: {dotted(path)}"
    kind = detail["type"]
    if kind == "extra_forbidden":
        known = sorted(_fields_at(model, path[:-1]))
        guess = difflib.get_close_matches(str(path[-1]), known, n=1)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        return f"{where}: unknown key; {hint}known keys: {', '.join(known)}"
    if kind == "missing" or (kind == "too_short" and path == ("sources",)):
        if path == ("sources",):
            return (
                f"{where}: required: add a 'sources:' list with at least one entry "
                "(name, page_url, selector; see README, Sources)"
            )
        return f"{where}: required: add {path[-1]!r}"
    got = f" (got {_as_yaml(detail['input'])})"
    if kind in ("model_type", "dict_type"):
        return f"{where}: must be a mapping of keys to values{got}"
    if kind in ("tuple_type", "frozen_set_type", "list_type"):
        return f"{where}: must be a list{got}"
    if kind == "string_too_short":
        return f"{where}: must not be empty"
    message = detail["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if kind in ("int_type", "float_type", "bool_type", "string_type", "finite_number") or (
        kind.startswith(("greater_than", "less_than", "literal"))
    ):
        message += got
    return f"{where}: {message}"


def _as_yaml(value: Any) -> str:
    """A value as the file spells it (``true``, ``.nan``, ``-1``), not as Python does."""
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=1000)
    except yaml.YAMLError:
        return repr(value)
    return text.removesuffix("\n").removesuffix("\n...")


def _fields_at(model: type[BaseModel], path: KeyPath) -> set[str]:
    """The keys the model nested at ``path`` accepts (for "did you mean")."""
    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return set()
        field = current.model_fields.get(part)
        if field is None:
            return set()
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return set(current.model_fields)
    return set()


def _model_in(annotation: Any) -> Any:
    """The model an annotation holds: itself, or the item of a tuple/list/optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (tuple, list, Union, types.UnionType, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
