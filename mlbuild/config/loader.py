"""Turn mlbuild.yaml into a validated, interpolated `Pipeline`; no hashing, no running.

Everything that can be wrong with the file is found here, before anything runs, and
reported as ``mlbuild.yaml:LINE:COL: what is wrong`` with a "did you mean" where one fits.
The order of the passes matters: matrices are expanded first, so that deps see every
concrete target; then the outs of every target are known before any dep is resolved, so a
dep on a produced path resolves to its producer.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from .. import observe
from ..errors import ConfigError
from ..store.layout import Layout
from ..suggest import did_you_mean
from .access import Reader
from .interpolate import Scope, interpolate
from .matrix import Expanded, Matrix
from .ml import check_module, load_ml
from .params import MISSING, Params, covers, flat_keys, lookup
from .paths import (
    GLOB_CHARS,
    OutGuard,
    check_inside,
    expand_glob,
    glob_regex,
    normalize_path,
)
from .plots import load_plots
from .schema import TOP_KEYS
from .settings import (
    check_version,
    load_cache_link,
    load_default,
    load_env,
    load_executor,
    load_keys,
    load_remote,
    load_vars,
)
from .specs import DepKind, DepSpec, Pipeline, PlotSpec, TargetSpec
from .yaml import Doc, decode_utf8

__all__ = ["load_pipeline"]

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load_pipeline(config_path: str, overrides: Mapping[str, Any] | None = None) -> Pipeline:
    """Read, validate and interpolate ``config_path``, with the ``--set`` values
    ``overrides`` over its params; raises ConfigError (or UsageError, for an override) on
    any problem."""
    return Loader(config_path, overrides).load()


def _read_config(config_path: str) -> bytes:
    try:
        with open(config_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{config_path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{config_path} is a directory", hint="pass the YAML file itself with -f"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{config_path} cannot be read: {exc.strerror or exc}",
            hint="check its permissions",
        ) from None
    observer = observe.active()
    if observer is not None:
        observer.read(config_path, data)
    return data


def _owner(out_owner: dict[str, str], rel: str) -> str | None:
    """The target whose out is ``rel`` or contains it, if any."""
    probe = rel
    while probe:
        if probe in out_owner:
            return out_owner[probe]
        probe = posixpath.dirname(probe)
    return None


class Loader:
    """Turns the composed document into a validated `Pipeline` (one instance per load)."""

    def __init__(self, config_path: str, overrides: Mapping[str, Any] | None = None) -> None:
        self.overrides = overrides or {}
        self.config_path = os.path.abspath(config_path)
        self.root = os.path.dirname(self.config_path)
        self.rel = os.path.basename(self.config_path)
        text = decode_utf8(_read_config(self.config_path), self.rel)
        self.doc = Doc(self.rel, text, Layout(self.root).parse_cache_dir)
        self.reader = Reader(self.doc)
        self.guard = OutGuard(self.root, self.rel)
        self.params = Params(self.rel)
        self.matrix = Matrix(self.reader, self.params)
        self.outs_of: dict[str, list[str]] = {}
        self.metrics_of: dict[str, list[str]] = {}
        self.plots_of: dict[str, tuple[PlotSpec, ...]] = {}
        self.out_owner: dict[str, str] = {}

    # -- the whole file ----------------------------------------------------------------
    def load(self) -> Pipeline:
        reader, top = self.reader, self.doc.value
        if not isinstance(top, dict):
            raise reader.fail(f"{self.rel} must hold a mapping with a 'targets' key", ())
        reader.check_keys(top, TOP_KEYS, (), "the top level")
        check_version(reader, top)
        self.params.load(reader, self.root, top)
        self.params.overlay(self.overrides)
        strict_inputs = reader.expect(
            top.get("strict_inputs", False), bool, ("strict_inputs",), "strict_inputs"
        )
        vars_ = load_vars(reader, top)
        env, secrets = load_env(reader, top.get("env"), ("env",))
        base = Scope("", self.params.values, vars_, env, matrix={}, secrets=secrets)
        packages = reader.str_list(top.get("packages", []) or [], ("packages",), "packages")
        executor = load_executor(reader, top.get("executor"))
        keys = load_keys(reader, self.root, top)
        self.guard.reserve(self.params.files, keys.signing_key, keys.trusted)
        raw_targets = top.get("targets")
        if raw_targets is None:
            raise reader.fail("missing required key 'targets'", ())
        reader.expect(raw_targets, dict, ("targets",), "targets")
        expanded = self.matrix.expand(raw_targets)
        names = [e.name for e in expanded]
        scopes = {e.name: self.load_outs(e, base) for e in expanded}
        self.check_overlaps(expanded)
        targets: dict[str, TargetSpec] = {}
        for e in expanded:
            spec = self.load_target(e, scopes[e.name], names, packages, strict_inputs)
            targets[e.name] = load_ml(
                reader, self.root, spec, e.path, e.body, names, self.outs_of, self.metrics_of,
                self.plots_of,
            )
        default = load_default(reader, top.get("default"), names)
        remote = load_remote(reader, top)
        cache_link = load_cache_link(reader, top.get("cache"))
        return Pipeline(
            root=self.root,
            config_path=self.config_path,
            targets=targets,
            default=default,
            jobs=executor.jobs,
            param_files=tuple(self.params.files),
            out_owner=self.out_owner,
            signing_key=keys.signing_key,
            trusted_keys=tuple(keys.trusted),
            remote=remote.url,
            remote_options=remote.options,
            remote_write=remote.write,
            cache_link=cache_link,
            executor=executor.kind,
            executor_address=executor.address,
            executor_mode=executor.mode,
            executor_connect_timeout=executor.connect_timeout,
            overrides=dict(self.overrides),
        )

    # -- outs of every target, before any dep ------------------------------------------
    def load_outs(self, e: Expanded, base: Scope) -> Scope:
        """Record the outs and metrics files of ``e``; return the scope its values are
        interpolated in (the target's env over the top level's)."""
        t_env, t_secrets = dict(base.env), dict(base.secrets)
        own_env, own_secrets = load_env(self.reader, e.body.get("env"), e.path + ("env",))
        for key, value in own_env.items():
            t_env[key] = value
            t_secrets.pop(key, None)
        for key, source in own_secrets.items():
            t_secrets[key] = source
            t_env.pop(key, None)
        scope = Scope(
            name=e.name,
            params=base.params,
            vars=base.vars,
            env=t_env,
            matrix=e.combo,
            secrets=t_secrets,
            matrix_reads=self.matrix.reads(e.path[1], e.combo),
        )
        outs = self._outs(e, scope)
        self.plots_of[e.name] = load_plots(  # before the metrics files: those stay last
            self.reader, self.root, self.guard, e.path, e.body.get("plots"), scope, outs
        )
        self.metrics_of[e.name] = self._metrics(e, scope, outs)
        self.outs_of[e.name] = outs
        return scope

    def _outs(self, e: Expanded, scope: Scope) -> list[str]:
        path = e.path
        outs: list[str] = []
        for i, raw in enumerate(
            self.reader.str_list(e.body.get("outs", []) or [], path + ("outs",), "outs")
        ):
            pos = self.doc.at(path + ("outs", i))
            rel = normalize_path(self.root, interpolate(raw, scope, pos, shell=False), pos, "out")
            full = os.path.join(self.root, rel)
            if not self.guard.parent_inside(rel) or (
                observe.islink(full) and not check_inside(self.root, rel)
            ):
                raise ConfigError(
                    f"out {raw!r} is outside the workspace (through a symlink)", pos=pos
                )
            self.guard.check_reserved(rel, pos, "out")
            if rel in outs:
                raise ConfigError(f"out {rel!r} is listed twice", pos=pos)
            outs.append(rel)
        return outs

    def _metrics(self, e: Expanded, scope: Scope, outs: list[str]) -> list[str]:
        """Metrics files are outs too (cached, restored, promoted): each is appended to
        ``outs`` after the rest."""
        path = e.path
        metrics: list[str] = []
        for i, raw in enumerate(
            self.reader.str_list(e.body.get("metrics", []) or [], path + ("metrics",), "metrics")
        ):
            pos = self.doc.at(path + ("metrics", i))
            rel = normalize_path(
                self.root, interpolate(raw, scope, pos, shell=False), pos, "metrics file"
            )
            if not rel.lower().endswith((".json", ".yaml", ".yml")):
                raise ConfigError(f"metrics file {rel!r} must be .json, .yaml or .yml", pos=pos)
            if not self.guard.parent_inside(rel):
                raise ConfigError(f"metrics file {raw!r} is outside the workspace", pos=pos)
            self.guard.check_reserved(rel, pos, "metrics file")
            if rel in metrics:
                raise ConfigError(f"metrics file {rel!r} is listed twice", pos=pos)
            metrics.append(rel)
            if rel not in outs:
                outs.append(rel)
        return metrics

    def check_overlaps(self, expanded: list[Expanded]) -> None:
        """Fill ``out_owner``; two targets may not declare one out, nor an out inside
        another (data/x inside data/ would make ownership ambiguous)."""
        out_owner = self.out_owner
        where = {e.name: e.path for e in expanded}
        for name, outs in self.outs_of.items():
            for i, rel in enumerate(outs):
                if rel in out_owner:
                    raise ConfigError(
                        f"out {rel!r} is also declared by target {out_owner[rel]!r}",
                        pos=self.doc.at(where[name] + ("outs", i)),
                    )
                out_owner[rel] = name
        for rel, owner in out_owner.items():
            parent = posixpath.dirname(rel)
            while parent:
                other = out_owner.get(parent)
                if other is not None and other != owner:
                    raise ConfigError(
                        f"out {rel!r} of {owner!r} lies inside out {parent!r} of {other!r}",
                        pos=self.doc.at(where[owner] + ("outs",)),
                    )
                if other is not None:
                    raise ConfigError(
                        f"out {rel!r} lies inside another out {parent!r} of the same target",
                        pos=self.doc.at(where[owner] + ("outs",)),
                    )
                parent = posixpath.dirname(parent)

    # -- one target --------------------------------------------------------------------
    def load_target(
        self,
        e: Expanded,
        scope: Scope,
        names: list[str],
        top_packages: list[str],
        top_strict_inputs: bool,
    ) -> TargetSpec:
        """Everything of one target but its metrics, checks, gates and promotion (ml.py)."""
        name, path, body = e.name, e.path, e.body
        reader = self.reader
        deps, dep_paths = self.load_deps(e, scope, names)
        declared = self.declared_params(e, scope)
        cmd, python = self.load_command(e, scope, dep_paths)
        if cmd is not None and self.overrides:
            self.check_overrides_reach(e, declared, scope)
        declared.update(scope.used_params)
        for key, value in scope.matrix_reads.items():
            declared.setdefault(key, value)  # a read of the whole list wins: it is wider
        resources = self.load_resources(path, body)
        always = reader.expect(body.get("always", False), bool, path + ("always",), "always")
        temp = reader.expect(body.get("temp", False), bool, path + ("temp",), "temp")
        retries = body.get("retries", 0)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise reader.fail("retries must be a non-negative integer", path + ("retries",))
        desc = reader.expect(body.get("desc", "") or "", str, path + ("desc",), "desc")
        strict_inputs = reader.expect(
            body.get("strict_inputs", top_strict_inputs),
            bool,
            path + ("strict_inputs",),
            "strict_inputs",
        )
        own_packages = reader.str_list(
            body.get("packages", []) or [], path + ("packages",), "packages"
        )
        return TargetSpec(
            name=name,
            cmd=cmd,
            python=python,
            deps=tuple(deps),
            dep_paths=tuple(dep_paths),
            outs=tuple(self.outs_of[name]),
            params=declared,
            env=scope.env,
            secrets=scope.secrets,
            packages=tuple(sorted(set(top_packages) | set(own_packages))),
            resources=resources,
            matrix=scope.matrix,
            always=always,
            retries=retries,
            desc=desc,
            pos=self.doc.key_at(path),
            strict_inputs=strict_inputs,
            temp=temp,
        )

    def load_deps(
        self, e: Expanded, scope: Scope, names: list[str]
    ) -> tuple[list[DepSpec], list[str]]:
        """``(deps, dep_paths)``: each entry is a target, a path a target produces (then a
        dep on that target), a glob, or a file or directory that exists."""
        name, path = e.name, e.path
        deps: list[DepSpec] = []
        dep_paths: list[str] = []
        for i, raw in enumerate(
            self.reader.str_list(e.body.get("deps", []) or [], path + ("deps",), "deps")
        ):
            pos = self.doc.at(path + ("deps", i))
            text = interpolate(raw, scope, pos, shell=False)
            if text in self.outs_of:
                if text == name:
                    raise ConfigError(f"target {name!r} depends on itself", pos=pos)
                deps.append(DepSpec(DepKind.TARGET, text))
                dep_paths.extend(self.outs_of[text])
                continue
            if ":" in text and not observe.exists(os.path.join(self.root, text)):
                raise ConfigError(
                    f"unknown target {text!r} in deps of {name!r}",
                    pos=pos,
                    hint=did_you_mean(text, names),
                )
            rel = normalize_path(self.root, text, pos, "dep")
            if GLOB_CHARS.search(rel):
                self.glob_dep(name, rel, deps, dep_paths)
                continue
            producer = _owner(self.out_owner, rel)
            if producer == name:
                raise ConfigError(f"dep {rel!r} is an out of {name!r} itself", pos=pos)
            if producer is None and not observe.exists(os.path.join(self.root, rel)):
                raise ConfigError(
                    f"dep {rel!r} of {name!r} does not exist and no target produces it",
                    pos=pos,
                    hint=did_you_mean(rel, [*names, *sorted(self.out_owner)]),
                )
            if producer is None:
                deps.append(DepSpec(DepKind.PATH, rel))
            else:
                deps.append(DepSpec(DepKind.TARGET, producer))
            dep_paths.append(rel)
        return deps, dep_paths

    def glob_dep(self, name: str, rel: str, deps: list[DepSpec], dep_paths: list[str]) -> None:
        """A glob dep of target ``name``: source files on disk are tracked by content; outs
        of other targets that the glob matches make those targets deps (even before the
        outs exist)."""
        out_owner = self.out_owner
        regex = glob_regex(rel)
        produced = {o for o, owner in out_owner.items() if owner != name and regex.fullmatch(o)}
        # A glob reaching into another target's directory out (shards/*.csv, with shards/
        # an out) depends on it even before the directory exists.
        first_wild = GLOB_CHARS.search(rel)
        fixed = posixpath.dirname(rel[: first_wild.start()]) if first_wild else ""
        container = _owner(out_owner, fixed) if fixed else None
        if container is not None and container != name:
            produced.add(fixed)
        sources: list[str] = []
        for found in expand_glob(self.root, rel):
            owner = _owner(out_owner, found)
            if owner is None:
                sources.append(found)
            elif owner != name:
                produced.add(found)
        producers = {_owner(out_owner, o) for o in produced}
        for upstream in sorted(p for p in producers if p is not None):
            deps.append(DepSpec(DepKind.TARGET, upstream))
        deps.append(DepSpec(DepKind.GLOB, rel, tuple(sorted(sources))))
        dep_paths.extend(sorted(produced | set(sources)))

    def declared_params(self, e: Expanded, scope: Scope) -> dict[str, Any]:
        """``params:`` of a target: keys it reads besides ``${params.*}``; each must exist."""
        path = e.path
        declared: dict[str, Any] = {}
        for i, raw_key in enumerate(
            self.reader.str_list(e.body.get("params", []) or [], path + ("params",), "params")
        ):
            key = interpolate(raw_key, scope, self.doc.at(path + ("params", i)), shell=False)
            value = lookup(scope.params, key)
            if value is MISSING:
                raise self.reader.fail(
                    f"param {key!r} of {e.name!r} is not defined in the params",
                    path + ("params", i),
                    hint=did_you_mean(key, flat_keys(scope.params)),
                )
            declared[key] = value
        return declared

    def check_overrides_reach(self, e: Expanded, declared: Mapping[str, Any], scope: Scope) -> None:
        """Refuse a ``--set`` value a shell command would never see: a key the target reads
        only through ``params:`` (so its script reads the params file itself, which keeps its
        value) and never through ``${params.*}``. Building it would record the override in
        the manifest for outs made from the file's value."""
        passed = [*scope.used_params, *scope.matrix_reads]
        for key in self.overrides:
            if any(covers(p, key) for p in passed):
                continue
            for i, read in enumerate(declared):
                if covers(read, key):
                    raise self.reader.fail(
                        f"--set {key}: target {e.name!r} reads {key!r} from the params file "
                        f"itself (params: [{read}]), so its command would not see the value",
                        e.path + ("params", i),
                        hint=f"pass it in cmd as ${{params.{key}}}, make the target a python: "
                        "callable, or edit the params file",
                    )

    def load_command(
        self, e: Expanded, scope: Scope, dep_paths: list[str]
    ) -> tuple[tuple[str, ...] | None, str | None]:
        """``(cmd, python)``: the interpolated shell command(s), or the callable; not both."""
        name, path, reader = e.name, e.path, self.reader
        cmd_raw = e.body.get("cmd")
        python = e.body.get("python")
        if cmd_raw is not None and python is not None:
            raise reader.fail(
                f"target {name!r} has both 'cmd' and 'python': choose one", path + ("python",)
            )
        cmd: tuple[str, ...] | None = None
        scope.outs = self.outs_of[name]
        scope.deps = dep_paths
        if cmd_raw is not None:
            cmds = reader.str_list(cmd_raw, path + ("cmd",), "cmd")
            if not cmds or any(not c.strip() for c in cmds):
                raise reader.fail("cmd must not be empty", path + ("cmd",))
            cmd = tuple(
                interpolate(
                    c,
                    scope,
                    self.doc.at(path + (("cmd", i) if isinstance(cmd_raw, list) else ("cmd",))),
                    shell=True,
                )
                for i, c in enumerate(cmds)
            )
        if python is not None:
            reader.expect(python, str, path + ("python",), "python")
            if not _CALLABLE.match(python):
                raise reader.fail(
                    f"python must be 'module:function', not {python!r}", path + ("python",)
                )
            check_module(reader, self.root, python, path + ("python",))
        return cmd, python

    def load_resources(self, path: tuple[Any, ...], body: dict[str, Any]) -> dict[str, int]:
        resources: dict[str, int] = {}
        raw_res = body.get("resources") or {}
        self.reader.expect(raw_res, dict, path + ("resources",), "resources")
        for key, value in raw_res.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.reader.fail(
                    f"resources.{key} must be a non-negative integer", path + ("resources", key)
                )
            resources[key] = value
        return resources
