"""The top-level settings of mlbuild.yaml besides params and targets: version, vars, env
(plain values and secrets), executor, signing and trusted keys, remote, default."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..kinds import DaskMode, ExecutorType, LinkType, words
from ..suggest import did_you_mean
from .access import Reader
from .params import render_value
from .paths import normalize_path
from .schema import CACHE_KEYS, EXECUTOR_KEYS, SCHEMA_VERSION, SECRET_KEYS, SIGNING_KEYS
from .specs import DASK_CONNECT_TIMEOUT

__all__ = [
    "Executor",
    "Keys",
    "Remote",
    "check_version",
    "load_cache_link",
    "load_default",
    "load_env",
    "load_executor",
    "load_keys",
    "load_remote",
    "load_vars",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_version(reader: Reader, top: dict[str, Any]) -> None:
    version = top.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise reader.fail(
            f"unsupported version {version!r}: this mlbuild reads version {SCHEMA_VERSION}",
            ("version",),
        )


def load_vars(reader: Reader, top: dict[str, Any]) -> dict[str, Any]:
    vars_: dict[str, Any] = reader.expect(top.get("vars", {}) or {}, dict, ("vars",), "vars")
    for key, value in vars_.items():
        if isinstance(value, (dict, list)):
            raise reader.fail(f"vars.{key} must be a plain value", ("vars", key))
    return vars_


def load_env(
    reader: Reader, raw: Any, path: tuple[Any, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(plain, secrets)``: plain values, and secret names → the caller's variable.

    ``NAME: value`` is a plain value (part of the key, in manifests). A secret is
    ``NAME: {from: VAR, secret: true}``: its value comes from the caller's $VAR when a
    command runs and is never written anywhere (see docs/provenance.md)."""
    if raw is None:
        return {}, {}
    reader.expect(raw, dict, path, "env")
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key, value in raw.items():
        if not _ENV_NAME.match(key):
            raise ConfigError(
                f"invalid env variable name {key!r}", pos=reader.doc.key_at(path + (key,))
            )
        if isinstance(value, dict):
            secrets[key] = _secret_source(reader, key, value, path + (key,))
            continue
        if isinstance(value, list) or value is None:
            raise reader.fail(f"env.{key} must be a string", path + (key,))
        env[key] = render_value(value)
        if "\x00" in env[key]:
            raise reader.fail(
                f"env.{key} has a NUL byte: an environment value cannot hold one",
                path + (key,),
            )
    return env, secrets


def _secret_source(reader: Reader, key: str, value: dict[str, Any], path: tuple[Any, ...]) -> str:
    """The caller's variable a secret ``{from: VAR, secret: true}`` is read from."""
    reader.check_keys(value, SECRET_KEYS, path, f"env.{key}")
    source = value.get("from")
    if not isinstance(source, str) or not _ENV_NAME.match(source):
        raise reader.fail(f"env.{key}.from must name an environment variable", path)
    if value.get("secret") is not True:
        raise reader.fail(
            f"env.{key}: a value taken from the environment must be marked "
            "secret: true (a plain value is written in the file)",
            path,
        )
    return source


class Executor(NamedTuple):
    """``executor: {type: local|dask, address: ADDR, jobs: auto|N, mode: shared|remote,
    connect_timeout: SECONDS}``; None jobs: the CPU count (local) or the cluster's threads
    (dask)."""

    kind: str = ExecutorType.LOCAL.value
    address: str | None = None
    jobs: int | None = None
    mode: str = DaskMode.SHARED.value
    connect_timeout: float = DASK_CONNECT_TIMEOUT


def load_executor(reader: Reader, raw: Any) -> Executor:
    if raw is None:
        return Executor()
    path = ("executor",)
    reader.expect(raw, dict, path, "executor")
    reader.check_keys(raw, EXECUTOR_KEYS, path, "executor")
    mode = raw.get("mode", DaskMode.SHARED.value)
    if mode not in words(DaskMode):
        raise reader.fail(
            "executor.mode must be 'shared' (workers see the workspace) or 'remote' "
            "(inputs and outs move through the remote cache)",
            path + ("mode",),
        )
    if "mode" in raw and raw.get("type") != ExecutorType.DASK:
        raise reader.fail("executor.mode goes with type: dask", path + ("mode",))
    kind = raw.get("type", ExecutorType.LOCAL.value)
    if kind not in words(ExecutorType):
        raise reader.fail(
            f"executor type {kind!r} is unknown",
            path + ("type",),
            hint=did_you_mean(str(kind), words(ExecutorType))
            or f"use {' or '.join(words(ExecutorType))}",
        )
    address = raw.get("address")
    if address is not None:
        reader.expect(address, str, path + ("address",), "executor.address")
        if kind != ExecutorType.DASK:
            raise reader.fail("executor.address goes with type: dask", path + ("address",))
    timeout = raw.get("connect_timeout", DASK_CONNECT_TIMEOUT)
    if "connect_timeout" in raw:
        where = path + ("connect_timeout",)
        if kind != ExecutorType.DASK:
            raise reader.fail("executor.connect_timeout goes with type: dask", where)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise reader.fail("executor.connect_timeout must be a number of seconds > 0", where)
    jobs = raw.get("jobs", "auto")
    if jobs == "auto":
        return Executor(kind, address, None, mode, float(timeout))
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise reader.fail("executor.jobs must be a positive integer or 'auto'", path + ("jobs",))
    return Executor(kind, address, jobs, mode, float(timeout))


class Keys(NamedTuple):
    """``signing: {key: PATH}`` and ``trusted_keys:``, as workspace-relative paths."""

    signing_key: str | None
    trusted: list[str]


def load_keys(reader: Reader, root: str, top: dict[str, Any]) -> Keys:
    signing_key = None
    signing = top.get("signing")
    if signing is not None:
        reader.expect(signing, dict, ("signing",), "signing")
        reader.check_keys(signing, SIGNING_KEYS, ("signing",), "signing")
        raw_key = reader.expect(signing.get("key"), str, ("signing", "key"), "signing.key")
        signing_key = normalize_path(
            root, raw_key, reader.doc.at(("signing", "key")), "signing key"
        )
    raw_trusted = reader.str_list(
        top.get("trusted_keys", []) or [], ("trusted_keys",), "trusted_keys"
    )
    trusted = [
        normalize_path(root, raw, reader.doc.at(("trusted_keys", i)), "trusted key")
        for i, raw in enumerate(raw_trusted)
    ]
    return Keys(signing_key, trusted)


class Remote(NamedTuple):
    """``remote:``, ``remote_options:`` and ``remote_write:``."""

    url: str | None
    options: dict[str, Any]
    write: bool


def load_remote(reader: Reader, top: dict[str, Any]) -> Remote:
    remote = top.get("remote")
    if remote is not None:
        reader.expect(remote, str, ("remote",), "remote")
        if not remote.strip():
            raise reader.fail("remote must be an fsspec URL, not empty", ("remote",))
    options = reader.expect(
        top.get("remote_options", {}) or {}, dict, ("remote_options",), "remote_options"
    )
    write = reader.expect(top.get("remote_write", False), bool, ("remote_write",), "remote_write")
    return Remote(remote, options, write)


DEFAULT_LINK = ("reflink", "copy")


def load_cache_link(reader: Reader, raw: Any) -> tuple[str, ...]:
    """``cache: {link: [...]}``: LinkType words, each once (default reflink, then copy)."""
    if raw is None:
        return DEFAULT_LINK
    path = ("cache",)
    reader.expect(raw, dict, path, "cache")
    reader.check_keys(raw, CACHE_KEYS, path, "cache")
    if "link" not in raw:
        return DEFAULT_LINK
    items = raw["link"]
    if isinstance(items, str):
        items = [items]
    where = path + ("link",)
    if not isinstance(items, list) or not items:
        raise reader.fail("cache.link must be a list of reflink, hardlink, copy", where)
    for i, item in enumerate(items):
        if item not in words(LinkType):
            raise reader.fail(
                f"cache.link {item!r} is not a kind of link",
                where + (i,),
                hint=did_you_mean(str(item), words(LinkType))
                or f"use {', '.join(words(LinkType))}",
            )
        if item in items[:i]:
            raise reader.fail(f"cache.link lists {item!r} twice", where + (i,))
    return tuple(items)


def load_default(reader: Reader, raw: Any, names: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = reader.str_list(raw, ("default",), "default")
    for i, item in enumerate(items):
        if item not in names and not any(ch in item for ch in "*?[") and not item.endswith(":"):
            raise reader.fail(
                f"default names unknown target {item!r}",
                ("default", i),
                hint=did_you_mean(item, names),
            )
    return tuple(items)
