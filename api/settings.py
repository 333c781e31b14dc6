"""Turn what a caller passes as `config` into a checked Config and the repository and cache paths it selects.

The user guide passes plain dicts: a whole configuration in the YAML file's
structure, or the keys of one section alone. A dict goes through the same
loader as a file, so it is checked the same way and its errors name the key.
"""

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import msgspec
import yaml

from ..engine.config import (
    Config, ConfigProblem, InvalidConfig, format_key_path, load_config_text, load_effective_config,
)
from ..engine.config.paths import cache_path, repository_path
from ..engine.config.schema import ConfigFile
from ..engine.config.sources import ENVIRONMENTS_KEY
from ..i18n import _

# The name that stands for a dict in configuration errors, as `<string>` stands for YAML text.
DICT_NAME = "<dict>"
# The keys that a configuration file may have at its top level.
TOP_LEVEL_KEYS: frozenset[str] = frozenset(ConfigFile.__struct_fields__) | {ENVIRONMENTS_KEY}
# The variables that the CLI reads for --repo and --cache.
REPOSITORY_VARIABLE = "TVCAT_REPO"
CACHE_VARIABLE = "TVCAT_CACHE"


@dataclass(frozen=True)
class Settings:
    """A checked configuration with the repository directory and the bar cache file it selects."""

    config: Config
    repository_path: Path
    cache_path: Path


ConfigInput: TypeAlias = Settings | Config | Mapping[str, Any] | str | os.PathLike[str] | None


def resolve_settings(
    config: ConfigInput = None, section: str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Return the Settings that `config` describes.

    - None: the effective configuration, found and read as the CLI does
      (`TVCAT_CONFIG`, `SYNC_BACKUP_CONFIG`, `./tvcat.yaml`, the XDG
      directories), with environment sections and override variables.
    - A path: that file, with environment sections and override variables,
      as `tvcat --config FILE` reads it.
    - A dict whose keys are all top-level keys of a file (`sync_config`,
      `backup_config`, ..., `environments`): the whole configuration.
      Left-out keys take their defaults, and neither a file nor a variable
      applies, so no environment section is selected either.
    - Any other dict, when `section` is given: keys of that section, laid
      over the effective configuration.
    - A Config or Settings: used as it is.

    With None, a path or a section dict, `TVCAT_REPO` and `TVCAT_CACHE`
    override the paths, as they override the CLI's --repo and --cache.
    Raises InvalidConfig naming every invalid key, and ConfigUnreadable for
    a file that cannot be read.
    """
    environ = os.environ if environ is None else environ
    if isinstance(config, Settings):
        return config
    if isinstance(config, Config):
        return _settings_of(config, environ)
    if isinstance(config, Mapping):
        if _is_whole_configuration(config) or section is None:
            return _settings_of(config_from_mapping(config), environ)
        effective = load_effective_config(environ=environ).config
        return _with_path_variables(_settings_of(_overlay_section(effective, section, config), environ), environ)

    option = None if config is None else Path(os.fspath(config))
    loaded = load_effective_config(option, environ=environ)
    return _with_path_variables(_settings_of(loaded.config, environ), environ)


def config_from_mapping(mapping: Mapping[str, Any]) -> Config:
    """Check a whole configuration given as a dict, as a YAML file of that content would be checked.

    Raises InvalidConfig, whose problems name `<dict>` and the key path.
    """
    try:
        text = yaml.safe_dump(_plain(mapping), allow_unicode=True, sort_keys=False)
    except yaml.representer.RepresenterError as error:
        value = error.args[1] if len(error.args) > 1 else None
        raise InvalidConfig(DICT_NAME, [ConfigProblem(place=DICT_NAME, key=format_key_path(()), reason=_(
            "unsupported value {value!r} of type {type}: use text, numbers, booleans, lists and dicts"
        ).format(value=value, type=type(value).__name__))]) from None
    try:
        return load_config_text(text, file=DICT_NAME)
    except InvalidConfig as error:
        # Line numbers would point into YAML text that the caller never saw, so only the key is kept.
        problems = [
            ConfigProblem(place=DICT_NAME, key=problem.fields["key"], reason=problem.fields["reason"])
            for problem in error.problems
        ]
        raise InvalidConfig(DICT_NAME, problems) from None


def _is_whole_configuration(mapping: Mapping[str, Any]) -> bool:
    return bool(mapping) and all(key in TOP_LEVEL_KEYS for key in mapping)


def _settings_of(config: Config, environ: Mapping[str, str]) -> Settings:
    return Settings(config, repository_path(config, environ), cache_path(config, environ))


def _with_path_variables(settings: Settings, environ: Mapping[str, str]) -> Settings:
    repository = environ.get(REPOSITORY_VARIABLE)
    cache = environ.get(CACHE_VARIABLE)
    return Settings(
        settings.config,
        Path(repository).expanduser() if repository else settings.repository_path,
        Path(cache).expanduser() if cache else settings.cache_path,
    )


def _overlay_section(effective: Config, section: str, mapping: Mapping[str, Any]) -> Config:
    """Return `effective` with the keys that `mapping` gives in `section` replaced, each checked.

    NOTE: checks that compare two keys, such as auto_cleanup.size_threshold_gb
    against max_total_size_gb, see the dict's keys beside the defaults, not
    beside the values of the effective configuration.
    """
    parsed = config_from_mapping({section: mapping})
    merged_section = _overlay(getattr(effective, section), getattr(parsed, section), mapping)
    return msgspec.structs.replace(effective, **{section: merged_section})


def _overlay(base: msgspec.Struct, parsed: msgspec.Struct, overrides: Mapping[str, Any]) -> msgspec.Struct:
    """Replace in `base` the fields named in `overrides`, taking their checked values from `parsed`.

    A nested dict replaces only the keys it names, so `{'retention_policy':
    {'daily_backups': 14}}` keeps the other retention settings of `base`.
    """
    aliases = getattr(type(base), "key_aliases", {})
    changes = {}
    for key, value in overrides.items():
        name = aliases.get(key, key)
        new_value = getattr(parsed, name)
        old_value = getattr(base, name)
        if isinstance(value, Mapping) and isinstance(old_value, msgspec.Struct) and isinstance(new_value, msgspec.Struct):
            new_value = _overlay(old_value, new_value, value)
        changes[name] = new_value
    return msgspec.structs.replace(base, **changes)


def _plain(value: Any) -> Any:
    """Return `value` with the types that YAML's safe dumper rejects turned into plain ones."""
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        # A str subclass, such as a str-valued enum member, would not dump.
        return str(value)
    return value
