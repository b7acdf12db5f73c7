"""The child mode's words in the child's language, from gettext translation files read by Babel.

English is written in the code (the message ids); each other language is one file,
`pwa/locale/<code>/LC_MESSAGES/child_mode.po`, read as it is (no compiled .mo to keep in step): an authority
adds a language by adding a file, translated from `pwa/locale/child_mode.pot`. A message not yet translated,
or marked fuzzy, shows in English.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "child_mode"
SOURCE_LANGUAGE = "en"


def _po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalog(language: str) -> Catalog | None:
    """The language's translations, or None for English or a language with no file."""
    path = _po_path(language)
    if language == SOURCE_LANGUAGE or "/" in language or not path.is_file():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def languages() -> dict[str, str]:
    """The languages a child can choose: code -> the language's name in itself ("Cymraeg")."""
    codes = [SOURCE_LANGUAGE] + sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return {code: (Locale.parse(code).get_display_name(code) or code).capitalize() for code in dict.fromkeys(codes)}


def translate(language: str, message: str) -> str:
    """`message` (English) in `language`; English when it has no translation there."""
    found = catalog(language)
    entry = found.get(message) if found is not None else None
    if entry is None or entry.fuzzy or not isinstance(entry.string, str) or not entry.string:
        return message
    return entry.string


def speech_lang(language: str) -> str:
    """The BCP 47 tag the browser's speech synthesis and the page's `lang` use: "cy", "en-GB"."""
    return "en-GB" if language == SOURCE_LANGUAGE else language.replace("_", "-")


def catalogue(language: str) -> dict[str, str]:
    """The language's translated messages (English id -> words), as Babel reads them from its .po file: what
    the offline child screens (pwa/static/seen-child-offline.js) look their words up in. Empty for English."""
    found = catalog(language)
    if found is None:
        return {}
    return {str(m.id): m.string for m in found
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy}


def catalogues() -> dict[str, Any]:
    """Every language's catalogue, name and speech tag: generated from the .po files when the offline page is
    made, so the offline child screens never keep a copy of their own."""
    return {"names": languages(), "speech": {code: speech_lang(code) for code in languages()},
            "texts": {code: catalogue(code) for code in languages() if code != SOURCE_LANGUAGE}}
