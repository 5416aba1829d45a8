"""Typed reads of a positioned YAML document: each failure names the exact position."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..suggest import did_you_mean
from .yaml import Doc

__all__ = ["Reader"]


class Reader:
    """Checks values of ``doc`` against what the config expects, pointing at their line."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def fail(self, message: str, path: tuple[Any, ...], hint: str | None = None) -> ConfigError:
        return ConfigError(message, pos=self.doc.at(path), hint=hint)

    def expect(
        self, value: Any, types: type | tuple[type, ...], path: tuple[Any, ...], what: str
    ) -> Any:
        if isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)
        ):
            raise self.fail(f"{what} must be {self._type_name(types)}, not a boolean", path)
        if not isinstance(value, types):
            raise self.fail(
                f"{what} must be {self._type_name(types)}, not {type(value).__name__}", path
            )
        return value

    @staticmethod
    def _type_name(types: type | tuple[type, ...]) -> str:
        names = {
            str: "a string",
            list: "a list",
            dict: "a mapping",
            int: "an integer",
            bool: "true or false",
        }
        ts = types if isinstance(types, tuple) else (types,)
        return " or ".join(names.get(t, t.__name__) for t in ts)

    def str_list(self, value: Any, path: tuple[Any, ...], what: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        self.expect(value, list, path, what)
        for i, item in enumerate(value):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                value[i] = str(item)
            else:
                self.expect(item, str, path + (i,), f"each entry of {what}")
        return list(value)

    def check_keys(
        self, mapping: dict[str, Any], allowed: tuple[str, ...], path: tuple[Any, ...], where: str
    ) -> None:
        for key in mapping:
            if key in allowed:
                continue
            raise ConfigError(
                f"unknown key {key!r} in {where}",
                pos=self.doc.key_at(path + (key,)),
                hint=did_you_mean(key, allowed) or f"allowed: {', '.join(allowed)}",
            )
