"""Plain-language questions to read-only SQL, offline and deterministic (no model).

Keyword and field templates over what the agents write (``meeting_minutes``, ``summary``,
``transcript``, ``outline``; schemas in :mod:`marginalia.schemas`)::

    "which PDFs haven't been summarised yet?"         -> missing summary, keys ending .pdf
    "recordings with a transcript but no minutes"     -> missing meeting_minutes among transcribed objects
    "action items owned by Alice"                     -> one row per action item whose owner is Alice
    "meetings about EKS since June 9"                 -> minutes mentioning EKS dated 2026-06-09 or later
    "how many annotations of each name?"              -> counts by name

Every answer is built with :mod:`marginalia.search.friendly` and checked by
:func:`marginalia.search.sql.parse` before it is returned. A chat model does the open-ended
version (``Engine.question_to_sql``); this module is what the offline engine delegates to.
"""

from __future__ import annotations

import datetime as dt
import re

from ..errors import QueryError
from . import friendly
from . import sql as sqlmod

NAMES = {
    "meeting_minutes": r"minute[sd]?|minuted|meetings?",
    "summary": r"summar(?:y|ies|i[sz]ed|i[sz]e)",
    "transcript": r"transcripts?|transcribed",
    "outline": r"outlines?|outlined",
}
SUFFIXES = {
    ".pdf": r"pdfs?|papers?",
    ".pptx": r"decks?|slides?|presentations?|pptx",
    ".mp4": r"videos?|mp4s?",
}
_NEGATION = r"(?:no|not|never|without|haven'?t|hasn'?t|isn'?t|aren'?t|missing|lacking|lack|yet to be|but no)"
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}  # fmt: skip
_STOP = set(
    "a an the of in on at to for by with and or but about which what who whose where when how show me list find all any "
    "is are was were be been being have has had do does did that this these those my our their its it there from since "
    "after before until between meeting meetings minutes summary summaries transcript transcripts recordings recording "
    "files file objects object documents document annotations annotation mention mentioning mentioned discussing "
    "regarding containing contain contains say says said talk talked talking please give".split()
)


def _today(today: dt.date | None) -> dt.date:
    return today or dt.datetime.now(dt.UTC).date()


def _date(text: str, today: dt.date) -> dt.date | None:
    """A date written as 2026-06-09, June 9 (2026), 9 June, today, yesterday."""
    text = text.strip().lower()
    if m := re.match(r"(\d{4})-(\d{2})-(\d{2})", text):
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    if text.startswith("today"):
        return today
    if text.startswith("yesterday"):
        return today - dt.timedelta(days=1)
    month_day = re.match(r"([a-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?", text)
    day_month = re.match(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3})[a-z]*\.?(?:,?\s+(\d{4}))?", text)
    if month_day and month_day[1] in _MONTHS:
        month, day, year = _MONTHS[month_day[1]], int(month_day[2]), month_day[3]
    elif day_month and day_month[2] in _MONTHS:
        month, day, year = _MONTHS[day_month[2]], int(day_month[1]), day_month[3]
    else:
        return None
    try:
        found = dt.date(int(year) if year else today.year, month, day)
    except ValueError:
        return None
    if not year and found > today:  # "since June 9" means the last June 9
        found = found.replace(year=found.year - 1)
    return found


def _date_conditions(question: str, today: dt.date) -> tuple[list[tuple[str, dt.date]], str]:
    """(op, date) bounds in the question, and the question with them removed."""
    bounds = []
    if m := re.search(r"\b(?:in the )?(?:last|past)\s+(\d+)\s+(day|week|month)s?\b", question, re.I):
        days = int(m[1]) * {"day": 1, "week": 7, "month": 30}[m[2].lower()]
        bounds.append((">=", today - dt.timedelta(days=days)))
        question = question.replace(m[0], " ")
    elif m := re.search(r"\b(this|last) week\b", question, re.I):
        start = today - dt.timedelta(days=today.weekday()) - dt.timedelta(days=7 if m[1].lower() == "last" else 0)
        bounds.append((">=", start))
        if m[1].lower() == "last":
            bounds.append(("<", start + dt.timedelta(days=7)))
        question = question.replace(m[0], " ")
    date_text = r"(\d{4}-\d{2}-\d{2}|today|yesterday|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?|\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]{3,9}(?:,?\s+\d{4})?)"
    for words, op in ((r"since|after|from|starting", ">="), (r"before|until|till|prior to", "<"), (r"on", "=")):
        for m in list(re.finditer(rf"\b(?:{words})\s+{date_text}", question, re.I)):
            found = _date(m[1], today)
            if found is not None:
                bounds.append((op, found))
                question = question.replace(m[0], " ")
    return bounds, question


def _names_in(question: str) -> list[tuple[int, str, bool]]:
    """(position, annotation name, negated?) for each annotation the question mentions."""
    found = []
    for name, pattern in NAMES.items():
        for m in re.finditer(rf"\b(?:{pattern})\b", question, re.I):
            before = question[max(0, m.start() - 40) : m.start()]
            negated = bool(re.search(rf"\b{_NEGATION}\b[^,;]*$", before, re.I)) and not re.search(
                r"\bbut\s+(?:a|an|with)?\s*$", before, re.I
            )
            found.append((m.start(), name, negated))
    found.sort()
    return found


def _person(question: str) -> str | None:
    patterns = (
        r"(?:owned by|assigned to|belonging to|owner(?: is)?|for|by)\s+([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?)",
        r"\b([A-Z][\w-]+)'s\s+(?:action items|tasks|to-?dos)",
    )
    for pattern in patterns:
        if m := re.search(pattern, question):
            return m[1]
    return None


def _topic_words(question: str) -> list[str]:
    m = re.search(
        r"\b(?:about|on|mentioning|mention|regarding|discussing|containing|with the word|re)\s+(.+)$", question, re.I
    )
    text = m[1] if m else question
    words = re.findall(r"[\w][\w.+#/-]*", text)
    return [w for w in words if w.lower() not in _STOP and len(w) > 1 and not w.isdigit()]


def question_to_sql(question: str, *, schema: str | None = None, today: dt.date | None = None) -> str:
    """A validated read-only Athena query answering ``question`` (``schema`` is accepted for the
    Engine protocol; the offline templates know the annotation table already)."""
    if not question or not question.strip():
        raise QueryError('ask a question, e.g. "which PDFs haven\'t been summarised yet?"')
    today = _today(today)
    text = " ".join(question.split())
    lowered = text.lower()

    sql = _template(text, lowered, today)
    sqlmod.parse(sql)  # the same read-only check as a hand-written query
    return sql


def _template(text: str, lowered: str, today: dt.date) -> str:
    suffix = next((s for s, p in SUFFIXES.items() if re.search(rf"\b(?:{p})\b", lowered)), None)
    bounds, rest = _date_conditions(text, today)
    names = _names_in(rest)

    # counts by name
    if re.search(r"\bhow many\b|\bcount\b|\bdistribution\b|\bper name\b|\beach name\b", lowered) and not names:
        return "SELECT name, count(*) AS n\nFROM annotation_table\nGROUP BY name\nORDER BY n DESC, name"

    # action items of a person
    if re.search(r"\b(?:action items?|tasks?|to-?dos?)\b", lowered):
        person = _person(text)
        clauses = ["a.name = 'meeting_minutes'"]
        if person:
            clauses.append(f"strpos(lower(json_extract_scalar(item, '$.owner')), {friendly.quote(person.lower())}) > 0")
        clauses += [
            f"json_extract_scalar(a.text_value, '$.date') {op} {friendly.quote(d.isoformat())}" for op, d in bounds
        ]
        return (
            "SELECT a.bucket, a.object_key, json_extract_scalar(a.text_value, '$.date') AS meeting_date,\n"
            "       json_extract_scalar(item, '$.owner') AS owner, json_extract_scalar(item, '$.task') AS task,\n"
            "       json_extract_scalar(item, '$.due') AS due\n"
            "FROM annotation_table a\n"
            "CROSS JOIN UNNEST(TRY_CAST(json_extract(a.text_value, '$.action_items') AS ARRAY(JSON))) AS t(item)\n"
            "WHERE " + "\n  AND ".join(clauses) + "\nORDER BY a.bucket, a.object_key"
        )

    negated = [n for _, n, neg in names if neg]
    present = [n for _, n, neg in names if not neg and n not in negated]
    if negated:  # "X with a transcript but no minutes", "PDFs not summarised"
        has = next((n for n in present if n != negated[0]), None)
        if (
            has is None
            and re.search(r"\brecordings?\b|\baudio\b|\bvideos?\b", lowered)
            and negated[0] == "meeting_minutes"
        ):
            has = "transcript"
        return friendly.missing_sql(negated[0], has=has, suffix=suffix)

    name = present[0] if present else None
    if name is None and suffix == ".pdf":
        name = "summary"
    where = []
    if bounds:
        field = "date" if name == "meeting_minutes" else None
        for op, d in bounds:
            if field:
                where.append(f"{field}{op}{d.isoformat()}")
    topics = _topic_words(rest)
    sql = friendly.find_sql(name, contains=None, where=where, suffix=suffix)
    extra = [f"strpos(lower(text_value), {friendly.quote(w.lower())}) > 0" for w in topics]
    if bounds and name != "meeting_minutes":
        extra += [
            f"last_modified_date {op} CAST({friendly.quote(d.isoformat())} AS TIMESTAMP)" if op != "=" else
            f"date(last_modified_date) = DATE {friendly.quote(d.isoformat())}"
            for op, d in bounds
        ]  # fmt: skip
    if not name and not topics and not bounds and not suffix:
        raise QueryError(
            f"could not turn {text!r} into a query offline: mention an annotation (minutes, summary, transcript), "
            "a topic ('about EKS'), a person's action items or a date — or use `marginalia find` / SQL"
        )
    if extra:
        head, order = sql.rsplit("\nORDER BY", 1)
        joiner = "\n  AND " if "\nWHERE " in head else "\nWHERE "
        sql = head + joiner + "\n  AND ".join(extra) + "\nORDER BY" + order
    return sql
