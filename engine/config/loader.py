"""Read a tvcat YAML configuration file into a Config, with errors that point at the file and line.

PyYAML composes the file into nodes, which keep their line numbers and
original text, and this module walks the nodes against the msgspec structs
of `schema`. Walking by hand, instead of `msgspec.convert`, lets an error
name the line and suggest the closest valid key. It also catches the YAML 1.1
readings that surprise people: `on`/`off`/`yes`/`no` as booleans, `23:30` as
the base-60 number 1410 and `010` as the octal number 8.

The loader reports every problem it finds in one InvalidConfig error.
"""

import difflib
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ...errors import InvalidInput
from ...i18n import N_, _
from . import checks, schema
from .schema import BACKUP_TYPE_NAMES, Config, ConfigFile
from .sources import (
    DEFAULT_SOURCE,
    ENVIRONMENTS_KEY,
    UNKNOWN_ENVIRONMENT,
    EnvironmentMark,
    EnvironmentValue,
    ValueSource,
    find_config_file,
    merge_nodes,
    overrides_as_nodes,
    selected_environment,
    source_of_node,
    split_environments,
)

KeyPath = tuple[str | int, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_OCTAL_PATTERN = re.compile(r"[-+]?0[0-7_]+")
_SIGNED_DECIMAL_PATTERN = re.compile(r"[-+]?[0-9]+")
# The texts an override variable may give for a boolean key.
_VARIABLE_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_DECIMAL_PATTERN = re.compile(r"0|[1-9][0-9]*")


class ConfigProblem(InvalidInput):
    """One invalid setting: where it is (file and line, or environment variable), which key and why."""

    template = N_("{place}: {key}: {reason}")


class InvalidConfig(InvalidInput):
    """A configuration with one or more invalid settings, each a ConfigProblem."""

    template = N_("invalid configuration {file}:\n{problems}")

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        super().__init__(file=file, problems=problems)
        self.problems = problems

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        listing = "\n".join(f"  {problem}" for problem in self.problems)
        return _(self.template).format(file=self.fields["file"], problems=listing)


class ConfigUnreadable(InvalidInput):
    """A configuration file that cannot be opened or is not valid YAML."""

    template = N_("cannot read the configuration file {file}: {reason}")


@dataclass(frozen=True)
class LoadedConfig:
    """The effective configuration, the file it came from and the source of every value."""

    config: Config
    # None when no file was found and only defaults and the environment apply.
    file: Path | None = None
    # Why this file was read: `--config`, a variable name, `working directory` or an XDG variable.
    file_reason: str | None = None
    # The environment section applied, and the variable that selected it.
    environment: tuple[str, str] | None = None
    sources: dict[KeyPath, ValueSource] = field(default_factory=dict)

    def source(self, path: KeyPath) -> ValueSource:
        return self.sources.get(tuple(path), DEFAULT_SOURCE)


def default_config() -> Config:
    """Return the configuration that applies when no file sets anything."""
    return Config()


def load_config(path: str | Path) -> Config:
    """Read, check and return the configuration in the YAML file at `path`.

    An empty file gives the defaults. The top-level `backup_schedule` key is
    an older spelling: each `NAME: {cron, retention_days}` entry becomes
    `schedule_config.backup_schedules.NAME.cron` and
    `backup_config.retention_policy.retention_days.TYPE`, where TYPE comes from
    the name (`full_backup` gives `full`). Every section under `environments`
    is checked as it would apply, but none is applied, and environment
    variables are ignored.

    Raises ConfigUnreadable when the file cannot be read or parsed, and
    InvalidConfig listing every invalid setting.
    """
    text = _read_file(Path(path))
    return load_config_text(text, file=str(path))


def load_config_text(text: str, file: str = "<string>") -> Config:
    """Check and return the configuration in the YAML `text`; `file` names it in errors."""
    root = _compose(text, file)
    base, environments = split_environments(root)
    config, _sources, problems = _convert(base, file)

    names = _environment_names(environments, file, problems)
    for name in names:
        overlay = _environment_node(environments, name)
        _config, _sources, section_problems = _convert(merge_nodes(base, overlay), file)
        problems.extend(problem for problem in section_problems if str(problem) not in map(str, problems))

    if problems:
        raise InvalidConfig(file, problems)
    return config


def load_effective_config(
    option: Path | None = None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> LoadedConfig:
    """Find, read and check the configuration that applies, with environment sections and overrides.

    `option` is the --config value. The file search order is that of
    `find_config_file`. With no file, the defaults apply. `TVCAT_ENV` or
    `SYNC_BACKUP_ENV` selects a section under `environments`, laid over the
    file's top level. Override variables apply last: the guide's
    SYNC_INTERVAL, BACKUP_DIR and MAX_CONCURRENT_TASKS, then every
    TVCAT_<SECTION>__<KEY> variable.

    Raises ConfigUnreadable when a named file is missing or unreadable, and
    InvalidConfig listing every invalid setting, including those of variables.
    """
    environ = os.environ if environ is None else environ
    location = find_config_file(option, environ, cwd or Path.cwd())
    file = str(location.path) if location else _("(no file)")
    text = _read_file(location.path, location.reason) if location else ""

    root = _compose(text, file)
    root, environments = split_environments(root)
    problems: list[ConfigProblem] = []
    selected = selected_environment(environ)
    if selected is not None and environments is not None:
        names = _environment_names(environments, file, problems)
        name, variable = selected
        if name in names:
            root = merge_nodes(root, _environment_node(environments, name))
        elif not problems:
            problems.append(_problem(environments.start_mark, file, (ENVIRONMENTS_KEY,), _(UNKNOWN_ENVIRONMENT).format(
                variable=variable, name=name, defined=", ".join(names) or _("none"),
            )))

    root = merge_nodes(root, overrides_as_nodes(environ))
    config, sources, convert_problems = _convert(root, file)
    problems.extend(convert_problems)
    if problems:
        raise InvalidConfig(file, problems)
    return LoadedConfig(
        config=config,
        file=location.path if location else None,
        file_reason=location.reason if location else None,
        environment=selected,
        sources=sources,
    )


def _read_file(path: Path, reason: str | None = None) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if reason is None:
            detail = _("file not found")
        else:
            detail = _("file not found; {reason} names it").format(reason=reason)
        raise ConfigUnreadable(file=str(path), reason=detail) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigUnreadable(file=str(path), reason=str(error)) from None


def _compose(text: str, file: str) -> MappingNode:
    """Return the root mapping node of `text`; an empty document gives an empty mapping."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ConfigUnreadable(file=file, reason=_describe_yaml_error(error)) from None
    if root is None:
        mark = Mark(file, 0, 0, 0, None, None)
        return MappingNode("tag:yaml.org,2002:map", [], mark, mark)
    if not isinstance(root, MappingNode):
        walker = _Walker(file)
        walker.report_type(root, (), _("a mapping of sections such as sync_config:"))
        raise InvalidConfig(file, walker.problems)
    return root


def _convert(root: MappingNode, file: str) -> tuple[Config | None, dict[KeyPath, ValueSource], list["ConfigProblem"]]:
    """Walk `root` against the schema; return the config (None if invalid), sources and problems."""
    walker = _Walker(file)
    config = None
    parsed = walker.convert(root, ConfigFile, ())
    if parsed is not _INVALID:
        config = walker.apply_legacy_schedule(parsed)
        config = walker.infer_schedule_types(config)
        walker.check_consistency(config)
    return config, walker.sources(), walker.problems


def _environment_names(environments: Node | None, file: str, problems: list["ConfigProblem"]) -> list[str]:
    """Return the section names under `environments`, reporting a value that is not a mapping of mappings."""
    if environments is None or _is_null(environments):
        return []
    if not isinstance(environments, MappingNode):
        problems.append(_problem(environments.start_mark, file, (ENVIRONMENTS_KEY,), _(
            "expected a mapping of environment names to settings, such as production: {{backup_config: ...}}"
        )))
        return []
    names = []
    for key_node, value_node in environments.value:
        if not isinstance(value_node, MappingNode):
            problems.append(_problem(value_node.start_mark, file, (ENVIRONMENTS_KEY, key_node.value), _(
                "expected a mapping of sections, such as sync_config:"
            )))
            continue
        names.append(key_node.value)
    return names


def _environment_node(environments: MappingNode, name: str) -> MappingNode:
    for key_node, value_node in environments.value:
        if key_node.value == name:
            return value_node
    raise KeyError(name)


def _problem(mark: Mark, file: str, path: KeyPath, reason: str) -> "ConfigProblem":
    if isinstance(mark, EnvironmentMark):
        place = _("environment variable {variable}").format(variable=mark.variable)
    else:
        place = _("{file}, line {line}, column {column}").format(file=file, line=mark.line + 1, column=mark.column + 1)
    return ConfigProblem(place=place, key=format_key_path(path), reason=reason)


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return _("line {line}, column {column}: {problem}").format(
            line=mark.line + 1, column=mark.column + 1, problem=error.problem
        )
    return str(error)


class _Invalid:
    """The result of converting a node that had a problem; the parent leaves the key out."""


_INVALID: Any = _Invalid()

# Names of YAML values for "found ..." in messages.
_KIND_NAMES = {
    bool: N_("the boolean"),
    int: N_("the integer"),
    float: N_("the number"),
    str: N_("the text"),
    type(None): N_("an empty value"),
}
_EXPECTED_NAMES = {
    bool: N_("true or false"),
    int: N_("an integer"),
    float: N_("a number"),
    str: N_("text"),
}


def format_key_path(path: KeyPath) -> str:
    """Return a key path such as `sync_config.priority_symbols[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


class _Walker:
    """Converts nodes to struct values and collects every problem on the way."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.nodes: dict[KeyPath, Node] = {}
        self.constructor = SafeConstructor()
        # Above zero while converting a secret, so messages do not show its value.
        self.hiding = 0

    # --- reporting

    def report(self, node: Node, path: KeyPath, reason: str) -> None:
        self.problems.append(_problem(node.start_mark, self.file, path, reason))

    def sources(self) -> dict[KeyPath, ValueSource]:
        """Return the source of every key the walk converted, by its node's mark."""
        return {path: source_of_node(node, self.file) for path, node in self.nodes.items()}

    def report_at(self, path: KeyPath, reason: str) -> None:
        """Report at the node of `path`, or of its nearest ancestor that the file contains."""
        for length in range(len(path), -1, -1):
            node = self.nodes.get(path[:length])
            if node is not None:
                self.report(node, path, reason)
                return

    def describe_found(self, node: Node) -> str:
        if self.hiding:
            return _("a hidden value")
        if isinstance(node, MappingNode):
            return _("a mapping")
        if isinstance(node, SequenceNode):
            return _("a list")
        value = self.constructor.construct_object(node)
        kind = _KIND_NAMES.get(type(value))
        if kind is None:
            # A date, binary or other YAML type: its source text is clearer than a Python repr.
            return repr(node.value)
        if value is None:
            return _(kind)
        return _("{kind} {value!r}").format(kind=_(kind), value=value)

    def report_type(self, node: Node, path: KeyPath, expected: str) -> None:
        self.report(
            node, path,
            _("expected {expected}, found {found}").format(expected=expected, found=self.describe_found(node)),
        )

    # --- conversion by type hint

    def convert(self, node: Node, hint: Any, path: KeyPath) -> Any:
        self.nodes[path] = node
        secret = is_secret(hint)
        self.hiding += secret
        try:
            return self.convert_value(node, hint, path)
        finally:
            self.hiding -= secret

    def convert_value(self, node: Node, hint: Any, path: KeyPath) -> Any:
        base, metas = _unwrap_annotated(hint)
        parser = _meta_extra(metas, "parse")
        if parser is not None:
            return self.convert_parsed(node, base, parser, path)

        origin = typing.get_origin(base)
        if origin in (typing.Union, types.UnionType):
            return self.convert_optional(node, base, path)

        if _is_null(node) and (origin in (tuple, list, dict) or _is_struct(base)):
            # A section whose keys are all commented out reads as null: it means "all defaults".
            node = MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)
            if origin in (tuple, list):
                return ()

        if _is_struct(base):
            value = self.convert_struct(node, base, path)
        elif origin in (tuple, list):
            value = self.convert_sequence(node, typing.get_args(base)[0], path)
        elif origin is dict:
            value = self.convert_mapping(node, typing.get_args(base)[1], path)
        elif origin is typing.Literal:
            value = self.convert_choice(node, typing.get_args(base), path)
        elif base in (bool, int, float, str):
            value = self.convert_scalar(node, base, path)
        else:
            raise TypeError(f"no conversion for the type {base!r} at {format_key_path(path)}")

        if value is _INVALID:
            return value
        return self.apply_metas(node, value, metas, path)

    def convert_optional(self, node: Node, union: Any, path: KeyPath) -> Any:
        members = [member for member in typing.get_args(union) if member is not type(None)]
        if len(members) != 1 or len(typing.get_args(union)) != 2:
            raise TypeError(f"only `T | None` unions are supported, found {union!r}")
        if _is_null(node) or (isinstance(node, EnvironmentValue) and not node.value.strip()):
            return None
        return self.convert_value(node, members[0], path)

    def convert_struct(self, node: Node, cls: type[msgspec.Struct], path: KeyPath) -> Any:
        if isinstance(node, EnvironmentValue):
            self.report_section_variable(node, path, [info.name for info in msgspec.structs.fields(cls)])
            return _INVALID
        if not isinstance(node, MappingNode):
            self.report_type(node, path, _("a mapping of keys to values"))
            return _INVALID

        fields = {info.name: info for info in msgspec.structs.fields(cls)}
        aliases: dict[str, str] = cls.key_aliases  # type: ignore[attr-defined]
        values: dict[str, Any] = {}
        seen_fields: dict[str, str] = {}
        has_problem = False

        for key, key_node, value_node in self.mapping_items(node, path):
            field_name = aliases.get(key, key)
            if field_name not in fields:
                self.report_unknown_key(key_node, path, key, [*fields, *aliases])
                continue
            if field_name in seen_fields:
                self.report(
                    key_node, path + (key,),
                    _("{other} is already set, and both keys set the same value: keep one").format(
                        other=seen_fields[field_name]
                    ),
                )
                continue
            seen_fields[field_name] = key

            value = self.convert(value_node, fields[field_name].type, path + (field_name,))
            if value is _INVALID:
                has_problem = True
            else:
                values[field_name] = value

        for name, info in fields.items():
            if info.required and name not in values and name not in seen_fields:
                self.report(node, path + (name,), _("missing required key"))
                has_problem = True

        if has_problem:
            return _INVALID
        return cls(**values)

    def convert_mapping(self, node: Node, value_hint: Any, path: KeyPath) -> Any:
        if isinstance(node, EnvironmentValue):
            self.report_section_variable(node, path, [_("name")])
            return _INVALID
        if not isinstance(node, MappingNode):
            self.report_type(node, path, _("a mapping of names to values"))
            return _INVALID
        result = {}
        for key, _key_node, value_node in self.mapping_items(node, path):
            value = self.convert(value_node, value_hint, path + (key,))
            if value is not _INVALID:
                result[key] = value
        return result

    def convert_sequence(self, node: Node, item_hint: Any, path: KeyPath) -> Any:
        if isinstance(node, EnvironmentValue):
            # A variable gives a list as comma-separated items.
            texts = [text.strip() for text in node.value.split(",") if text.strip()]
            node = SequenceNode("tag:yaml.org,2002:seq", [EnvironmentValue(node.variable, text) for text in texts],
                                node.start_mark, node.end_mark)
        if not isinstance(node, SequenceNode):
            trap = self.yaml11_trap(node) if isinstance(node, ScalarNode) else None
            if trap is not None:
                self.report(node, path, trap)
            else:
                self.report_type(node, path, _("a list"))
            return _INVALID
        items = [self.convert(item, item_hint, path + (index,)) for index, item in enumerate(node.value)]
        if any(item is _INVALID for item in items):
            return _INVALID
        return tuple(items)

    def convert_choice(self, node: Node, choices: tuple[str, ...], path: KeyPath) -> Any:
        value = self.convert_scalar(node, str, path)
        if value is _INVALID:
            return value
        if value not in choices:
            listing = ", ".join(choices)
            close = difflib.get_close_matches(value, choices, n=1)
            if close:
                reason = _("invalid value {value!r}: did you mean {suggestion!r}? Valid values: {choices}").format(
                    value=value, suggestion=close[0], choices=listing
                )
            else:
                reason = _("invalid value {value!r}: expected one of {choices}").format(value=value, choices=listing)
            self.report(node, path, reason)
            return _INVALID
        return value

    def convert_parsed(self, node: Node, cls: type, parser: Any, path: KeyPath) -> Any:
        text = self.convert_scalar(node, str, path)
        if text is _INVALID:
            return text
        try:
            return cls(*parser(text))
        except checks.CheckFailed as error:
            self.report(node, path, str(error))
            return _INVALID

    def convert_scalar(self, node: Node, expected: type, path: KeyPath) -> Any:
        expected_name = _(_EXPECTED_NAMES[expected])
        if not isinstance(node, ScalarNode):
            self.report_type(node, path, expected_name)
            return _INVALID
        if isinstance(node, EnvironmentValue):
            return self.convert_variable_text(node, expected, path)

        trap = self.yaml11_trap(node, expected)
        if trap is not None:
            self.report(node, path, trap)
            return _INVALID

        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as error:
            self.report(node, path, _describe_yaml_error(error))
            return _INVALID

        if expected is bool and isinstance(value, bool):
            return value
        if expected is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                self.report_type(node, path, _("a finite number"))
                return _INVALID
            return float(value)
        if expected is str:
            if isinstance(value, str):
                return value
            # A plain decimal such as the timeframe 15 means the same as "15".
            if node.style is None and node.tag == _INT_TAG and _DECIMAL_PATTERN.fullmatch(node.value):
                return node.value
            self.report(node, path, _("expected text, found {found}: put the value in quotes").format(
                found=self.describe_found(node)) if self.hiding else _(
                "expected text, found {found}: put the value in quotes, such as \"{text}\"").format(
                found=self.describe_found(node), text=node.value))
            return _INVALID

        self.report_type(node, path, expected_name)
        return _INVALID

    def convert_variable_text(self, node: EnvironmentValue, expected: type, path: KeyPath) -> Any:
        """Convert the text of an override variable by the type of its key, as YAML does not."""
        text = node.value.strip()
        if expected is str:
            return node.value
        if expected is bool:
            value = _VARIABLE_BOOLEANS.get(text.lower())
            if value is None:
                self.report(node, path, _("expected true, false, 1, 0, yes or no, found {found}").format(
                    found=self.describe_found(node)))
                return _INVALID
            return value
        if expected is int and _SIGNED_DECIMAL_PATTERN.fullmatch(text):
            return int(text)
        if expected is float:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                return value
        self.report_type(node, path, _(_EXPECTED_NAMES[expected]))
        return _INVALID

    def yaml11_trap(self, node: ScalarNode, expected: type | None = None) -> str | None:
        """Return a message when a plain scalar means something its writer likely did not intend."""
        if node.style is not None:
            return None
        text = node.value
        trapped = (
            (node.tag == _BOOL_TAG and expected is not bool and text.lower() in ("yes", "no", "on", "off"))
            or (node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in text)
            or (node.tag == _INT_TAG and _OCTAL_PATTERN.fullmatch(text))
        )
        if self.hiding and trapped:
            # A secret's value stays out of the message.
            return _("YAML 1.1 reads this value as something other than text: put it in quotes to keep it as text")
        if node.tag == _BOOL_TAG and expected is not bool and text.lower() in ("yes", "no", "on", "off"):
            value = self.constructor.construct_object(node)
            return _(
                "YAML 1.1 reads {text} as the boolean {value}: put it in quotes, such as \"{text}\", "
                "to keep it as text"
            ).format(text=text, value=str(value).lower())
        if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in text:
            value = self.constructor.construct_object(node)
            return _(
                "YAML 1.1 reads {text} as the base-60 number {value}: put it in quotes, such as \"{text}\", "
                "to keep it as text"
            ).format(text=text, value=value)
        if node.tag == _INT_TAG and _OCTAL_PATTERN.fullmatch(text):
            value = self.constructor.construct_object(node)
            return _(
                "YAML 1.1 reads {text} as the octal number {value}: write the number without "
                "the leading zero, or put it in quotes, such as \"{text}\", to keep it as text"
            ).format(text=text, value=value)
        return None

    def apply_metas(self, node: Node, value: Any, metas: list[msgspec.Meta], path: KeyPath) -> Any:
        for meta in metas:
            bounds = (
                (meta.ge, lambda v, b: v >= b, N_("at least {bound}")),
                (meta.gt, lambda v, b: v > b, N_("greater than {bound}")),
                (meta.le, lambda v, b: v <= b, N_("at most {bound}")),
                (meta.lt, lambda v, b: v < b, N_("less than {bound}")),
            )
            for bound, holds, template in bounds:
                if bound is not None and not holds(value, bound):
                    self.report(
                        node, path,
                        _("{value!r} is out of range: expected {constraint}").format(
                            value=value, constraint=_(template).format(bound=bound)
                        ),
                    )
                    return _INVALID
            if meta.min_length is not None and len(value) < meta.min_length:
                self.report(node, path, _("expected a non-empty value"))
                return _INVALID

        check = _meta_extra(metas, "check")
        if check is not None:
            try:
                return check(value)
            except checks.CheckFailed as error:
                self.report(node, path, str(error))
                return _INVALID
        return value

    # --- mappings

    def mapping_items(self, node: MappingNode, path: KeyPath) -> list[tuple[str, Node, Node]]:
        """Return the (key, key node, value node) of a mapping after `<<` merges, reporting duplicates and non-text keys."""
        first_lines: dict[str, int] = {}
        for key_node, _value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = key_node.value
            if key in first_lines:
                self.report(
                    key_node, path + (key,),
                    _(
                        "duplicate key: line {first_line} already sets it, and YAML would keep only "
                        "the last one. Merge the two into one"
                    ).format(first_line=first_lines[key]),
                )
            else:
                first_lines[key] = key_node.start_mark.line + 1

        if any(key_node.tag == _MERGE_TAG for key_node, _value_node in node.value):
            try:
                self.constructor.flatten_mapping(node)
            except yaml.YAMLError as error:
                self.report(node, path, _describe_yaml_error(error))
                return []

        # Later pairs win, as in PyYAML: merged pairs come first and the mapping's own keys override them.
        items: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                trap = self.yaml11_trap(key_node) if isinstance(key_node, ScalarNode) else None
                if trap is not None:
                    self.report(key_node, path, trap)
                else:
                    self.report(key_node, path, _("invalid key {key}: keys must be text").format(
                        key=getattr(key_node, "value", "?") if isinstance(key_node, ScalarNode) else "?",
                    ))
                continue
            items[key_node.value] = (key_node, value_node)
        return [(key, key_node, value_node) for key, (key_node, value_node) in items.items()]

    def report_section_variable(self, node: EnvironmentValue, path: KeyPath, keys: list[str]) -> None:
        example = f"{node.variable}__{keys[0].upper()}" if keys else node.variable
        self.report(node, path, _(
            "{variable} sets a whole section, which a variable cannot: set one key per variable, such as {example}"
        ).format(variable=node.variable, example=example))

    def report_unknown_key(self, key_node: Node, path: KeyPath, key: str, valid: list[str]) -> None:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        if close:
            reason = _("unknown key: did you mean {suggestion}?").format(
                suggestion=format_key_path(path + (close[0],))
            )
        else:
            reason = _("unknown key: valid keys here are {valid}").format(valid=", ".join(sorted(valid)))
        self.report(key_node, path + (key,), reason)

    # --- checks across keys

    def apply_legacy_schedule(self, parsed: ConfigFile) -> Config:
        """Move the entries of the older top-level `backup_schedule` mapping to their current keys."""
        values = {name: getattr(parsed, name) for name in Config.__struct_fields__}
        config = Config(**values)
        if not parsed.backup_schedule:
            return config

        schedules = dict(config.schedule_config.backup_schedules)
        retention_days = config.backup_config.retention_policy.retention_days
        for name, entry in parsed.backup_schedule.items():
            path = ("backup_schedule", name)
            if name in schedules:
                self.report_at(path, _(
                    "schedule_config.backup_schedules.{name} sets the same schedule: keep only that one"
                ).format(name=name))
                continue
            schedules[name] = schema.BackupSchedule(cron=entry.cron, type=entry.type)
            self.move_source(path, ("schedule_config", "backup_schedules", name))
            if entry.retention_days is None:
                continue

            backup_type = entry.type or _backup_type_from_name(name)
            if backup_type is None:
                self.report_at(path, _cannot_infer_type_message(name))
                continue
            current = getattr(retention_days, backup_type)
            if current is not None and current != entry.retention_days:
                self.report_at(path + ("retention_days",), _(
                    "backup_config.retention_policy.retention_days.{type} sets {current} days for the "
                    "same backup type: keep only that one"
                ).format(type=backup_type, current=current))
                continue
            retention_days = msgspec.structs.replace(retention_days, **{backup_type: entry.retention_days})
            self.nodes[("backup_config", "retention_policy", "retention_days", backup_type)] = (
                self.nodes[path + ("retention_days",)]
            )

        retention_policy = msgspec.structs.replace(
            config.backup_config.retention_policy, retention_days=retention_days
        )
        return msgspec.structs.replace(
            config,
            schedule_config=msgspec.structs.replace(config.schedule_config, backup_schedules=schedules),
            backup_config=msgspec.structs.replace(config.backup_config, retention_policy=retention_policy),
        )

    def move_source(self, old: KeyPath, new: KeyPath) -> None:
        """Record the nodes under `old` as the sources of the same keys under `new`."""
        for path, node in list(self.nodes.items()):
            if path[:len(old)] == old:
                self.nodes[new + path[len(old):]] = node

    def infer_schedule_types(self, config: Config) -> Config:
        """Set the backup type of every schedule that does not give one from its name."""
        schedules = {}
        for name, schedule in config.schedule_config.backup_schedules.items():
            if schedule.type is None:
                backup_type = _backup_type_from_name(name)
                if backup_type is None:
                    self.report_at(("schedule_config", "backup_schedules", name), _cannot_infer_type_message(name))
                    continue
                schedule = msgspec.structs.replace(schedule, type=backup_type)
                schedule_path = ("schedule_config", "backup_schedules", name)
                self.nodes[schedule_path + ("type",)] = self.nodes[schedule_path]
            schedules[name] = schedule
        return msgspec.structs.replace(
            config, schedule_config=msgspec.structs.replace(config.schedule_config, backup_schedules=schedules)
        )

    def check_primary_source(self, spec: str) -> None:
        """Report a sync_config.primary that names no source, or a directory source without its DIR."""
        from ..sources.registry import DIRECTORY_SOURCE_NAMES, source_names

        name, separator, argument = spec.partition(":")
        path = ("sync_config", "primary")
        if name not in source_names():
            self.report_at(path, _("unknown source {spec!r}: use one of {names}").format(
                spec=spec, names=", ".join(source_names())))
        elif name in DIRECTORY_SOURCE_NAMES and not argument:
            self.report_at(path, _("the {name} source needs a directory: write {name}:DIR").format(name=name))

    def check_consistency(self, config: Config) -> None:
        """Report settings that are valid alone but contradict each other."""
        backup = config.backup_config
        if not backup.compression_enabled:
            self.report_at(("backup_config", "compression_enabled"), _(
                "tvcat always compresses chunks with zstd: remove the key or set it to true, and set "
                "compression_level: 1 for the fastest compression"
            ))
        self.check_primary_source(config.sync_config.primary)
        remote = backup.storage_backends.remote
        if remote.enabled and not remote.bucket:
            self.report_at(
                ("backup_config", "storage_backends", "remote", "bucket"),
                _("missing: an enabled remote backend needs a bucket"),
            )

        threshold = backup.auto_cleanup.size_threshold_gb
        if threshold is not None and backup.max_total_size_gb is not None and threshold > backup.max_total_size_gb:
            self.report_at(
                ("backup_config", "auto_cleanup", "size_threshold_gb"),
                _("{threshold} GB is above max_total_size_gb ({limit} GB), so cleanup would start too late").format(
                    threshold=threshold, limit=backup.max_total_size_gb
                ),
            )

        channels = config.monitoring_config.alerts.channels
        email_path = ("monitoring_config", "alerts", "channels", "email")
        if channels.email.enabled and not channels.email.smtp_server:
            self.report_at(email_path + ("smtp_server",), _("missing: an enabled email channel needs an SMTP server"))
        if channels.email.enabled and not channels.email.recipients:
            self.report_at(email_path + ("recipients",), _("missing: an enabled email channel needs recipients"))
        if channels.webhook.enabled and not channels.webhook.url:
            self.report_at(
                ("monitoring_config", "alerts", "channels", "webhook", "url"),
                _("missing: an enabled webhook channel needs a URL"),
            )

        for name, rule in config.monitoring_config.alerts.rules.items():
            if rule.threshold is not None and rule.threshold != rule.condition.threshold:
                self.report_at(
                    ("monitoring_config", "alerts", "rules", name, "threshold"),
                    _("{threshold} differs from {condition_threshold} in the condition: remove it or make them equal").format(
                        threshold=rule.threshold, condition_threshold=rule.condition.threshold
                    ),
                )


def _backup_type_from_name(name: str) -> str | None:
    base = name.removesuffix("_backup")
    return base if base in BACKUP_TYPE_NAMES else None


def _cannot_infer_type_message(name: str) -> str:
    return _(
        "cannot tell the backup type from the name {name!r}: add `type:` with one of {types}, "
        "or name it such as full_backup"
    ).format(name=name, types=", ".join(BACKUP_TYPE_NAMES))


def is_secret(hint: Any) -> bool:
    """Return True if `hint`, or the T of `T | None`, is marked secret in its Meta."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(is_secret(member) for member in typing.get_args(hint))
    return bool(_meta_extra(_unwrap_annotated(hint)[1], "secret"))


def _unwrap_annotated(hint: Any) -> tuple[Any, list[msgspec.Meta]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, [extra for extra in extras if isinstance(extra, msgspec.Meta)]
    return hint, []


def _meta_extra(metas: list[msgspec.Meta], name: str) -> Any:
    for meta in metas:
        if meta.extra and name in meta.extra:
            return meta.extra[name]
    return None


def _is_struct(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, msgspec.Struct)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


