"""JSON values seen the way Handlebars (JavaScript) sees them.

Contexts are what `json.loads` returns: dict, list, str, int, float, bool,
None. Templates written for Handlebars must render the same here, so every
conversion follows JavaScript: `String(value)` for output, JavaScript
truthiness for conditions, `Number.prototype.toString` for numbers, own
properties only for lookups. JavaScript's `undefined` and `null` are both
None.

Lookups never touch Python attributes: a dict gives its keys, a list or
string its indexes and `length`, anything else nothing. That keeps
`{{x.__class__}}` empty, and no template can reach Python objects.
"""

from __future__ import annotations

import math
from typing import Final

#: Characters Handlebars' `escapeExpression` replaces, and their entities.
_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#x27;",
        "`": "&#x60;",
        "=": "&#x3D;",
    }
)
#: Lists nested deeper than this are not joined (JavaScript would recurse until its stack ends).
_MAX_JOIN_DEPTH: Final = 64
#: Above this magnitude JavaScript numbers no longer hold every integer.
_EXACT_INTEGERS: Final = 2**53


class SafeString(str):
    """Text a helper returns that is already HTML: `{{helper}}` does not escape it."""

    __slots__ = ()


def escape(text: str) -> str:
    """`text` with & < > " ' ` = replaced by entities, as Handlebars escapes them."""
    return text.translate(_ESCAPES)


def to_text(value: object) -> str:
    """JavaScript's `String(value)`, except that undefined and null render as ""."""
    return "" if value is None else _text(value, 0)


def render_value(value: object, *, escaped: bool) -> str:
    """What `{{value}}` (escaped) or `{{{value}}}` puts into the output."""
    text = to_text(value)
    if not escaped or isinstance(value, SafeString):
        return text
    return escape(text)


def _text(value: object, depth: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, list | tuple):
        if depth >= _MAX_JOIN_DEPTH:
            return ""
        return ",".join("" if item is None else _text(item, depth + 1) for item in value)
    return "null" if value is None else "[object Object]"


def js_number(value: int | float) -> str:
    """`Number.prototype.toString()`: shortest round-trip digits, JavaScript's layout."""
    if isinstance(value, int) and -_EXACT_INTEGERS < value < _EXACT_INTEGERS:
        return str(value)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the largest double: JavaScript reads it as infinite
        number = math.inf if value > 0 else -math.inf
    if math.isnan(number) or math.isinf(number):
        return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).strip("0")
    # ECMA-262 Number::toString: the value is 0.<digits> * 10**point.
    point = len(whole) + int(exponent or 0)
    if whole == "0":
        point -= len(fraction) - len(fraction.lstrip("0")) + 1
    return ("-" if number < 0 else "") + _layout(digits, point)


def _layout(digits: str, point: int) -> str:
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    power = f"e{'+' if point > 0 else '-'}{abs(point - 1)}"
    return (digits[0] + "." + digits[1:] if count > 1 else digits) + power


def truthy(value: object) -> bool:
    """JavaScript truthiness: false, None, 0, NaN and "" are false; every list and dict is true."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    return bool(value) if isinstance(value, str | int) else True


def is_empty(value: object) -> bool:
    """Handlebars' `isEmpty`: falsy but not 0, or an empty list."""
    if isinstance(value, list | tuple):
        return not value
    is_zero = isinstance(value, int | float) and not isinstance(value, bool) and value == 0
    return not truthy(value) and not is_zero


def property_key(value: object) -> str:
    """The property name JavaScript makes of `value` in `object[value]`."""
    return _text(value, 0)


def lookup(container: object, key: str) -> object:
    """`container[key]` for own properties only: dict keys, list/str indexes and length."""
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, str) and not container.isascii():
        return _utf16_property(container, key)
    if isinstance(container, str | list | tuple):
        if key == "length":
            return len(container)
        index = _index(key)
        return container[index] if index is not None and index < len(container) else None
    return None


def _utf16_property(text: str, key: str) -> object:
    """JavaScript strings are UTF-16: their length and indexes count code units."""
    units = text.encode("utf-16-le")
    if key == "length":
        return len(units) // 2
    index = _index(key)
    if index is None or index * 2 >= len(units):
        return None
    return units[index * 2 : index * 2 + 2].decode("utf-16-le", errors="replace")


def _index(key: str) -> int | None:
    """An array index as JavaScript writes one ("0", "17"; not "01", "-1", "1.0")."""
    if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def same(left: object, right: object) -> bool:
    """JavaScript's `==` as far as contexts go: identity for objects, value for the rest."""
    if left is right:
        return True
    if isinstance(left, dict | list | tuple) or isinstance(right, dict | list | tuple):
        return False
    return left == right
