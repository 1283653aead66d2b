"""Friendly search forms compiled to the same Athena SQL as everything else.

``find --name meeting_minutes --contains EKS --where 'date>=2026-06-09' --where 'action_items[].owner=Alice'``
and ``missing summary --suffix .pdf`` / ``missing meeting_minutes --has transcript`` become one
read-only query over ``annotation_table`` (and ``inventory`` for "objects without …"), which then
runs on either engine like a hand-written query — so the forms cannot drift from the SQL path.

A condition is ``field op value``: ``field`` is a dotted path into the annotation's JSON
(``date``, ``summary.title``), where ``name[]`` means "any element of the array ``name``"
(``action_items[].owner``, ``topics[]``); ``op`` is one of ``= != >= <= > <`` or ``~`` (contains,
case-insensitive). A number compares as a number, anything else as text (ISO dates sort as text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInput
from ..storage.rules import annotation_name_error

OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
_CONDITION = re.compile(r"^\s*(?P<field>[^=!<>~]+?)\s*(?P<op>!=|>=|<=|=|>|<|~)\s*(?P<value>.*?)\s*$", re.S)
_SEGMENT = re.compile(r"^(?P<key>[A-Za-z_][\w:]*)(?P<any>\[\])?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def quote(text: str) -> str:
    """A SQL string literal (the same in Trino and SQLite)."""
    return "'" + str(text).replace("'", "''") + "'"


@dataclass(frozen=True)
class Condition:
    """``field op value`` with the field split into steps; ``any_`` marks a ``[]`` step."""

    steps: tuple[tuple[str, bool], ...]  # (key, any element of this array?)
    op: str
    value: str

    @property
    def field(self) -> str:
        return ".".join(k + ("[]" if a else "") for k, a in self.steps)


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text or "")
    if not match:
        raise InvalidInput(
            f"cannot read condition {text!r}: write 'field op value' with op one of {' '.join(OPERATORS)}, "
            "e.g. 'date>=2026-06-09' or 'action_items[].owner=Alice'"
        )
    steps = []
    for part in match["field"].strip().split("."):
        segment = _SEGMENT.match(part)
        if not segment:
            raise InvalidInput(
                f"cannot read field {match['field'].strip()!r} in condition {text!r}: use names made of letters, "
                "digits and '_', joined by '.', with '[]' after an array (e.g. action_items[].owner)"
            )
        steps.append((segment["key"], bool(segment["any"])))
    value = match["value"]
    if value[:1] in ("=", "<", ">", "!", "~"):
        raise InvalidInput(
            f"cannot read condition {text!r}: one operator only (quote a value that starts with {value[0]!r})"
        )
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if value == "":
        raise InvalidInput(f"condition {text!r} has no value after {match['op']!r}")
    return Condition(tuple(steps), match["op"], value)


def _path(keys: list[str]) -> str:
    return "$" + "".join(f".{k}" for k in keys)


def _compare(expr: str, op: str, value: str) -> str:
    if op == "~":
        return f"strpos(lower({expr}), {quote(value.lower())}) > 0"
    if _NUMBER.match(value):
        return f"TRY_CAST({expr} AS DOUBLE) {op} {value}"
    return f"{expr} {op} {quote(value)}"


def condition_sql(condition: Condition, document: str = "text_value", depth: int = 0) -> str:
    """The Athena predicate of one condition over the JSON text ``document``."""
    keys: list[str] = []
    for index, (key, any_element) in enumerate(condition.steps):
        keys.append(key)
        if any_element:
            var = f"x{depth}"
            rest = Condition(condition.steps[index + 1 :], condition.op, condition.value)
            inner = (
                condition_sql(rest, var, depth + 1)
                if rest.steps
                else _compare(f"json_extract_scalar({var}, '$')", condition.op, condition.value)
            )
            array = f"TRY_CAST(json_extract({document}, '{_path(keys)}') AS ARRAY(JSON))"
            return f"any_match({array}, {var} -> {inner})"
    return _compare(f"json_extract_scalar({document}, '{_path(keys)}')", condition.op, condition.value)


def validate_name(name: str, option: str = "--name") -> str:
    problem = annotation_name_error(name)
    if problem is not None:
        raise InvalidInput(f"{option} {name!r} is not an annotation name: {problem[1]}")
    return name


def _key_filters(column: str, prefix: str | None, suffix: str | None) -> list[str]:
    filters = []
    if prefix:
        filters.append(f"substr({column}, 1, {len(prefix)}) = {quote(prefix)}")
    if suffix:
        filters.append(f"lower(substr({column}, -{len(suffix)})) = {quote(suffix.lower())}")
    return filters


def find_sql(
    name: str | None = None,
    *,
    contains: str | None = None,
    where: list[str] | tuple[str, ...] = (),
    prefix: str | None = None,
    suffix: str | None = None,
) -> str:
    """``marginalia find``: annotations (optionally of one name) passing every condition."""
    clauses = []
    if name:
        clauses.append(f"name = {quote(validate_name(name))}")
    if contains:
        clauses.append(f"strpos(lower(text_value), {quote(contains.lower())}) > 0")
    conditions = [parse_condition(c) for c in where]
    # SQLite tests the terms in the order written: a plain field first, so that the walk over an
    # array (``[]``) runs only on the rows that pass it (the same rows match either way).
    conditions.sort(key=lambda c: any(any_ for _, any_ in c.steps))
    clauses += [condition_sql(c) for c in conditions]
    clauses += _key_filters("object_key", prefix, suffix)
    sql = "SELECT bucket, object_key, object_version_id, name, last_modified_date, text_value\nFROM annotation_table"
    if clauses:
        sql += "\nWHERE " + "\n  AND ".join(clauses)
    return sql + "\nORDER BY bucket, object_key, name"


def missing_sql(name: str, *, has: str | None = None, prefix: str | None = None, suffix: str | None = None) -> str:
    """``marginalia missing``: objects without annotation ``name``.

    With ``has``: annotated objects that have ``has`` but not ``name`` (e.g. a transcript but no
    minutes). Without: every current object of the bucket (the ``inventory`` table), annotated or
    not. Annotations belong to one object version (R11.2), so the version must match too. The
    inventory columns used (``bucket``, ``key``, ``version_id``, ``is_delete_marker``, ``size``,
    ``last_modified_date``) are those of AWS's live inventory table schema
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/metadata-tables-inventory-schema.html),
    and the local catalogue's ``inventory`` view has the same names.
    """
    name = validate_name(name, "annotation name")
    lacks = (
        "NOT EXISTS (SELECT 1 FROM annotation_table b WHERE b.bucket = {t}.bucket AND b.object_key = {t}.{k} "
        "AND b.object_version_id IS NOT DISTINCT FROM {t}.{v} AND b.name = " + quote(name) + ")"
    )
    if has:
        has = validate_name(has, "--has")
        clauses = [f"a.name = {quote(has)}", lacks.format(t="a", k="object_key", v="object_version_id")]
        clauses += _key_filters("a.object_key", prefix, suffix)
        return (
            "SELECT DISTINCT a.bucket, a.object_key, a.object_version_id\nFROM annotation_table a\nWHERE "
            + "\n  AND ".join(clauses)
            + "\nORDER BY a.bucket, a.object_key"
        )
    clauses = ["NOT coalesce(i.is_delete_marker, FALSE)", lacks.format(t="i", k="key", v="version_id")]
    clauses += _key_filters("i.key", prefix, suffix)
    return (
        "SELECT i.bucket, i.key AS object_key, i.version_id AS object_version_id, i.size, i.last_modified_date\n"
        "FROM inventory i\nWHERE " + "\n  AND ".join(clauses) + "\nORDER BY i.bucket, i.key"
    )
