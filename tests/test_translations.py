"""The zh_CN translation is complete, keeps its sources' placeholders, is compiled and reaches the CLI.

When a test here fails after a message changed, run `python locale/update.py`,
translate the entries it lists in locale/zh_CN/LC_MESSAGES/tvcat.po, and run
it again to compile the .mo.
"""

import importlib.util
import io
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "locale"
TEMPLATE_PATH = LOCALE_DIR / "tvcat.pot"
PO_PATH = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "tvcat.po"
MO_PATH = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "tvcat.mo"
README = ROOT / "README.md"
README_ZH = ROOT / "README.zh-CN.md"

FIX_HINT = "run `python locale/update.py`, translate the listed entries in the .po, then run it again"

# Variables that choose a language. run_cli removes them, and each test sets the ones it needs.
LANGUAGE_VARIABLES = ("TVCAT_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def load_update_script():
    """Import locale/update.py, which is a script and not a module of the package."""
    spec = importlib.util.spec_from_file_location("tvcat_locale_update", LOCALE_DIR / "update.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


update = load_update_script()


def read_catalog(path: Path) -> Catalog:
    with open(path, "rb") as file:
        return read_po(file)


@pytest.fixture(scope="module")
def translation() -> Catalog:
    return read_catalog(PO_PATH)


def untranslated_entries(extracted: Catalog, translation: Catalog) -> dict[str, list[str]]:
    """Sort the extracted messages that lack a usable zh_CN entry by the reason."""
    problems: dict[str, list[str]] = {"missing": [], "untranslated": [], "fuzzy": []}
    for message in extracted:
        if not message.id:
            continue
        entry = translation.get(message.id, message.context)
        msgid = update.singular_id(message)
        if entry is None:
            problems["missing"].append(msgid)
            continue
        forms = entry.string if isinstance(entry.string, (list, tuple)) else (entry.string,)
        if not all(forms):
            problems["untranslated"].append(msgid)
        if entry.fuzzy:
            problems["fuzzy"].append(msgid)
    return problems


def test_package_messages_translated(translation):
    problems = untranslated_entries(update.package_messages(), translation)
    assert not problems["missing"], f"messages missing from {PO_PATH.name}; {FIX_HINT}: {problems['missing']}"
    assert not problems["untranslated"], f"messages without a translation; {FIX_HINT}: {problems['untranslated']}"
    assert not problems["fuzzy"], f"fuzzy translations to check; {FIX_HINT}: {problems['fuzzy']}"


def test_click_messages_translated(translation):
    recorded = update.recorded_click_version(TEMPLATE_PATH)
    installed = update.click_version()
    if recorded != installed:
        pytest.skip(f"tvcat.pot contains the messages of click {recorded}, but click {installed} is installed; "
                    "run `python locale/update.py` and translate what it lists")
    problems = untranslated_entries(update.click_messages(), translation)
    assert not problems["missing"], f"click messages missing from {PO_PATH.name}; {FIX_HINT}: {problems['missing']}"
    assert not problems["untranslated"], f"click messages without a translation: {problems['untranslated']}"
    assert not problems["fuzzy"], f"fuzzy click translations to check: {problems['fuzzy']}"


def test_template_matches_sources():
    """tvcat.pot lists exactly the messages that update.py extracts now."""
    if update.recorded_click_version(TEMPLATE_PATH) != update.click_version():
        pytest.skip("tvcat.pot was made with another click version")
    committed = {update.singular_id(message) for message in read_catalog(TEMPLATE_PATH) if message.id}
    extracted = {update.singular_id(message) for message in update.build_template(None) if message.id}
    assert sorted(extracted - committed) == [], f"messages missing from tvcat.pot; {FIX_HINT}"
    assert sorted(committed - extracted) == [], f"tvcat.pot lists messages no longer in the source; {FIX_HINT}"


def brace_fields(text: str) -> list[str]:
    """Return the replacement fields of a str.format template, such as `{value!r}` or `{seconds:.2f}`."""
    fields = []
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        field = name
        if conversion:
            field += "!" + conversion
        if spec:
            field += ":" + spec
        fields.append("{" + field + "}")
    return sorted(fields)


def percent_fields(text: str) -> list[str]:
    """Return the named %-style fields, such as `%(prog)s`."""
    return sorted(re.findall(r"%\(\w+\)[a-z]", text))


def translated_pairs(translation: Catalog):
    """Yield (msgid, source text, translated text) for every translated form.

    zh_CN has one plural form, used for every count, so it must carry the
    fields of the plural msgid, which every caller formats.
    """
    for message in translation:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            for form in message.string:
                if form:
                    yield message.id[0], message.id[1], form
        elif message.string:
            yield message.id, message.id, message.string


def test_translation_keeps_brace_fields(translation):
    for msgid, source, translated in translated_pairs(translation):
        try:
            fields = brace_fields(translated)
        except ValueError as error:
            pytest.fail(f"translation of {msgid!r} is not a valid format string ({error}): {translated!r}")
        assert fields == brace_fields(source), f"fields differ in the translation of {msgid!r}: {translated!r}"


def test_translation_keeps_percent_fields(translation):
    for msgid, source, translated in translated_pairs(translation):
        assert percent_fields(translated) == percent_fields(source), (
            f"%-fields differ in the translation of {msgid!r}: {translated!r}")


def test_help_examples_kept_verbatim(translation):
    """Click prints the paragraph after a \\b line unwrapped, and the example commands there must stay runnable."""
    for msgid, source, translated in translated_pairs(translation):
        assert translated.count("\b") == source.count("\b"), f"\\b markers differ in the translation of {msgid!r}"
        unwrapped = source.split("\b\n", 1)[1] if "\b\n" in source else ""
        commands = [line for line in unwrapped.splitlines() if line.strip().startswith("tvcat ")]
        for command in commands:
            assert command in translated.splitlines(), f"example {command!r} changed in the translation of {msgid!r}"


def test_plural_forms_header(translation):
    assert translation.num_plurals == 1
    assert translation.plural_expr == "0"


def message_table(catalog: Catalog) -> dict:
    """Map each msgid to its translation, with plural ids and forms as tuples."""
    def hashable(value):
        return tuple(value) if isinstance(value, list) else value

    return {hashable(message.id): hashable(message.string) for message in catalog if message.id}


def test_mo_compiled_from_po():
    # Compared entry by entry, not byte by byte, because the compiled header
    # names the Babel version that wrote it.
    committed = read_mo(io.BytesIO(MO_PATH.read_bytes()))
    compiled = read_mo(io.BytesIO(update.compile_mo(PO_PATH.read_bytes())))
    committed_table = message_table(committed)
    compiled_table = message_table(compiled)
    stale = sorted(str(msgid) for msgid in compiled_table if committed_table.get(msgid) != compiled_table[msgid])
    extra = sorted(str(msgid) for msgid in committed_table.keys() - compiled_table.keys())
    assert not stale, f"{MO_PATH.name} lacks or differs on these entries of the .po; run `python locale/update.py`: {stale}"
    assert not extra, f"{MO_PATH.name} has entries the .po lacks; run `python locale/update.py`: {extra}"
    assert committed.mime_headers == compiled.mime_headers


def run_cli(tmp_path: Path, arguments: list[str], language_variables: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `tvcat ARGUMENTS` in a subprocess with only the given language variables set."""
    environment = {name: value for name, value in os.environ.items() if name not in LANGUAGE_VARIABLES}
    environment.update(language_variables)
    environment.update({
        "TVCAT_REPO": str(tmp_path / "repo"),
        "TVCAT_CACHE": str(tmp_path / "cache.db"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    })
    return subprocess.run(
        [sys.executable, "-m", "tvcat.cli.main", *arguments],
        env=environment, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )


def test_cli_help_in_chinese(tmp_path):
    result = run_cli(tmp_path, ["--lang", "zh_CN", "--help"], {})
    assert result.returncode == 0, result.stderr
    assert "用法:" in result.stdout
    assert "选项:" in result.stdout
    assert "命令:" in result.stdout
    assert "显示此帮助信息并退出。" in result.stdout
    assert "退出状态：0 成功" in result.stdout
    assert "Usage:" not in result.stdout


def test_cli_version_help_in_chinese(tmp_path):
    result = run_cli(tmp_path, ["--lang", "zh_CN", "--help"], {})
    assert "Show the version and exit." not in result.stdout


def test_cli_command_help_in_chinese(tmp_path):
    result = run_cli(tmp_path, ["--lang", "zh_CN", "backup", "--help"], {})
    assert result.returncode == 0, result.stderr
    assert "将 K 线缓存备份到仓库。" in result.stdout
    assert "示例：" in result.stdout
    assert "  tvcat backup --type full\n" in result.stdout
    assert "[默认值：incremental]" in result.stdout


def test_cli_error_in_chinese(tmp_path):
    export = tmp_path / "BINANCE_BTCUSDT, 60.csv"
    export.write_text("time,open,high,low,close,Volume\n1714521600,1,2,0.5,1.5,10\n", encoding="utf-8")
    imported = run_cli(tmp_path, ["--lang", "zh_CN", "import", str(export)], {})
    assert imported.returncode == 0, imported.stderr
    assert "品种代码" in imported.stdout

    result = run_cli(tmp_path, ["--lang", "zh_CN", "restore", "--at", "notatime"], {})
    assert result.returncode == 3
    assert result.stderr.startswith("tvcat：错误：无效的时间 'notatime'：")


def test_cli_usage_error_in_chinese(tmp_path):
    result = run_cli(tmp_path, ["--lang", "zh_CN", "restore", "--forc"], {})
    assert result.returncode == 2
    assert "错误：没有选项 '--forc'。" in result.stderr
    assert "运行 'tvcat restore --help' 查看帮助。" in result.stderr


@pytest.mark.parametrize("language_variables", [
    {"LANGUAGE": "zh_CN"},
    {"LANG": "zh_CN.UTF-8"},
], ids=["LANGUAGE", "LANG"])
def test_cli_locale_selects_chinese(tmp_path, language_variables):
    result = run_cli(tmp_path, ["--help"], language_variables)
    assert result.returncode == 0, result.stderr
    assert "用法:" in result.stdout
    assert "退出状态：0 成功" in result.stdout


def test_cli_english_without_locale(tmp_path):
    result = run_cli(tmp_path, ["--help"], {"LANG": "C"})
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "Exit status: 0 success" in result.stdout


def markdown_outline(text: str) -> tuple[list[str], list[str]]:
    """Return the heading markers (`#`, `##`, ...) and the fenced code blocks of a Markdown text."""
    headings, blocks = [], []
    block: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if block is None:
                block = [line]
            else:
                block.append(line)
                blocks.append("".join(block))
                block = None
        elif block is not None:
            block.append(line)
        elif re.match(r"#{1,6} ", line):
            headings.append(line.split(" ", 1)[0])
    return headings, blocks


def test_readme_translation_has_same_headings():
    headings, _ = markdown_outline(README.read_text(encoding="utf-8"))
    translated_headings, _ = markdown_outline(README_ZH.read_text(encoding="utf-8"))
    assert translated_headings == headings


def test_readme_translation_has_same_code_blocks():
    _, blocks = markdown_outline(README.read_text(encoding="utf-8"))
    _, translated_blocks = markdown_outline(README_ZH.read_text(encoding="utf-8"))
    assert len(translated_blocks) == len(blocks)
    for index, (block, translated) in enumerate(zip(blocks, translated_blocks)):
        assert translated == block, f"code block {index + 1} of {README_ZH.name} differs from {README.name}"
