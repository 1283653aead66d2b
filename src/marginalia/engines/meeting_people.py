"""Who is who in a meeting: the speakers, and the people only talked about.

:meth:`People.resolve` turns a name as said ("Aisha", "aisha okafor", "Marketing", "[PERSON5]",
"Priya") into the person it names: a speaker (by full name, first name or role), a pseudonym
(``[PERSON5]`` -> ``PERSON5``, the spelling speakers have in ELITR transcripts), or someone who
never speaks but is named in the talk. A capitalised word counts as a name only when the
transcript never writes it in lower case and it is not a common word, a day or a month — so
"Production will …" is not an owner when "production" is also said as a word.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import lexrank
from . import text as nlp

__all__ = ["People"]

_PSEUDONYM = re.compile(r"^\[?([A-Z]+\d+)\]?$")
_NOT_NAMES = (
    {m.lower() for m in calendar.month_name if m}
    | {d.lower() for d in calendar.day_name}
    | set(
        """i everyone everybody someone somebody anyone anybody nobody team we you he she they it this that there
        okay ok yeah yes no so but and then well now also maybe just let lets let's please thanks thank sorry hi hello
        today tomorrow yesterday next last first second third one two three god oh ah um uh""".split()
    )
)


def _key(name: str) -> str:
    return " ".join(re.sub(r"[\[\]()]", "", name or "").lower().split())


@dataclass
class People:
    speakers: list[str]
    _by_key: dict[str, str] = field(default_factory=dict)
    _lower_words: set[str] = field(default_factory=set)
    _roles: dict[str, set[str]] = field(default_factory=dict)  # speaker -> role nouns ("designer")

    @classmethod
    def of(cls, speakers: Iterable[str], texts: Iterable[str]) -> People:
        """The people of a meeting with ``speakers``, whose cleaned sentences are ``texts``."""
        people = cls(list(dict.fromkeys(s for s in speakers if s)))
        for s in people.speakers:
            key = _key(s)
            people._by_key.setdefault(key, s)
            parts = key.split()
            if len(parts) > 1 and not _PSEUDONYM.match(s):
                people._by_key.setdefault(parts[0], s)
        texts = list(texts)
        for t in texts:
            people._lower_words.update(w for w in nlp.words(t) if w[:1].islower())
        people._learn_roles(texts)
        return people

    def _learn_roles(self, texts: list[str]) -> None:
        """Role nouns of speakers named by role: the last word of "Industrial Designer", and a
        capitalised word said right after the name ("the User Interface Designer will …")."""
        named = [s for s in self.speakers if len(s.split()) > 1 and not _PSEUDONYM.match(s)]
        if not named:
            return
        joined = "\n".join(texts)
        for s in named:
            roles = {s.split()[-1].lower()} if len(s.split()[-1]) > 2 else set()
            roles.update(m.lower() for m in re.findall(rf"\b{re.escape(s)}\s+([A-Z][a-z]+)\b", joined))
            self._roles[s] = roles

    def group(self, plural: str | None) -> list[str]:
        """The speakers a plural role names ("the two designers"), in speaking order."""
        if not plural or not plural.lower().endswith("s"):
            return []
        noun = plural.lower()[:-1]
        return [s for s in self.speakers if noun in self._roles.get(s, ())]

    def resolve(self, name: str | None) -> str | None:
        """The person ``name`` names, or None when it is not a person's name."""
        if not name:
            return None
        name = name.strip()
        if found := self._by_key.get(_key(name)):
            return found
        if m := _PSEUDONYM.match(name):
            return m.group(1) if m.group(1).startswith(("PERSON", "ANNOTATOR")) else None
        key = _key(name)
        for size in (2, 1):  # "User Interface Designer" -> "User Interface"; "Marketing Expert" -> "Marketing"
            head = " ".join(key.split()[:size])
            if head in self._by_key and len(key.split()) > size:
                return self._by_key[head]
        first = name.split()[0]
        low = first.lower()
        if (
            not first[:1].isupper()
            or not first.isalpha()
            or first.isupper()  # an acronym: EKS, LCD
            or len(first) < 3
            or low in _NOT_NAMES
            or low in lexrank.ENGLISH_STOP_WORDS
            or low in self._lower_words
        ):
            return None
        return self._by_key.get(low) or first

    def is_speaker(self, name: str | None) -> bool:
        return name in self.speakers
