"""The effective configuration as a flat list of settings, each with its source and secrets masked."""

import typing
from typing import Any

import msgspec

from .checks import redact_url
from .loader import LoadedConfig, is_secret
from .schema import AlertCondition, Section
from .sources import ValueSource

MASK = "********"

KeyPath = tuple[str, ...]


class Setting(msgspec.Struct, frozen=True):
    """One leaf of the configuration: its dotted key, its value (masked if secret) and where it came from."""

    key: str
    value: Any
    source: ValueSource
    secret: bool = False


def effective_settings(loaded: LoadedConfig) -> list[Setting]:
    """Return every leaf setting of `loaded.config` in schema order, with secrets masked."""
    settings: list[Setting] = []
    for path, value, secret in _leaves(loaded.config, type(loaded.config), ()):
        settings.append(Setting(
            key=".".join(path), value=_masked(value) if secret else _as_builtin(value),
            source=loaded.source(path), secret=secret,
        ))
    return settings


def masked_builtins(section: Section) -> dict[str, Any]:
    """Return `section` as nested dicts and lists, as msgspec.to_builtins does, with secrets masked."""
    result: dict[str, Any] = {}
    for path, value, secret in _leaves(section, type(section), ()):
        branch = result
        for part in path[:-1]:
            branch = branch.setdefault(part, {})
        branch[path[-1]] = _masked(value) if secret else _as_builtin(value)
    return result


def _leaves(value: Any, hint: Any, path: KeyPath) -> typing.Iterator[tuple[KeyPath, Any, bool]]:
    """Yield (key path, value, is secret) of every leaf under `value`, whose declared type is `hint`."""
    if isinstance(value, Section):
        hints = typing.get_type_hints(type(value), include_extras=True)
        for name in value.__struct_fields__:
            yield from _leaves(getattr(value, name), hints[name], path + (name,))
        return
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), Section):
        item_hint = typing.get_args(hint)[1]
        for key, item in value.items():
            yield from _leaves(item, item_hint, path + (key,))
        return
    yield path, value, is_secret(hint)


def _masked(value: Any) -> str | None:
    return None if value is None else MASK


def _as_builtin(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if isinstance(value, AlertCondition):
        return f"{value.metric} {value.comparison} {value.threshold:g}"
    return msgspec.to_builtins(value)
