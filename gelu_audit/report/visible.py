"""Text from outside made safe to show: control characters written out as escapes.

Names and reasons come from users and their code: a plugin's entry-point name, a kernel's
exception message (compilers and CUDA libraries colour theirs with ANSI escapes), a saved report
being merged or compared. Shown as they are, an escape sequence recolours or clears the
terminal, a NUL or an ESC makes a JUnit document that no XML parser reads (XML 1.0 forbids
them), and a bidirectional override reorders what a reviewer sees in a Markdown table. Every
view for people writes such characters as Python writes them in a string (``\\x1b``,
``\\u202e``); line breaks and tabs stay, each view has its own rule for them. The JSON document
keeps the text exactly: JSON escapes every control character itself.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import re
from typing import Any, TypeVar

_HIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and line feed, DEL, C1
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # the bidirectional marks and overrides
    "\ud800-\udfff"  # lone surrogates (an undecodable file name): not even UTF-8 can write them
    "\ufffe\uffff]"  # noncharacters XML forbids
)

T = TypeVar("T")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control, bidirectional-override and surrogate character written as
    its escape: what a terminal, an XML parser or a reviewer's screen would otherwise act on."""
    return _HIDDEN.sub(_escape, text)


def with_visible_text(value: T) -> T:
    """``value`` (a report, or any structure of dataclasses, lists, tuples and dicts) with
    :func:`visible` applied to every string in it. What holds no such character is returned
    as it is, the same object, so a report of plain names costs one walk and no copy."""
    shown: T = _walk(value)
    return shown


def _walk(value: Any) -> Any:
    if type(value) is str:  # an Enum of str values is a name of ours: left as it is
        return visible(value)
    if isinstance(value, (enum.Enum, int, float, bytes, type(None))):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {
            field.name: new
            for field in dataclasses.fields(value)
            if (new := _walk(old := getattr(value, field.name))) is not old
        }
        if not changed:
            return value
        shown = copy.copy(value)  # not dataclasses.replace: fields with init=False, __post_init__
        for name, new in changed.items():
            object.__setattr__(shown, name, new)
        return shown
    if isinstance(value, (list, tuple)):
        items = [_walk(item) for item in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        if hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        return type(value)(items)
    if type(value) is dict:
        pairs = [(_walk(k), _walk(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(pairs, value.items())):
            return value
        return dict(pairs)
    return value
