"""Trino (Athena) functions for SQLite, so one query means the same thing on both engines.

SQLite's own JSON functions differ from Athena's where it matters for a table that mixes JSON and
plain-text annotations: ``json_extract`` raises "malformed JSON" on plain text, returns SQL values
instead of text, and has a different path syntax. Spec R18.1 asks for Trino's semantics:
``json_extract_scalar`` returns NULL for plain text, non-scalar values and missing paths.
:mod:`marginalia.search.sql` rewrites each Trino call to the ``trino_*`` function registered here
(never overriding SQLite's built-ins, which the catalogue's own schema may use).

Functions that Trino makes fail (``CAST('x' AS INTEGER)``, ``json_parse('x')``) raise
:class:`TrinoFunctionError`; SQLite only reports "user-defined function raised exception", so the
message is kept in :data:`last_error` for the runner to turn into a clear
:class:`~marginalia.errors.QueryError`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import re
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import re2

from ..errors import QueryError

#: The catalogue's timestamp text (Timestamp NTZ), also Trino's own rendering of a timestamp.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

_state = threading.local()


class TrinoFunctionError(Exception):
    """A function failed the way Trino's would fail (the message says why)."""

    def __init__(self, message: str):
        super().__init__(message)
        _state.last_error = message


def last_error() -> str | None:
    """The message of the last :class:`TrinoFunctionError` in this thread, then forgotten."""
    message = getattr(_state, "last_error", None)
    _state.last_error = None
    return message


# --- JSON paths (Trino's legacy JSONPath subset: $, .key, [index], ["key"], [key]) -----------------
_PATH_TOKEN = re.compile(
    r"""\.(?P<dot>[\w:]+)"""  # .key  (letters, digits, '_' and ':')
    r"""|\[\s*(?P<index>\d+)\s*\]"""  # [0]
    r"""|\[\s*"(?P<quoted>(?:[^"\\]|\\.)*)"\s*\]"""  # ["any key"]
    r"""|\[\s*(?P<bare>[\w:]+)\s*\]""",  # [key]
    re.UNICODE,
)


@functools.lru_cache(maxsize=1024)
def parse_json_path(path: str) -> tuple[str, ...]:
    """The steps of a Trino JSON path, each a key (on objects) or an index (on arrays)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise QueryError(f"invalid JSON path {path!r}: it must start with '$' (e.g. '$.date', '$.items[0].owner')")
    steps: list[str] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if not match:
            raise QueryError(
                f"invalid JSON path {path!r} at character {pos + 1}: use '.key', '[0]' or '[\"key\"]' steps"
            )
        if match["quoted"] is not None:
            steps.append(re.sub(r"\\(.)", r"\1", match["quoted"]))
        else:
            steps.append(match["dot"] or match["index"] or match["bare"])
        pos = match.end()
    return tuple(steps)


_MISSING = object()


def _step(value, step: str):
    if isinstance(value, dict):
        return value.get(step, _MISSING)
    if isinstance(value, list) and step.isdigit():
        index = int(step)
        return value[index] if index < len(value) else _MISSING
    return _MISSING


class _ParseCache:
    """The last document parsed in this thread: one row often asks several paths of one payload."""

    __slots__ = ("text", "value")

    def __init__(self):
        self.text = None
        self.value = _MISSING


_cache = threading.local()


def _load(document) -> object:
    """The parsed JSON value of ``document``, or _MISSING when it is not JSON (plain text)."""
    if document is None:
        return _MISSING
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")
    elif not isinstance(document, str):
        document = str(document)  # a number stored as a number is valid JSON text
    cache = getattr(_cache, "c", None)
    if cache is None:
        cache = _cache.c = _ParseCache()
    if cache.text is document or cache.text == document:
        return cache.value
    try:
        value = json.loads(document, parse_float=decimal.Decimal)
    except (ValueError, RecursionError):
        value = _MISSING
    cache.text, cache.value = document, value
    return value


def _extract(document, path):
    if path is None:
        return _MISSING
    value = _load(document)
    if value is _MISSING:
        return _MISSING
    for step in parse_json_path(path):
        value = _step(value, step)
        if value is _MISSING:
            return _MISSING
    return value


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _scalar_text(value) -> str | None:
    """Trino's text of a JSON scalar: strings unquoted, numbers as written, true/false."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def json_extract_scalar(document, path):
    """Trino ``json_extract_scalar``: text of a scalar, NULL for non-scalars, plain text, misses."""
    value = _extract(document, path)
    return None if value is _MISSING else _scalar_text(value)


def json_extract(document, path):
    """Trino ``json_extract``: the JSON text at ``path`` (``null`` for JSON null), NULL on a miss."""
    value = _extract(document, path)
    return None if value is _MISSING else _json_text(value)


def json_array_length(document):
    value = _load(document)
    return len(value) if isinstance(value, list) else None


def json_size(document, path):
    value = _extract(document, path)
    if value is _MISSING:
        return None
    return len(value) if isinstance(value, (dict, list)) else 0


def json_array_contains(document, needle):
    value = _load(document)
    if not isinstance(value, list) or needle is None:
        return None
    for element in value:
        if isinstance(needle, str) and isinstance(element, str) and element == needle:
            return 1
        if (
            isinstance(needle, (int, float))
            and not isinstance(element, bool)
            and isinstance(element, (int, float, decimal.Decimal))
        ):
            if element == needle:
                return 1
    return 0


def json_parse(text):
    if text is None:
        return None
    value = _load(text)
    if value is _MISSING:
        raise TrinoFunctionError(f"json_parse: cannot convert {str(text)[:40]!r} to JSON")
    return _json_text(value)


def json_element(kind, value):
    """One element of SQLite's ``json_each`` as the JSON text Trino hands a lambda or UNNEST."""
    if kind in ("object", "array"):
        return value
    if kind == "null":
        return "null"
    if kind in ("true", "false"):
        return kind
    if kind == "text":
        return _json_text(value)
    return None if value is None else str(value)


def cast_json_array(document, strict):
    """``CAST(json AS ARRAY(JSON))``: the same JSON array text, NULL (TRY_CAST) or an error otherwise."""
    if document is None:
        return None
    value = _load(document)
    if isinstance(value, list):
        return document if isinstance(document, str) else _json_text(value)
    if value is None:  # JSON null casts to SQL NULL
        return None
    if strict:
        raise TrinoFunctionError(f"cannot cast {str(document)[:40]!r} to array(json)")
    return None


# --- CAST / TRY_CAST with Trino's strictness -----------------------------------------------------
_INTEGER_TYPES = {"TINYINT": 8, "SMALLINT": 16, "INT": 32, "INTEGER": 32, "BIGINT": 64}
_FLOAT_TYPES = {"DOUBLE", "REAL", "FLOAT", "DECIMAL"}
_TEXT_TYPES = {"VARCHAR", "CHAR", "TEXT", "STRING"}


def _fail(value, type_name: str, strict: bool):
    if strict:
        raise TrinoFunctionError(f"cannot cast {str(value)[:40]!r} to {type_name.lower()}")
    return None


def _to_int(value, type_name: str, strict: bool):
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return _fail(value, type_name, strict)
        result = int(decimal.Decimal(value).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
    elif isinstance(value, int):
        result = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            return _fail(value, type_name, strict)
        result = int(text)
    bits = _INTEGER_TYPES[type_name]
    if not -(2 ** (bits - 1)) <= result < 2 ** (bits - 1):
        return _fail(value, type_name, strict)
    return result


def _to_float(value, type_name: str, strict: bool):
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return _fail(value, type_name, strict)


def _parse_datetime(text: str) -> dt.datetime | None:
    text = text.strip()
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            parsed = dt.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed
    return None


def _to_timestamp(value, type_name: str, strict: bool):
    parsed = _parse_datetime(str(value))
    if parsed is None:
        return _fail(value, type_name, strict)
    return parsed.strftime(TIMESTAMP_FORMAT)


def _to_date(value, type_name: str, strict: bool):
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            return _fail(value, type_name, strict)
    parsed = _parse_datetime(text)
    if parsed is None:
        return _fail(value, type_name, strict)
    return parsed.date().isoformat()


def _to_bool(value, type_name: str, strict: bool):
    if isinstance(value, (int, float)):
        return int(bool(value))
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return 1
    if text in ("false", "0"):
        return 0
    return _fail(value, type_name, strict)


def trino_cast(value, type_name, strict):
    """``CAST``/``TRY_CAST`` of a value to a Trino type, failing (or NULL) where Trino would."""
    if value is None:
        return None
    type_name = str(type_name).upper()
    if type_name in _INTEGER_TYPES:
        return _to_int(value, type_name, strict)
    if type_name in _FLOAT_TYPES:
        return _to_float(value, type_name, strict)
    if type_name in _TEXT_TYPES:
        return value if isinstance(value, str) else _scalar_text(value) if isinstance(value, bool) else str(value)
    if type_name == "TIMESTAMP":
        return _to_timestamp(value, type_name, strict)
    if type_name == "DATE":
        return _to_date(value, type_name, strict)
    if type_name == "BOOLEAN":
        return _to_bool(value, type_name, strict)
    if type_name == "JSON":  # CAST(varchar AS JSON) is a JSON string, not a parse (Trino)
        return value if not isinstance(value, str) else _json_text(value)
    raise TrinoFunctionError(f"CAST to {type_name.lower()} is not supported by the local engine")


# --- dates, times, intervals ---------------------------------------------------------------------
_UNITS = {"SECOND": "seconds", "MINUTE": "minutes", "HOUR": "hours", "DAY": "days", "WEEK": "weeks"}


def add_interval(value, amount, unit):
    """``date/timestamp ± interval 'n' unit``: a date stays a date, a timestamp stays a timestamp."""
    if value is None or amount is None:
        return None
    text = str(value).strip()
    unit = str(unit).upper().rstrip("S")
    is_date = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))
    parsed = _parse_datetime(text)
    if parsed is None:
        raise TrinoFunctionError(f"cannot add an interval to {text[:40]!r}: not a date or timestamp")
    amount = int(amount) if float(amount).is_integer() else float(amount)
    if unit in _UNITS:
        parsed = parsed + dt.timedelta(**{_UNITS[unit]: amount})
    elif unit in ("MONTH", "YEAR"):
        months = parsed.year * 12 + parsed.month - 1 + int(amount) * (12 if unit == "YEAR" else 1)
        year, month = divmod(months, 12)
        month += 1
        last_day = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
        parsed = parsed.replace(year=year, month=month, day=min(parsed.day, last_day))
    else:
        raise TrinoFunctionError(f"interval unit {unit.lower()!r} is not supported")
    if is_date and unit in ("DAY", "WEEK", "MONTH", "YEAR"):
        return parsed.date().isoformat()
    return parsed.strftime(TIMESTAMP_FORMAT)


def current_timestamp():
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime(TIMESTAMP_FORMAT)


# --- text -----------------------------------------------------------------------------------------
#: RE2 (linear time in the text, as Trino's ``regex-library=RE2J``): a pattern cannot backtrack for
#: ever inside one SQLite function call, where the query's deadline is never checked. Backreferences
#: and lookaround, which only a backtracking engine offers, are refused with a clear message.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error comes back as the query's message, not on stderr
_RE2_OPTIONS.max_mem = 32 << 20  # bytes of compiled program per pattern


@functools.lru_cache(maxsize=256)
def _regex(pattern: str):
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise TrinoFunctionError(f"invalid regular expression {pattern!r} (RE2 syntax): {reason}") from None


def regexp_like(text, pattern):
    if text is None or pattern is None:
        return None
    return int(_regex(pattern).search(str(text)) is not None)


def regexp_extract(text, pattern, group=0):
    if text is None or pattern is None:
        return None
    match = _regex(pattern).search(str(text))
    if match is None:
        return None
    try:
        return match.group(int(group or 0))
    except IndexError:
        raise TrinoFunctionError(f"pattern {pattern!r} has no group {group}") from None


def lower(text):
    return None if text is None else str(text).lower()


def upper(text):
    return None if text is None else str(text).upper()


# --- aggregates -------------------------------------------------------------------------------------
class _ByAggregate:
    """``max_by(x, y)`` / ``min_by(x, y)``: x of the row with the greatest/least y (NULL y ignored)."""

    greater = True

    def __init__(self):
        self.key = None
        self.value = None

    def step(self, value, key):
        if key is None:
            return
        if self.key is None or (key > self.key if self.greater else key < self.key):
            self.key, self.value = key, value

    def finalize(self):
        return self.value


class MaxBy(_ByAggregate):
    greater = True


class MinBy(_ByAggregate):
    greater = False


#: name registered in SQLite -> (number of arguments, function)
SCALARS: dict[str, tuple[int, Callable[..., Any]]] = {
    "trino_json_extract_scalar": (2, json_extract_scalar),
    "trino_json_extract": (2, json_extract),
    "trino_json_array_length": (1, json_array_length),
    "trino_json_size": (2, json_size),
    "trino_json_array_contains": (2, json_array_contains),
    "trino_json_parse": (1, json_parse),
    "trino_json_element": (2, json_element),
    "trino_cast_json_array": (2, cast_json_array),
    "trino_cast": (3, trino_cast),
    "trino_add_interval": (3, add_interval),
    "trino_regexp_like": (2, regexp_like),
    "trino_regexp_extract": (-1, regexp_extract),
    "trino_lower": (1, lower),
    "trino_upper": (1, upper),
}
AGGREGATES = {"trino_max_by": (2, MaxBy), "trino_min_by": (2, MinBy)}
#: not deterministic, so SQLite must not fold or cache it
VOLATILE: dict[str, tuple[int, Callable[..., Any]]] = {"trino_current_timestamp": (0, current_timestamp)}


def register(conn: sqlite3.Connection) -> None:
    """Register every ``trino_*`` function on ``conn``."""
    for name, (arity, func) in SCALARS.items():
        conn.create_function(name, arity, func, deterministic=True)
    for name, (arity, func) in VOLATILE.items():
        conn.create_function(name, arity, func)
    for name, (arity, cls) in AGGREGATES.items():
        # typeshed's _AggregateProtocol allows only a one-argument step(); max_by's takes (value, key)
        conn.create_aggregate(name, arity, cls)  # type: ignore[arg-type]
