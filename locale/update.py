"""Extract tvcat's messages, merge them into each translation and compile it.

Run it after changing any message, from any directory:

    python locale/update.py

It writes locale/tvcat.pot from the `_`, `N_` and `ngettext` calls in the
package's shipped .py files and in the installed click package, whose own
messages (Usage, Options, usage errors) tvcat's CLI shows through the same
catalog. It then merges the template into locale/<language>/LC_MESSAGES/tvcat.po:
existing translations are kept, new messages get an empty translation, and a
new message close to a known one gets that translation marked fuzzy. Finally
it compiles each .po to tvcat.mo, leaving out untranslated and fuzzy entries.

Fill in the empty entries, check the fuzzy ones and delete their `fuzzy` flag,
then run the script again to compile. A run that changes nothing rewrites no
file. Needs Babel (`pip install '.[test]'`).
"""

import datetime
import io
import re
import sys
import tomllib
from pathlib import Path

import click
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

LOCALE_DIR = Path(__file__).resolve().parent
PACKAGE_ROOT = LOCALE_DIR.parent
DOMAIN = "tvcat"
TEMPLATE_PATH = LOCALE_DIR / f"{DOMAIN}.pot"
TRANSLATED_LANGUAGES = ("zh_CN",)

# The names that mark a message in tvcat (see i18n.py) and in click, which
# imports gettext's `gettext as _` and `ngettext`.
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
# A comment starting with this tag just above a marked call reaches translators.
COMMENT_TAGS = ("TRANSLATORS:",)

# Messages that click passes to gettext through a variable, which extraction
# cannot see. In click 8.5, Option.get_help_record translates the "required"
# mark that Option.get_help_extra puts in an option's help.
CLICK_RUNTIME_MESSAGES = {"required": "click/core.py"}

# Babel's comment templates replace the upper-case words PROJECT, VERSION,
# YEAR and ORGANIZATION, so this text avoids them.
TEMPLATE_HEADER = """\
# Messages of tvcat, and of click {click_version}, which tvcat's CLI shows
# through the same catalog.
# This file is distributed under the same license as tvcat (MIT).
#"""
TRANSLATION_HEADER = """\
# {language} translation of tvcat's messages.
# This file is distributed under the same license as tvcat (MIT).
#"""


def read_pyproject() -> dict:
    with open(PACKAGE_ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def package_sources() -> list[Path]:
    """Return the .py files that the wheel ships, except this directory's.

    The list follows `only-include` of the hatch wheel target in
    pyproject.toml, so a module added there is extracted without a change here.
    """
    wheel = read_pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    sources: set[Path] = set()
    for entry in wheel["only-include"]:
        path = PACKAGE_ROOT / entry
        if path == LOCALE_DIR:
            continue
        if path.is_dir():
            sources.update(
                found for found in path.rglob("*.py") if "__pycache__" not in found.parts
            )
        elif path.suffix == ".py":
            sources.add(path)
    return sorted(sources)


def click_sources() -> list[Path]:
    """Return the .py files of the installed click package."""
    return sorted(Path(click.__file__).resolve().parent.rglob("*.py"))


def click_version() -> str:
    from importlib.metadata import version

    return version("click")


def recorded_click_version(template_path: Path) -> str | None:
    """Return the click version whose messages a template contains, from its header comment."""
    with open(template_path, "rb") as file:
        header = read_po(file).header_comment
    found = re.search(r"and of click (\S+), which", header)
    return found[1] if found else None


def extract_into(catalog: Catalog, paths: list[Path], relative_to: Path) -> None:
    """Add every marked message of `paths` to `catalog`, located relative to `relative_to`."""
    for path in paths:
        location = path.relative_to(relative_to).as_posix()
        found = extract_from_file(
            "python", str(path), keywords=KEYWORDS, comment_tags=COMMENT_TAGS,
            strip_comment_tags=True,
        )
        for lineno, message, comments, context in found:
            catalog.add(message, None, [(location, lineno)], auto_comments=comments, context=context)


def package_messages() -> Catalog:
    """Extract the messages of tvcat's own source."""
    catalog = Catalog(fuzzy=False)
    extract_into(catalog, package_sources(), PACKAGE_ROOT)
    return catalog


def click_messages() -> Catalog:
    """Extract the messages of the installed click."""
    catalog = Catalog(fuzzy=False)
    click_dir = Path(click.__file__).resolve().parent
    extract_into(catalog, click_sources(), click_dir.parent)
    for message, location in CLICK_RUNTIME_MESSAGES.items():
        catalog.add(message, None, [(location, None)])
    return catalog


def build_template(creation_date: datetime.datetime) -> Catalog:
    """Build the template: tvcat's messages first, then click's."""
    project = read_pyproject()["project"]
    template = Catalog(
        project=DOMAIN,
        version=project["version"],
        header_comment=TEMPLATE_HEADER.format(click_version=click_version()),
        creation_date=creation_date,
        charset="utf-8",
        fuzzy=False,
    )
    for source in (package_messages(), click_messages()):
        for message in source:
            if message.id:
                template.add(message.id, None, message.locations, auto_comments=message.auto_comments,
                             context=message.context)
    return template


def render_po(catalog: Catalog, template: bool = False) -> bytes:
    buffer = io.BytesIO()
    # File names without line numbers keep the catalog from changing with
    # every edit that only moves code.
    write_po(buffer, catalog, include_lineno=False, ignore_obsolete=template)
    return buffer.getvalue()


def compile_mo(po_bytes: bytes) -> bytes:
    """Compile .po text to .mo bytes, without untranslated and fuzzy entries."""
    catalog = read_po(io.BytesIO(po_bytes), abort_invalid=True)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def write_if_changed(path: Path, content: bytes) -> bool:
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def update_template() -> Catalog:
    """Write tvcat.pot, keeping its creation date when no message changed."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    if TEMPLATE_PATH.exists():
        with open(TEMPLATE_PATH, "rb") as file:
            previous_date = read_po(file).creation_date
        template = build_template(previous_date)
        if render_po(template, template=True) == TEMPLATE_PATH.read_bytes():
            return template
    template = build_template(now)
    write_if_changed(TEMPLATE_PATH, render_po(template, template=True))
    print(f"wrote {TEMPLATE_PATH.relative_to(PACKAGE_ROOT)}: {len(template)} messages")
    return template


def read_translation(language: str, po_path: Path) -> Catalog:
    """Read `po_path`, or start an empty catalog for `language` when it does not exist."""
    if not po_path.exists():
        return Catalog(
            locale=language,
            project=DOMAIN,
            header_comment=TRANSLATION_HEADER.format(language=language),
            last_translator="tvcat developers",
            language_team=f"tvcat developers ({language})",
            charset="utf-8",
            fuzzy=False,
        )
    with open(po_path, "rb") as file:
        catalog = read_po(file, locale=language, abort_invalid=True)
    # Bring obsolete entries back as candidates, so a message that returns
    # gets its old translation and a close one gets a fuzzy suggestion.
    # Catalog.update moves those still unused back to `obsolete`.
    for message in list(catalog.obsolete.values()):
        if message.id not in catalog:
            catalog[message.id] = message
    catalog.obsolete.clear()
    # Babel 2.19's read_po takes the `#| msgid` lines that `msgmerge --previous`
    # and PO editors write for a fuzzy entry as translator comments, which
    # would then stay on the entry forever, so drop them.
    for message in catalog:
        message.user_comments = [
            comment for comment in message.user_comments if not comment.startswith("|")
        ]
    return catalog


def update_translation(language: str, template: Catalog) -> Catalog:
    """Merge the template into the language's .po and compile its .mo."""
    messages_dir = LOCALE_DIR / language / "LC_MESSAGES"
    po_path = messages_dir / f"{DOMAIN}.po"
    mo_path = messages_dir / f"{DOMAIN}.mo"

    catalog = read_translation(language, po_path)
    catalog.project = template.project
    catalog.version = template.version
    previous = [message for message in catalog if message.id]
    catalog.update(template)
    # Catalog.update drops an old message that served as a fuzzy match. Keep
    # every checked translation that left as obsolete, so it comes back if its
    # message returns. Fuzzy ones are not kept, because Babel 2.19 writes
    # obsolete entries without their flags and the guess would return as checked.
    for message in previous:
        if message.id not in catalog and is_translated(message):
            catalog.obsolete[singular_id(message)] = message

    po_bytes = render_po(catalog)
    if write_if_changed(po_path, po_bytes):
        print(f"wrote {po_path.relative_to(PACKAGE_ROOT)}")
    if write_if_changed(mo_path, compile_mo(po_bytes)):
        print(f"wrote {mo_path.relative_to(PACKAGE_ROOT)}")
    return catalog


def report_open_entries(language: str, catalog: Catalog) -> int:
    """Print the entries still to translate or check, and return their count."""
    open_entries = [message for message in catalog if message.id and not is_translated(message)]
    translated = sum(1 for message in catalog if message.id) - len(open_entries)
    print(f"{language}: {translated} translated, {len(open_entries)} to translate or check")
    for message in open_entries:
        state = "fuzzy" if message.fuzzy else "untranslated"
        print(f"  {state}: {singular_id(message)!r}")
    return len(open_entries)


def singular_id(message) -> str:
    """Return the msgid, or the singular msgid of a message with plural forms."""
    return message.id if isinstance(message.id, str) else message.id[0]


def is_translated(message) -> bool:
    """Tell whether every form of `message` has a translation that is not fuzzy."""
    forms = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return not message.fuzzy and all(forms)


def main() -> int:
    template = update_template()
    open_count = 0
    for language in TRANSLATED_LANGUAGES:
        catalog = update_translation(language, template)
        open_count += report_open_entries(language, catalog)
    if open_count:
        print("Fill in the entries above in the .po file, delete their fuzzy flag, "
              "then run this script again to compile the .mo.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
