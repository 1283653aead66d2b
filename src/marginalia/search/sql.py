"""One query language: Athena's (Trino) SQL, checked read-only once, then run on Athena or SQLite.

A query may name the annotation table as AWS does (``"s3tablescatalog/aws-s3"."b_<bucket>"."annotation"``),
as ``annotation`` or as ``annotation_table``; all three mean the same table, scoped to the bucket
when the AWS name (or ``--bucket``) says which. The journal is ``journal`` or the AWS name, and the
inventory (current objects) ``inventory`` or the AWS name.

:func:`parse` accepts exactly one ``SELECT`` (or ``WITH … SELECT``, ``UNION`` …) and refuses
anything else on the sqlglot syntax tree — DML, DDL, PRAGMA, ATTACH, ``SELECT … INTO``, a second
statement, file/extension functions — with a :class:`~marginalia.errors.QueryError`.
:func:`to_athena` puts the AWS table names in; :func:`to_sqlite` translates to SQLite with
Athena's semantics (see :mod:`marginalia.search.functions` for why a plain sqlglot transpile is
not enough).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from ..errors import QueryError
from . import native
from .tables import CATALOG, namespace

DIALECT = "athena"
TABLE_ALIASES = {
    "annotation": "annotation",
    "annotation_table": "annotation",
    "journal": "journal",
    "inventory": "inventory",
}

# Statement kinds that change something or reach outside the tables; any of them anywhere in the
# tree (a CTE, a subquery) refuses the query.
_FORBIDDEN = tuple(
    getattr(exp, name)
    for name in (
        "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable",
        "Command", "Pragma", "Attach", "Detach", "Into", "Set", "Use", "Transaction", "Commit",
        "Rollback", "Copy", "LoadData", "Analyze", "Describe", "Lock", "Grant", "Revoke", "Show",
        "Kill", "Refresh", "Cache", "Uncache", "Returning",
    )
    if hasattr(exp, name)
)  # fmt: skip
# Functions that read or write files, load code or poke at the engine (SQLite and Trino).
_FORBIDDEN_FUNCTIONS = {
    "load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile", "sqlar_compress",
    "sqlar_uncompress", "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_offset",
    "sqlite_source_id", "randomblob", "zeroblob", "system",
}  # fmt: skip


#: Bounds on a query's text, checked on its tokens (linear) before the parser (recursive) sees it:
#: no real search nests deeper than a few levels, and a hostile one must not cost a traceback or
#: a minute of parsing.
MAX_QUERY_CHARS = 100_000
MAX_NESTING = 32


@dataclass(frozen=True)
class TableUse:
    """One reference to a metadata table in a query."""

    kind: str  # annotation | journal | inventory
    namespace: str | None  # b_<bucket> when the query used the AWS name


@dataclass(frozen=True)
class Query:
    """A parsed, read-only query and the metadata tables it reads."""

    text: str
    tree: exp.Query
    tables: tuple[TableUse, ...]

    def namespace_for(self, bucket: str | None) -> str | None:
        """The namespace the query is scoped to: ``--bucket``'s, or the one the query names."""
        named = {t.namespace for t in self.tables if t.namespace}
        if bucket is not None:
            wanted = namespace(bucket)
            if named - {wanted}:
                raise QueryError(
                    f"the query names {', '.join(sorted(named))} but the bucket given is {bucket!r} ({wanted})"
                )
            return wanted
        if len(named) > 1:
            return None  # several buckets: each reference keeps its own namespace
        return next(iter(named), None)


def _first_line(message: object) -> str:
    return " ".join(str(message).split("\n")[:2]).replace("\x1b[4m", "").replace("\x1b[0m", "").strip()


_OPERATORS = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-", "Mod": "%", "DPipe": "||", "EQ": "=", "NEQ": "<>"}
_OPERATORS |= {"GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "And": "AND", "Or": "OR", "Not": "NOT", "Like": "LIKE"}
_OPERAND_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>")


def _parse_problem(exc: ParseError) -> str:
    """sqlglot's first parse error as a reader's words and a place: ``line 1, column 24, at 'FROM':
    Mul is missing an operand`` rather than its class path (``<class 'sqlglot....Mul'>``)."""
    if not exc.errors:
        return _first_line(exc)
    first = exc.errors[0]
    what = str(first.get("description") or "syntax error")
    missing = _OPERAND_MISSING.search(what)
    if missing:
        operator = _OPERATORS.get(missing.group(1), missing.group(1).upper())
        what = f"{operator} is missing an operand"
    elif what.startswith("Invalid expression"):
        what = "unexpected word"
    near = str(first.get("highlight") or "").strip()[:40]
    return f"line {first.get('line')}, column {first.get('col')}" + (f", at {near!r}" if near else "") + f": {what}"


def parse(sql: str) -> Query:
    """Parse ``sql`` (Athena dialect); refuse anything that is not one read-only query."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty query: write one SELECT over annotation_table (or journal)")
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryError(f"query too long: {len(sql):,} characters (at most {MAX_QUERY_CHARS:,})")
    try:
        _check_nesting(sql)
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        raise QueryError(f"not valid SQL (Athena dialect): {_parse_problem(exc)}") from None
    except TokenError as exc:
        raise QueryError(f"not valid SQL (Athena dialect): {_first_line(exc)}") from None
    except RecursionError:
        raise _too_deep() from None
    if len(statements) != 1:
        raise QueryError(f"one statement only, and it must be a SELECT: found {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise QueryError(f"only read-only queries are allowed (SELECT / WITH … SELECT), not {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise QueryError(f"only read-only queries are allowed: {node.key.upper()} is not")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _FORBIDDEN_FUNCTIONS or name.startswith("sqlite_"):
                raise QueryError(f"function {name}() is not allowed in a search query")
    return Query(text=sql, tree=tree, tables=tuple(_table_uses(tree)))


def _too_deep() -> QueryError:
    return QueryError(f"query nested too deeply (at most {MAX_NESTING} levels of parentheses or subqueries)")


def _check_nesting(sql: str) -> None:
    """Refuse more than :data:`MAX_NESTING` open parentheses at once (counted on tokens, so a
    parenthesis inside a string literal does not count)."""
    depth = deepest = 0
    for token in sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    if deepest > MAX_NESTING:
        raise QueryError(
            f"query nested too deeply: {deepest} levels of parentheses (at most {MAX_NESTING}); "
            "flatten it with WITH … AS"
        )


def _cte_names(tree: exp.Expr) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def _classify(table: exp.Table, ctes: set[str]) -> TableUse | None:
    """What metadata table a FROM/JOIN name means; None for a CTE; QueryError for anything else."""
    name, db, catalog = table.name.lower(), table.db.lower(), table.catalog.lower()
    if not db and not catalog:
        if name in ctes:
            return None
        if name in TABLE_ALIASES:
            return TableUse(TABLE_ALIASES[name], None)
    elif (not catalog or catalog == CATALOG) and db.startswith("b_") and name in ("annotation", "journal", "inventory"):
        return TableUse(name, db)
    shown = table.sql(dialect=DIALECT)
    raise QueryError(
        f"unknown table {shown}: query annotation_table (or annotation, journal, inventory, or "
        f'"{CATALOG}"."b_<bucket>"."annotation")'
    )


def _tables(tree: exp.Expr) -> list[exp.Table]:
    # Table-valued function calls (UNNEST is not a Table) are not tables.
    return [t for t in tree.find_all(exp.Table) if isinstance(t.this, exp.Identifier)]


def _table_uses(tree: exp.Expr) -> list[TableUse]:
    ctes = _cte_names(tree)
    for node in tree.find_all(exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise QueryError(f"table functions are not allowed in a search query: {node.sql(dialect=DIALECT)}")
    return [use for t in _tables(tree) if (use := _classify(t, ctes)) is not None]


def _alias_for(table: exp.Table) -> str | None:
    """Keep the name a query qualifies columns with (``annotation_table.name``) after renaming."""
    if table.alias:
        return table.alias
    return table.name if table.name.lower() not in ("annotation", "journal", "inventory") else None


# --- Athena ----------------------------------------------------------------------------------------
def to_athena(query: Query, *, bucket: str | None = None) -> str:
    """The query with every metadata table named as Athena knows it (the bucket's namespace)."""
    scope = query.namespace_for(bucket)
    tree = query.tree.copy()
    ctes = _cte_names(tree)
    for table in _tables(tree):
        use = _classify(table, ctes)
        if use is None:
            continue
        ns = use.namespace or scope
        if ns is None:
            raise QueryError(
                f"which bucket? On AWS each bucket has its own {use.kind} table: pass --bucket, or name it "
                f'"{CATALOG}"."b_<bucket>"."{use.kind}"'
            )
        replacement = exp.Table(
            this=exp.to_identifier(use.kind, quoted=True),
            db=exp.to_identifier(ns, quoted=True),
            catalog=exp.to_identifier(CATALOG, quoted=True),
        )
        alias = _alias_for(table)
        table.replace(replacement.as_(alias) if alias else replacement)
    return tree.sql(dialect=DIALECT)


# --- SQLite ----------------------------------------------------------------------------------------
_INVENTORY_SELECT = (
    "SELECT bucket, key, NULLIF(version_id, 'null') AS version_id, is_delete_marker, size, "
    "last_modified AS last_modified_date, etag AS e_tag, 'STANDARD' AS storage_class, "
    "join_key AS object_join_key, metadata AS user_metadata "
    "FROM object_version WHERE is_latest = 1 AND is_delete_marker = 0"
)


def _local_source(use: TableUse, ns: str | None, bucket: str | None) -> exp.Expr:
    """The SQLite source for one table reference, scoped to a bucket when one is known.

    Scoping goes through the catalogue's ``bucket`` table (``bucket IN (SELECT …)``) rather than
    a per-row expression, so SQLite can still use the ``(bucket, name)`` and ``(bucket, object_key)``
    indexes — which also makes a correlated ``b.object_key = a.object_key`` lookup indexed.
    """
    if use.kind == "inventory":
        base = sqlglot.parse_one(_INVENTORY_SELECT, read="sqlite", into=exp.Select)
    else:
        base = exp.select("*").from_(use.kind)
    if bucket is not None and ns == namespace(bucket):
        base = base.where(exp.column("bucket").eq(exp.Literal.string(bucket)))
    elif ns is not None:
        base = base.where(sqlglot.parse_one(
            "bucket IN (SELECT bucket.name FROM bucket WHERE 'b_' || replace(replace(bucket.name, '-', '_'), '.', '_') = "
            + f"'{ns}')", read="sqlite"))  # fmt: skip
    elif use.kind == "annotation":
        base = base.where(sqlglot.parse_one("bucket IN (SELECT bucket.name FROM bucket)", read="sqlite"))
    elif use.kind == "journal":
        return exp.to_table("journal")
    return exp.Subquery(this=base)


def _path_literal(path: exp.Expr) -> exp.Expr:
    """Back from sqlglot's parsed JSONPath to Trino path text (``$.a["b c"][0]``)."""
    if not isinstance(path, exp.JSONPath):
        return path
    text = ""
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            text += "$"
        elif isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
            key = part.this
            text += (
                f".{key}"
                if key.replace("_", "a").replace(":", "a").isalnum()
                else '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
            )
        elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
            text += f"[{part.this}]"
        else:
            raise QueryError(
                f"JSON path {path.sql(dialect=DIALECT)} is not supported: use '.key', '[0]' or '[\"key\"]'"
            )
    return exp.Literal.string(text)


def _call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _type_name(data_type: exp.DataType) -> str:
    name = data_type.this.name if hasattr(data_type.this, "name") else str(data_type.this)
    return {"INT": "INTEGER", "TEXT": "VARCHAR"}.get(name, name)


def _cast(node: exp.Cast) -> exp.Expr:
    strict = exp.Literal.number(0 if isinstance(node, exp.TryCast) else 1)
    to = node.args["to"]
    if to.is_type(exp.DataType.Type.ARRAY):
        inner = to.expressions[0] if to.expressions else None
        if inner is None or not inner.is_type(exp.DataType.Type.JSON):
            raise QueryError(f"{node.sql(dialect=DIALECT)}: the local engine casts to ARRAY(JSON) only")
        return _call("trino_cast_json_array", node.this, strict)
    return _call("trino_cast", node.this, exp.Literal.string(_type_name(to)), strict)


def _native_cast(node: exp.Cast, translate) -> exp.Expr | None:
    """A CAST in SQLite's own functions where :mod:`.native` proves it gives Trino's value."""
    strict = not isinstance(node, exp.TryCast)
    to, value = node.args["to"], node.this
    if to.is_type(exp.DataType.Type.ARRAY):
        inner = to.expressions[0] if to.expressions else None
        if isinstance(value, exp.JSONExtract) and inner is not None and inner.is_type(exp.DataType.Type.JSON):
            return native.cast_json_array(value.this.transform(translate), _path_literal(value.expression), strict)
        return None
    if isinstance(value, exp.JSONExtractScalar):
        return native.cast_json_scalar(
            value.this.transform(translate), _path_literal(value.expression), _type_name(to), strict
        )
    return native.cast_column(value.transform(translate), _type_name(to), strict)


def _finished(tree: exp.Expr) -> exp.Expr:
    """Mark a translated tree as SQLite already, so it is never rewritten a second time."""
    for node in tree.walk():
        node.meta["final"] = True
    return tree


def _interval(node: exp.Binary) -> exp.Expr | None:
    left, right = node.this, node.expression
    if not isinstance(right, exp.Interval):
        if isinstance(left, exp.Interval) and isinstance(node, exp.Add):
            left, right = right, left
        else:
            return None
    amount = right.this
    unit = right.args.get("unit")
    unit_name = unit.name if unit is not None else ""
    if not unit_name and isinstance(amount, exp.Literal) and " " in amount.name:  # INTERVAL '1 day'
        number, unit_name = amount.name.split(None, 1)
        amount = exp.Literal.number(number)
    if not unit_name:
        raise QueryError(f"interval {right.sql(dialect=DIALECT)} needs a unit, e.g. interval '1' day")
    if isinstance(node, exp.Sub):
        amount = exp.Neg(this=amount)
    return _call("trino_add_interval", left, amount, exp.Literal.string(unit_name.upper()))


def _lambda_match(node: exp.Anonymous, counter: list[int]) -> exp.Expr:
    """``any_match/all_match/none_match(array, x -> pred)`` as EXISTS over ``json_each``."""
    kind = node.name.lower()
    if len(node.expressions) != 2 or not isinstance(node.expressions[1], exp.Lambda):
        raise QueryError(f"{kind}(array, x -> predicate) takes an array and a lambda")
    array, function = node.expressions
    (param,) = function.expressions or [None]
    if param is None:
        raise QueryError(f"{kind}: the lambda needs one parameter")
    counter[0] += 1
    alias = f"_each{counter[0]}"
    name = param.name.lower()

    def bind(n: exp.Expr) -> exp.Expr:
        # sqlglot leaves a lambda's parameter as a bare Identifier (or a Column when qualified-less)
        if isinstance(n, exp.Column) and not n.table and n.name.lower() == name:
            return native.json_element(alias)
        if (
            type(n) is exp.Identifier
            and n.name.lower() == name
            and not isinstance(n.parent, (exp.Column, exp.Table, exp.TableAlias, exp.Alias))
        ):
            return native.json_element(alias)
        return n

    predicate = function.this.copy().transform(bind)
    if kind == "all_match":
        predicate = exp.Not(this=exp.Paren(this=predicate))
    source = exp.Table(this=_call("json_each", array.copy()), alias=exp.TableAlias(this=exp.to_identifier(alias)))
    exists = exp.Exists(this=exp.select("1").from_(source).where(predicate))
    result: exp.Expr = exp.Not(this=exists) if kind in ("all_match", "none_match") else exists
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=array.copy(), expression=exp.Null()), true=exp.Null())], default=result
    )


def _unnest_joins(tree: exp.Expr, counter: list[int]) -> None:
    """``CROSS JOIN UNNEST(array) AS t(x)`` → ``JOIN json_each(array) AS t``, ``x`` → the element."""
    for unnest in list(tree.find_all(exp.Unnest)):
        if len(unnest.expressions) != 1:
            raise QueryError("UNNEST of one array at a time is supported by the local engine")
        alias_node = unnest.args.get("alias")
        counter[0] += 1
        alias = alias_node.name if alias_node is not None and alias_node.name else f"_unnest{counter[0]}"
        columns = [c.name.lower() for c in alias_node.columns] if alias_node is not None else []
        if len(columns) > 1:
            raise QueryError("UNNEST AS t(x): one column per array on the local engine")
        scope = unnest.parent_select or tree
        if columns:
            column = columns[0]

            def bind(n: exp.Expr, column=column, alias=alias) -> exp.Expr:
                if (
                    isinstance(n, exp.Column)
                    and n.name.lower() == column
                    and (not n.table or n.table.lower() == alias.lower())
                ):
                    return native.json_element(alias)
                return n

            for part in ("expressions", "where", "group", "having", "order", "joins"):
                value = scope.args.get(part)
                if value is None:
                    continue
                items: list[exp.Expr] = value if isinstance(value, list) else [value]
                for item in items:
                    if item is unnest.parent:
                        on = item.args.get("on")
                        if on is not None:
                            on.replace(on.transform(bind))
                        continue
                    item.replace(item.transform(bind))
        source = exp.Table(
            this=_call("json_each", unnest.expressions[0].copy()), alias=exp.TableAlias(this=exp.to_identifier(alias))
        )
        unnest.replace(source)


_RENAMED_FUNCTIONS = {
    "json_array_length": "trino_json_array_length",
    "json_size": "trino_json_size",
    "cardinality": "trino_json_array_length",
    "regexp_like": "trino_regexp_like",
}


def to_sqlite(query: Query, *, bucket: str | None = None) -> str:
    """The query in SQLite's dialect with Athena's semantics, over the catalogue's tables."""
    try:
        return _translate(query, bucket)
    except RecursionError:  # a long chain (a AND b AND …) nests without parentheses
        raise _too_deep() from None


def _translate(query: Query, bucket: str | None) -> str:
    scope = query.namespace_for(bucket)
    tree: exp.Expr = query.tree.copy()
    ctes = _cte_names(tree)
    sources = {t.alias_or_name.lower() for t in tree.find_all(exp.Table)} | ctes
    journal_aliases = set()
    for table in _tables(tree):
        use = _classify(table, ctes)
        if use is None:
            continue
        if use.kind == "journal":
            journal_aliases.add(table.alias_or_name.lower())
        alias = _alias_for(table)
        source = _local_source(use, use.namespace or scope, bucket)
        if isinstance(source, exp.Subquery):
            source = source.as_(alias or use.kind)
        elif alias:
            source = source.as_(alias)
        table.replace(source)

    counter = [0]
    _unnest_joins(tree, counter)

    def rewrite(node: exp.Expr) -> exp.Expr:
        if node.meta.get("final"):
            return node
        # journal.annotation is a STRUCT(name) on AWS and JSON text {"name": ...} locally (R17.9).
        if isinstance(node, exp.Column) and journal_aliases and node.table.lower() == "annotation":
            owner = node.args.get("db")
            if (owner is not None and owner.name.lower() in journal_aliases) or (
                owner is None and "annotation" not in sources
            ):
                column = exp.column("annotation", table=owner.name if owner is not None else None)
                # the catalogue writes this column itself, always valid JSON or NULL: SQLite's own function
                value: exp.Expr = exp.Anonymous(
                    this="json_extract", expressions=[column, exp.Literal.string(f'$."{node.name}"')]
                )
                value.meta["final"] = True
                if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
                    value = exp.alias_(value, node.name)  # the column is called `name`, as on Athena
                    value.meta["final"] = True
                return value
        if isinstance(node, exp.JSONExtractScalar):
            path = _path_literal(node.expression)
            return native.json_extract_scalar(node.this, path) or _call("trino_json_extract_scalar", node.this, path)
        if isinstance(node, exp.JSONExtract):
            return _call("trino_json_extract", node.this, _path_literal(node.expression))
        if isinstance(node, exp.JSONArrayContains):
            return _call("trino_json_array_contains", node.this, node.expression)
        if isinstance(node, exp.ParseJSON):
            return _call("trino_json_parse", node.this)
        if isinstance(node, exp.JSONFormat):
            return node.this
        if isinstance(node, exp.ArraySize):
            return _call("trino_json_array_length", node.this)
        if isinstance(node, (exp.ArgMax, exp.ArgMin)):
            value, key = node.this.transform(rewrite_deep), node.expression.transform(rewrite_deep)
            name = "trino_max_by" if isinstance(node, exp.ArgMax) else "trino_min_by"
            return native.max_by(node, value, key) or _finished(_call(name, value, key))
        if isinstance(node, exp.RegexpLike):
            return _call("trino_regexp_like", node.this, node.expression)
        if isinstance(node, exp.RegexpExtract):
            args = [node.this, node.expression] + ([node.args["group"]] if node.args.get("group") else [])
            return _call("trino_regexp_extract", *args)
        if isinstance(node, (exp.Lower, exp.Upper)):
            value = node.this.transform(rewrite_deep)
            upper = isinstance(node, exp.Upper)
            return native.change_case(value, upper) or _finished(
                _call("trino_upper" if upper else "trino_lower", value)
            )
        if isinstance(node, exp.Cast):
            return _native_cast(node, rewrite_deep) or _cast(node)
        if isinstance(node, (exp.Add, exp.Sub)):
            return _interval(node) or node
        if isinstance(node, exp.Interval):
            raise QueryError(
                f"{node.sql(dialect=DIALECT)}: an interval must be added to or subtracted from a date/timestamp"
            )
        if isinstance(node, exp.CurrentTimestamp):
            return _call("trino_current_timestamp")
        if isinstance(node, exp.Try):
            raise QueryError("try() is not supported by the local engine: use TRY_CAST")
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name in ("any_match", "all_match", "none_match"):
                return _lambda_match(node, counter)
            if name in _RENAMED_FUNCTIONS:
                return _call(_RENAMED_FUNCTIONS[name], *node.expressions)
        return node

    def rewrite_deep(node: exp.Expr) -> exp.Expr:
        # sqlglot's transform does not descend into a node it was handed back: do it here, so
        # e.g. the CAST inside any_match's array or a lower() inside json_extract_scalar is translated.
        new = rewrite(node)
        if new is node or new.meta.get("final"):
            return new
        return new.transform(rewrite_deep)

    tree = tree.transform(rewrite_deep)
    if (json_extract_path := tree.find(exp.JSONPath)) is not None:  # pragma: no cover - defensive
        raise QueryError(f"unsupported JSON expression near {json_extract_path.sql(dialect=DIALECT)}")
    return tree.sql(dialect="sqlite")
