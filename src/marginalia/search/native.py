"""SQLite-native forms of Trino functions, used only where they give Trino's answer.

The ``trino_*`` Python functions of :mod:`marginalia.search.functions` are exact, but SQLite calls
them once per row, and over 100,000 annotations that call is most of a query's time. For the shapes
that matter (a JSON field of a column, a cast of one, a lower-case of a key) this module builds a
SQLite expression out of SQLite's own C functions that is *proven by type* to give the same value,
and keeps the Python function as the ``ELSE`` branch for every other case (reals, strings that
need parsing, non-ASCII text, anything that must fail like Trino). So semantics never change, only
the common case gets fast; ``tests/search/test_native.py`` checks each form row by row against the
Python function.

Every builder returns ``None`` when its shape does not apply; the caller then uses the Python
function. Returned trees are marked ``final``: they are SQLite already and must not be rewritten.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

from .functions import parse_json_path

#: Trino integer types: (least, greatest value, digits any unsigned text of which fits)
INTEGER_RANGES = {
    "TINYINT": (-(2**7), 2**7 - 1, 2),
    "SMALLINT": (-(2**15), 2**15 - 1, 4),
    "INTEGER": (-(2**31), 2**31 - 1, 9),
    "INT": (-(2**31), 2**31 - 1, 9),
    "BIGINT": (-(2**63), 2**63 - 1, 18),
}
DOUBLE_TYPES = ("DOUBLE", "REAL", "FLOAT")


@functools.lru_cache(maxsize=64)
def _parsed(template: str) -> exp.Expr:
    return sqlglot.parse_one(template, read="sqlite")


def _fill(template: str, **parts: exp.Expr) -> exp.Expr:
    """``template`` (SQLite SQL with ``:name`` placeholders) with a copy of each part put in."""

    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name in parts:
            return parts[node.name].copy()
        return node

    tree = _parsed(template).copy().transform(put)
    for node in tree.walk():
        node.meta["final"] = True  # already SQLite: not to be rewritten again (a CAST least of all)
    return tree


def _literal_int(value: int) -> exp.Expr:
    return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))


def sqlite_path(steps: tuple[str, ...]) -> str:
    """A Trino path's steps as a SQLite JSON path (``$."a"[0]``)."""
    return "$" + "".join(f"[{s}]" if s.isdigit() else '."' + s + '"' for s in steps)


def _json_field(document: exp.Expr, path: exp.Expr) -> dict[str, exp.Expr] | None:
    """The placeholders for a JSON field of a cheap document and a literal path, or None."""
    if not is_cheap_document(document) or not (isinstance(path, exp.Literal) and path.is_string):
        return None
    steps = parse_json_path(path.name)
    if any('"' in s or "\\" in s for s in steps):
        return None  # not expressible as a SQLite path: the Python function handles it
    return {"doc": document, "p": exp.Literal.string(sqlite_path(steps)), "trino_path": path}


def is_cheap_document(node: exp.Expr) -> bool:
    """A plain column, or a ``json_each`` element: cheap to evaluate several times in one row."""
    return isinstance(node, exp.Column) or bool(node.meta.get("json_element"))


def json_extract_scalar(document: exp.Expr, path: exp.Expr) -> exp.Expr | None:
    """Trino ``json_extract_scalar`` natively: NULL for plain text, objects, arrays, JSON null and
    misses; strings unquoted; integers and booleans as text. Reals go to Python (their text must be
    the number as written, which SQLite does not keep)."""
    parts = _json_field(document, path)
    if parts is None:
        return None
    return _fill(
        "CASE WHEN json_valid(:doc) THEN CASE json_type(:doc, :p)"
        " WHEN 'text' THEN json_extract(:doc, :p)"
        " WHEN 'integer' THEN CAST(json_extract(:doc, :p) AS TEXT)"
        " WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
        " WHEN 'real' THEN trino_json_extract_scalar(:doc, :trino_path) END END",
        **parts,
    )


def _number_parts(type_name: str, strict: bool) -> tuple[str, dict[str, exp.Expr]] | None:
    """How a value proven to be an SQLite integer ``:v`` becomes ``type_name``; None if not a number type."""
    parts: dict[str, exp.Expr] = {
        "type": exp.Literal.string(type_name),
        "strict": exp.Literal.number(int(strict)),
    }
    if type_name in INTEGER_RANGES:
        low, high, _ = INTEGER_RANGES[type_name]
        parts |= {"low": _literal_int(low), "high": _literal_int(high)}
        return "CASE WHEN :v BETWEEN :low AND :high THEN :v ELSE :fallback END", parts
    if type_name in DOUBLE_TYPES:
        return "CAST(:v AS REAL)", parts  # int64 -> double rounds to nearest, as Python's float() does
    return None


def cast_json_scalar(document: exp.Expr, path: exp.Expr, type_name: str, strict: bool) -> exp.Expr | None:
    """``CAST(json_extract_scalar(doc, path) AS <integer or double>)`` natively for JSON integers.

    A JSON integer in range is the answer as it stands; JSON null, objects, arrays, misses and
    plain-text documents give NULL (the scalar is NULL); everything else — strings to parse,
    reals, booleans, out-of-range integers — goes to the exact Python cast (which fails like Trino).
    """
    parts = _json_field(document, path)
    number = _number_parts(type_name, strict)
    if parts is None or number is None:
        return None
    convert, number_parts = number
    scalar = json_extract_scalar(document, path)
    assert scalar is not None  # it is native whenever _json_field is
    fallback = _fill("trino_cast(:scalar, :type, :strict)", scalar=scalar, **number_parts)
    as_number = _fill(convert, v=_fill("json_extract(:doc, :p)", **parts), fallback=fallback, **number_parts)
    return _fill(
        "CASE WHEN json_valid(:doc) THEN CASE coalesce(json_type(:doc, :p), 'missing')"
        " WHEN 'integer' THEN :as_number"
        " WHEN 'missing' THEN NULL WHEN 'null' THEN NULL WHEN 'object' THEN NULL WHEN 'array' THEN NULL"
        " ELSE :fallback END END",
        as_number=as_number, fallback=fallback, **parts,
    )  # fmt: skip


def cast_column(column: exp.Expr, type_name: str, strict: bool) -> exp.Expr | None:
    """``CAST(column AS <integer or double>)`` natively for integers and plain ASCII digit strings."""
    if not isinstance(column, exp.Column):
        return None
    number = _number_parts(type_name, strict)
    if number is None:
        return None
    convert, parts = number
    fallback = _fill("trino_cast(:v, :type, :strict)", v=column, **parts)
    as_number = _fill(convert, v=column, fallback=fallback, **parts)
    digits = INTEGER_RANGES.get(type_name, (0, 0, 15))[2]  # 15 digits: exact in a double too
    from_digits = _fill(convert, v=_fill("CAST(:v AS INTEGER)", v=column), fallback=fallback, **parts)
    text = _fill(
        "CASE WHEN length(:v) BETWEEN 1 AND :digits AND :v NOT GLOB '*[^0-9]*' THEN :from_digits ELSE :fallback END",
        v=column, digits=exp.Literal.number(digits), from_digits=from_digits, fallback=fallback,
    )  # fmt: skip
    return _fill(
        "CASE typeof(:v) WHEN 'null' THEN NULL WHEN 'integer' THEN :as_number WHEN 'text' THEN :text ELSE :fallback END",
        v=column,
        as_number=as_number,
        text=text,
        fallback=fallback,
    )


def cast_json_array(document: exp.Expr, path: exp.Expr, strict: bool) -> exp.Expr | None:
    """``CAST(json_extract(doc, path) AS ARRAY(JSON))`` natively when the field is an array.

    SQLite's ``json_extract`` of an array is the array's JSON text, which ``json_each`` then walks;
    JSON null, a miss or a plain-text document give NULL as on Trino; anything else (a scalar or an
    object) goes to the exact Python cast, which is NULL for TRY_CAST and an error for CAST.
    """
    parts = _json_field(document, path)
    if parts is None:
        return None
    return _fill(
        "CASE WHEN json_valid(:doc) THEN CASE coalesce(json_type(:doc, :p), 'missing')"
        " WHEN 'array' THEN json_extract(:doc, :p) WHEN 'missing' THEN NULL WHEN 'null' THEN NULL"
        " ELSE trino_cast_json_array(trino_json_extract(:doc, :trino_path), :strict) END END",
        strict=exp.Literal.number(int(strict)), **parts,
    )  # fmt: skip


def json_element(alias: str) -> exp.Expr:
    """One ``json_each`` row as the JSON text Trino binds to a lambda parameter (or UNNEST column).

    Objects and arrays are their JSON text already; strings are re-quoted with ``json_quote``;
    integers and literals are their own text; reals go to Python (``functions.json_element``).
    """
    element = _fill(
        "CASE :type WHEN 'object' THEN :value WHEN 'array' THEN :value WHEN 'text' THEN json_quote(:value)"
        " WHEN 'integer' THEN CAST(:value AS TEXT) WHEN 'null' THEN 'null' WHEN 'true' THEN 'true'"
        " WHEN 'false' THEN 'false' ELSE trino_json_element(:type, :value) END",
        type=exp.column("type", table=alias), value=exp.column("value", table=alias),
    )  # fmt: skip
    element.meta["json_element"] = True
    return element


# A character outside ASCII (or NUL): SQLite's lower()/upper() fold ASCII only, Trino's all of Unicode.
_NON_ASCII = "'*[^' || char(1) || '-' || char(127) || ']*'"


def change_case(value: exp.Expr, upper: bool) -> exp.Expr | None:
    """Trino ``lower``/``upper``: SQLite's own for ASCII text, the Python function otherwise.

    Only for a value cheap to evaluate twice (no Python function or subquery inside it).
    """
    if any(isinstance(n, (exp.Query, exp.Subquery)) for n in value.walk()) or any(
        isinstance(n, exp.Anonymous) and n.name.lower().startswith("trino_") for n in value.walk()
    ):
        return None
    name = "upper" if upper else "lower"
    return _fill(f"CASE WHEN :v GLOB {_NON_ASCII} THEN trino_{name}(:v) ELSE {name}(:v) END", v=value)


_MIN_MAX = (exp.Min, exp.Max, exp.ArgMin, exp.ArgMax)


def _own_nodes(select: exp.Expr):
    """The nodes of one SELECT, not those of the subqueries inside it."""
    return select.walk(prune=lambda n: n is not select and isinstance(n, (exp.Select, exp.Subquery)))


def max_by(node: exp.ArgMax | exp.ArgMin, value: exp.Expr, key: exp.Expr) -> exp.Expr | None:
    """Trino ``max_by(x, y)`` / ``min_by`` as SQLite's bare column with its single ``max(y)``.

    SQLite documents that when an aggregate query has exactly one ``min()`` or ``max()``, the bare
    columns of the result come from the row holding that extreme — which is ``max_by``: ``x`` of
    the row with the greatest ``y``, NULL ``y`` ignored (and NULL when every ``y`` is NULL). With any
    other ``min``/``max``/``*_by`` in the same SELECT, or in a window, the Python aggregate is used.
    """
    select = node.parent_select
    if select is None or node.find_ancestor(exp.Window) is not None:
        return None
    if sum(isinstance(n, _MIN_MAX) for n in _own_nodes(select)) != 1:
        return None
    extreme = "max" if isinstance(node, exp.ArgMax) else "min"
    return _fill(f"CASE WHEN {extreme}(:key) IS NULL THEN NULL ELSE :value END", value=value, key=key)
