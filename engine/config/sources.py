"""Where settings come from: the file search order, environment sections and variable overrides.

The loader walks one tree of YAML nodes. This module builds that tree from
the file, the environment section that `TVCAT_ENV` or `SYNC_BACKUP_ENV`
selects, and the override variables, so every value keeps a mark that records
where it came from: a file line or an environment variable.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode

from ...i18n import N_, _

STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"

# A variable named TVCAT_<SECTION>__<KEY>[__<KEY>...] sets one key; `__` separates the levels.
OVERRIDE_PREFIX = "TVCAT_"
OVERRIDE_SEPARATOR = "__"

# The user guide's short variables and the keys they set. TVCAT_ variables of the same key win.
SHORT_OVERRIDES = {
    "SYNC_INTERVAL": ("sync_config", "sync_interval"),
    "BACKUP_DIR": ("backup_config", "backup_dir"),
    "MAX_CONCURRENT_TASKS": ("sync_config", "max_concurrent_tasks"),
}

CONFIG_FILE_VARIABLES = ("TVCAT_CONFIG", "SYNC_BACKUP_CONFIG")
ENVIRONMENT_VARIABLES = ("TVCAT_ENV", "SYNC_BACKUP_ENV")
ENVIRONMENTS_KEY = "environments"
CONFIG_FILE_NAME = "tvcat.yaml"


class ValueSource(msgspec.Struct, frozen=True, omit_defaults=True):
    """The origin of one setting: `default`, `file` (with file and line) or `environment` (with variable)."""

    kind: str
    file: str | None = None
    line: int | None = None
    variable: str | None = None

    def describe(self) -> str:
        if self.kind == "file":
            return _("{file}, line {line}").format(file=self.file, line=self.line)
        if self.kind == "environment":
            return _("environment variable {variable}").format(variable=self.variable)
        return _("default")


DEFAULT_SOURCE = ValueSource(kind="default")


class EnvironmentMark(Mark):
    """The mark of a node built from an environment variable, so errors name the variable."""

    def __init__(self, variable: str) -> None:
        super().__init__(variable, 0, 0, 0, None, None)
        self.variable = variable


class EnvironmentValue(ScalarNode):
    """The text of an override variable, converted by the type of its key and not as YAML."""

    def __init__(self, variable: str, text: str) -> None:
        mark = EnvironmentMark(variable)
        super().__init__(STR_TAG, text, mark, mark, style='"')
        self.variable = variable


class ConfigLocation(msgspec.Struct, frozen=True):
    """The file that was chosen and why: `option`, a variable name, `working directory` or `XDG`."""

    path: Path
    reason: str
    # True when the user named the file, so a missing file is an error and not a skip.
    explicit: bool


def find_config_file(option: Path | None, environ: Mapping[str, str], cwd: Path) -> ConfigLocation | None:
    """Return the configuration file to read, or None when there is none.

    The order is the --config option, $TVCAT_CONFIG, $SYNC_BACKUP_CONFIG,
    ./tvcat.yaml, $XDG_CONFIG_HOME/tvcat/tvcat.yaml (default ~/.config), then
    tvcat/tvcat.yaml under each directory of $XDG_CONFIG_DIRS (default
    /etc/xdg). A file named by the option or a variable is returned even when
    it does not exist, so the caller reports it.
    """
    if option is not None:
        return ConfigLocation(path=option, reason="--config", explicit=True)
    for variable in CONFIG_FILE_VARIABLES:
        if environ.get(variable):
            return ConfigLocation(path=Path(environ[variable]), reason=variable, explicit=True)

    candidates = [(cwd / CONFIG_FILE_NAME, "working directory")]
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    candidates.append((Path(config_home) / "tvcat" / CONFIG_FILE_NAME, "XDG_CONFIG_HOME"))
    for directory in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep):
        if directory:
            candidates.append((Path(directory) / "tvcat" / CONFIG_FILE_NAME, "XDG_CONFIG_DIRS"))

    for path, reason in candidates:
        if path.is_file():
            return ConfigLocation(path=path, reason=reason, explicit=False)
    return None


def selected_environment(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Return (name, variable) of the environment section to apply, or None."""
    for variable in ENVIRONMENT_VARIABLES:
        name = environ.get(variable, "").strip()
        if name:
            return name, variable
    return None


def split_environments(root: MappingNode) -> tuple[MappingNode, MappingNode | Node | None]:
    """Return the root without its `environments` key, and that key's value node."""
    kept = []
    environments = None
    for key_node, value_node in root.value:
        if isinstance(key_node, ScalarNode) and key_node.value == ENVIRONMENTS_KEY:
            environments = value_node
        else:
            kept.append((key_node, value_node))
    return MappingNode(root.tag, kept, root.start_mark, root.end_mark, root.flow_style), environments


def merge_nodes(base: MappingNode, overlay: MappingNode) -> MappingNode:
    """Return `base` with the keys of `overlay` laid over it; mappings merge key by key.

    The result shares nodes with both inputs, so every value keeps the mark of
    the place that set it.
    """
    items = list(base.value)
    positions = {
        key_node.value: index for index, (key_node, _value) in enumerate(items) if isinstance(key_node, ScalarNode)
    }
    for key_node, value_node in overlay.value:
        index = positions.get(key_node.value) if isinstance(key_node, ScalarNode) else None
        if index is None:
            positions[key_node.value] = len(items)
            items.append((key_node, value_node))
            continue
        current = items[index][1]
        if isinstance(current, MappingNode) and isinstance(value_node, MappingNode):
            value_node = merge_nodes(current, value_node)
        items[index] = (key_node, value_node)
    return MappingNode(base.tag, items, base.start_mark, base.end_mark, base.flow_style)


def override_variables(environ: Mapping[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """Return (variable, key path) of every override variable set, in the order they apply.

    The guide's short variables come first, so a TVCAT_ variable of the same
    key applies last and wins. Key parts are lowercased, because keys are.
    """
    overrides = [(variable, path) for variable, path in SHORT_OVERRIDES.items() if variable in environ]
    for variable in sorted(environ):
        if not variable.startswith(OVERRIDE_PREFIX) or OVERRIDE_SEPARATOR not in variable:
            continue
        parts = tuple(part.lower() for part in variable[len(OVERRIDE_PREFIX):].split(OVERRIDE_SEPARATOR))
        overrides.append((variable, parts))
    return overrides


def overrides_as_nodes(environ: Mapping[str, str]) -> MappingNode:
    """Return a mapping tree that sets every override variable's key to its text."""
    root = _empty_mapping(EnvironmentMark("environment"))
    for variable, path in override_variables(environ):
        mark = EnvironmentMark(variable)
        branch = root
        for part in path[:-1]:
            branch = _child_mapping(branch, part, mark)
        _set_item(branch, path[-1], EnvironmentValue(variable, environ[variable]), mark)
    return root


def _empty_mapping(mark: Mark) -> MappingNode:
    return MappingNode(MAP_TAG, [], mark, mark)


def _child_mapping(parent: MappingNode, key: str, mark: Mark) -> MappingNode:
    for key_node, value_node in parent.value:
        if key_node.value == key and isinstance(value_node, MappingNode):
            return value_node
    child = _empty_mapping(mark)
    _set_item(parent, key, child, mark)
    return child


def _set_item(parent: MappingNode, key: str, value: Node, mark: Mark) -> None:
    parent.value[:] = [(key_node, old) for key_node, old in parent.value if key_node.value != key]
    parent.value.append((ScalarNode(STR_TAG, key, mark, mark), value))


def source_of_node(node: Node, file: str) -> ValueSource:
    """Return where `node` came from, by its mark; `file` names the file that was read."""
    mark = node.start_mark
    if isinstance(mark, EnvironmentMark):
        return ValueSource(kind="environment", variable=mark.variable)
    return ValueSource(kind="file", file=file, line=mark.line + 1)


UNKNOWN_ENVIRONMENT = N_(
    "{variable} selects the environment {name!r}, which the file does not define: defined are {defined}"
)
