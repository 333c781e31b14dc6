"""Message translation through gettext.

Every user-facing string goes through `_` (or `ngettext`). The language comes
from `set_language` (the CLI's `--lang`), else `TVCAT_LANG`, else the usual
locale variables (LANGUAGE, LC_ALL, LC_MESSAGES, LANG). English is the source
language, so a missing catalog falls back to the English text.
"""

import gettext
import os
from pathlib import Path

DOMAIN = "tvcat"
LOCALE_DIR = Path(__file__).parent / "locale"
SUPPORTED_LANGUAGES = ("en", "zh_CN")

_translation: gettext.NullTranslations = gettext.NullTranslations()


def normalize_language(language: str) -> str:
    """Map spellings such as `zh`, `zh-CN` or `zh_CN.UTF-8` to a catalog name."""
    base = language.split(".")[0].split("@")[0].replace("-", "_")
    if base.lower().startswith("zh"):
        return "zh_CN"
    return base


def _language_from_locale() -> str:
    """Return the message language of the locale variables, as POSIX orders them.

    LANGUAGE (its first entry) wins, then the first of LC_ALL, LC_MESSAGES
    and LANG that is set. C and POSIX mean English.
    """
    first_language = os.environ.get("LANGUAGE", "").split(":")[0]
    if first_language:
        return first_language
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return "en" if value in ("C", "POSIX") or value.startswith("C.") else value
    return "en"


def set_language(language: str | None = None) -> None:
    """Select the message catalog for this process.

    With no argument, read TVCAT_LANG and then the locale variables. An
    unknown language selects English without an error, as gettext does.
    """
    global _translation

    chosen = language or os.environ.get("TVCAT_LANG") or _language_from_locale()
    languages = [normalize_language(chosen)]
    # Click's own messages go through the global gettext domain, which reads
    # LANGUAGE, so setting it makes them follow the same choice.
    os.environ["LANGUAGE"] = languages[0]
    _translation = gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=languages or ["en"], fallback=True
    )


def bind_global_domain() -> None:
    """Route messages of libraries that use gettext's global domain (click) through tvcat's catalog."""
    gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(DOMAIN)


def _(message: str) -> str:
    """Translate `message` into the selected language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Translate a message whose form depends on `count`."""
    return _translation.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark `message` for extraction without translating it yet."""
    return message


set_language()
