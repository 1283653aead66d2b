"""What every search backend returns: named columns and typed rows, ready for a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    engine: str  # "sqlite" | "athena"
    sql: str  # the statement the engine ran (after translation)
    truncated: bool = False  # more rows than the limit asked for
    notes: list[str] = field(default_factory=list)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def to_json(self) -> str:
        return json.dumps(
            {"columns": self.columns, "rows": self.as_dicts(), "engine": self.engine, "truncated": self.truncated,
             "notes": self.notes},
            ensure_ascii=False, default=str, indent=2,
        )  # fmt: skip

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(["" if v is None else v for v in row] for row in self.rows)
        return out.getvalue()

    def uris(self) -> list[str]:
        """``s3://bucket/key`` of each row that has both columns (deduplicated, in order)."""
        if "object_key" in self.columns:
            key_col = "object_key"
        elif "key" in self.columns:
            key_col = "key"
        else:
            return []
        if "bucket" not in self.columns:
            return []
        seen: dict[str, None] = {}
        for row in self.as_dicts():
            if row["bucket"] is not None and row[key_col] is not None:
                seen.setdefault(f"s3://{row['bucket']}/{row[key_col]}", None)
        return list(seen)
