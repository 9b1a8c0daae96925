"""Text typed by a person, stored, and printed back: control characters are refused on the way in
and escaped on the way out (a newline in a reason forged a line of the override log; an ANSI escape
in a name recoloured the terminal)."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidirectional overrides
# (they reorder or break a printed line as surely as a newline).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_LENGTH = 2000


def refuse_control(value: str, field: str, max_length: int = MAX_LENGTH) -> str:
    """``value`` unchanged when it holds no control character and fits ``max_length``; else
    ``ValueError`` naming ``field``, the character and its position."""
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"{field}: contains the control character {found.group()!r} at position {found.start() + 1}; "
            "write it on one line without control characters"
        )
    if len(value) > max_length:
        raise ValueError(f"{field}: {len(value)} characters, at most {max_length}")
    return value


def printable(value: object) -> str:
    """``str(value)`` with every control character escaped (``\\n``, ``\\x1b``): one line, inert."""
    text = str(value)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
