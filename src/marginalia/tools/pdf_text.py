"""Text of a PDF made safe and plain: valid Unicode, author lists split into names.

Shared by :mod:`marginalia.tools.pdf` (the text layer, the metadata) and
:mod:`marginalia.tools.pdf_layout` (the layout's lines), so neither imports the other's internals.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["split_authors", "valid_text"]

_SURROGATE = re.compile("[\\ud800-\\udfff]")
#: Mathematical Alphanumeric Symbols (U+1D400-U+1D7FF): styled letters and digits of formulas.
_MATH_ALPHANUMERIC = re.compile("[\\U0001d400-\\U0001d7ff]")


def valid_text(raw: str) -> str:
    """``raw`` as text that encodes to UTF-8: what a PDF's text layer gives, made safe to store.

    A font's ToUnicode map may give half of a UTF-16 surrogate pair per glyph (papers set in
    mathematical alphabets do: ``\\ud835`` then ``\\udc9c`` for 𝒜), and pypdf returns each half as
    its own code point; one unpaired half is enough for every JSON write of the text to fail.
    Adjacent halves are joined into the character they encode, halves left alone are dropped
    (they name no character), and mathematical alphanumerics become the plain letters and
    digits they style (𝒜 -> A, 𝓁 -> l), which is how the text reads and is searched.
    """
    if _SURROGATE.search(raw):
        paired = raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        raw = paired.replace("\ufffd", "")
    if _MATH_ALPHANUMERIC.search(raw):
        raw = _MATH_ALPHANUMERIC.sub(lambda m: unicodedata.normalize("NFKC", m.group()), raw)
    return raw


def split_authors(value: str) -> list[str]:
    """``"A ; B"``, ``"A, B and C"``, ``"A {et al.}"`` -> a list of names."""
    value = re.sub(r"[{(\[]?\bet al\.?[})\]]?", "", value)
    parts = re.split(r"\s*;\s*|\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*", value)
    names = [p.strip(" .") for p in parts if p.strip(" .")]
    # "Tully, N. E." style (surname, initials): the split would tear names apart; keep as one.
    if any(re.fullmatch(r"(?:[A-Z]\.\s*)+", n) for n in names):
        return [value.strip()]
    return names
