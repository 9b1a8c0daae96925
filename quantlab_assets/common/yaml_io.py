"""Reading the YAML configuration files (strategies, symbol registry, risk rules, feature presets).

One reader and one error formatter for all of them, so every way a file can fail (missing, a
directory, unreadable, not UTF-8, not YAML, a duplicate key, nested past Python's recursion limit,
a pydantic validation error) becomes one line that names the file, and the field where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class FrozenModel(BaseModel):
    """The base of every model a YAML file is validated into: an unknown key is an error (a typo
    never passes silently) and a validated spec cannot change afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictFrozenModel(FrozenModel):
    """``FrozenModel`` without type coercion (``strict=True``): ``"5"`` or ``5.0`` is not an int
    and ``1`` is not a bool. For parameters whose type is part of what the file means (indicator
    windows and spans), where a quoted number is a mistake to report, not to repair."""

    model_config = ConfigDict(strict=True)  # merged with FrozenModel's


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice; PyYAML would silently keep the last value."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"duplicate key {key!r} at line {line} (first at line {first_line})")


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate keys instead of letting the last one win."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may legitimately be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: SafeLoader's own error says so below
                continue
            if first != line:
                raise DuplicateKeyError(key, line, first)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, what: str, error: type[Exception] = ValueError) -> Any:
    """Parse ``path``; every failure raises ``error`` with a message naming the file.

    ``what`` says what the file is ("strategy", "symbol registry") for the messages.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} file not found") from exc
    except IsADirectoryError as exc:
        raise error(f"{path}: is a directory, not a {what} file") from exc
    except PermissionError as exc:
        raise error(f"{path}: {what} file is not readable (permission denied)") from exc
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: {what} file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        ) from exc
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise error(f"{path}: {exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # PyYAML raises ValueError on impossible dates
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError:
        raise error(
            f"{path}: nested too deeply to read (beyond Python's recursion limit); "
            f"a {what} file needs a few levels at most"
        ) from None


def describe_validation_error(
    exc: ValidationError, raw: Any = None, item_names: Mapping[str, str] | None = None
) -> str:
    """One part per pydantic error, ``field 'a.b.c': why`` (just ``why`` for a whole-model
    rule), joined by "; ".

    ``item_names`` maps a top-level list to the key that names its items (``{"symbols":
    "symbol"}``), so an error in ``symbols.1`` also says which ticker it is, not only its index.
    """
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = f"field '{'.'.join(str(p) for p in loc)}'" if loc else ""
        key = (
            (item_names or {}).get(loc[0])
            if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int)
            else None
        )
        if key is not None:
            try:
                where += f" ({key} {raw[loc[0]][loc[1]].get(key)!r})"
            except (KeyError, IndexError, AttributeError, TypeError):
                pass
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
