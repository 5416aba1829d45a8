"""The ``${...}`` engine: what a reference means in cmd, deps, outs and param keys.

Interpolation happens when the config is loaded, because its errors are config errors:

=====================  ==========================================================
``${params.a.b}``      a parameter value (tracked in the key even if not declared)
``${vars.x}``          a plain variable from ``vars:``
``${env.X}``           a declared env value (top level or the target's own)
``${outs}``            all outs, space separated; ``${outs[i]}`` one of them
``${deps}``            all dep paths (target deps expand to their outs); ``${deps[i]}``
``${target}``          the target's name
``${algo}``            a matrix variable
``${raw:EXPR}``        any of the above, not shell-quoted
``$${``                a literal ``${``
=====================  ==========================================================

In a shell ``cmd`` every substituted value is quoted with ``shlex.quote``, which is exactly
right only where the shell reads a plain word: outside any quotes (also inside ``( )`` and
``$( )``, whose content the shell parses afresh). Every other place is refused when the file
is loaded: inside double or single quotes, backticks, a here-document, a ``${...}``
expansion, ``$((...))`` or ``((...))`` arithmetic, a comment, right after a backslash or a
``$``, whatever the value (a config that loads is safe for every value). A small lexer
(`shell.shell_context_problem`) follows the shell's quoting over the finished command, so a value
from data (params, vars, env, matrix values, deps/outs paths, the target name) can never run
as a command, whatever its bytes. ``${raw:...}`` opts out: its value is pasted as shell text
(and the lexer reads it, so a raw value that opens a quote makes the next value refused).
What the command itself does with an argument (``eval``, ``sh -c``, bash's ``let``) is the
command's business. A NUL byte in a command or an env value is refused (no exec takes one).
In deps, outs and param keys nothing is quoted. Env values are taken literally (no
interpolation): they are part of the key as written.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, SourcePos
from ..suggest import did_you_mean
from .params import MISSING, flat_keys, lookup, render_value
from .shell import SH_SPECIAL, shell_context_problem

__all__ = ["Scope", "interpolate"]

_INTERP = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_INDEXED = re.compile(r"^(outs|deps)\[(\d+)\]$")


@dataclass
class Scope:
    """What ``${...}`` can see while one target is interpolated."""

    name: str
    params: Mapping[str, Any]
    vars: Mapping[str, Any]
    env: Mapping[str, str]
    matrix: Mapping[str, Any]
    secrets: Mapping[str, str] = field(default_factory=dict)
    outs: list[str] | None = None
    deps: list[str] | None = None
    used_params: dict[str, Any] = field(default_factory=dict)
    matrix_reads: dict[str, Any] = field(default_factory=dict)  # see Matrix.reads


def _resolve(expr: str, scope: Scope, pos: SourcePos) -> list[str]:
    """Value(s) of one ``${expr}``: a list so ``${outs}`` can quote each path alone."""
    expr = expr.strip()
    if expr == "target":
        return [scope.name]
    if expr in ("outs", "deps"):
        values = scope.outs if expr == "outs" else scope.deps
        if values is None:
            raise ConfigError(f"${{{expr}}} can only be used in cmd", pos=pos)
        return list(values)
    m = _INDEXED.match(expr)
    if m:
        return [_indexed(expr, m, scope, pos)]
    head, _, rest = expr.partition(".")
    if head in ("params", "vars", "env") and rest:
        return [_named(head, rest, scope, pos)]
    if expr in scope.matrix:
        return [render_value(scope.matrix[expr])]
    raise _undefined(expr, scope, pos)


def _indexed(expr: str, m: re.Match[str], scope: Scope, pos: SourcePos) -> str:
    """``${outs[i]}`` or ``${deps[i]}``."""
    values = scope.outs if m.group(1) == "outs" else scope.deps
    if values is None:
        raise ConfigError(f"${{{expr}}} can only be used in cmd", pos=pos)
    index = int(m.group(2))
    if index >= len(values):
        raise ConfigError(f"${{{expr}}}: the target has only {len(values)} {m.group(1)}", pos=pos)
    return values[index]


def _named(head: str, rest: str, scope: Scope, pos: SourcePos) -> str:
    """``${params.X}`` (recorded as used), ``${vars.X}`` or ``${env.X}`` (never a secret)."""
    if head == "params":
        value = lookup(scope.params, rest)
        if value is MISSING:
            hint = did_you_mean(rest, flat_keys(scope.params))
            raise ConfigError(f"undefined param ${{params.{rest}}}", pos=pos, hint=hint)
        scope.used_params[rest] = value
        return render_value(value)
    if head == "vars":
        if rest not in scope.vars:
            raise ConfigError(
                f"undefined variable ${{vars.{rest}}}",
                pos=pos,
                hint=did_you_mean(rest, sorted(scope.vars)),
            )
        return render_value(scope.vars[rest])
    if rest in scope.secrets:
        raise ConfigError(
            f"${{env.{rest}}} is a secret: it cannot be written into a command",
            pos=pos,
            hint=f"let the command read ${rest} from its environment",
        )
    if rest not in scope.env:
        raise ConfigError(
            f"undefined env ${{env.{rest}}} (only declared env values can be used)",
            pos=pos,
            hint=did_you_mean(rest, sorted(scope.env)),
        )
    return scope.env[rest]


def _undefined(expr: str, scope: Scope, pos: SourcePos) -> ConfigError:
    """The error for a reference nothing defines, with the closest one that exists."""
    choices = ["target", "outs", "deps", *scope.matrix]
    if re.fullmatch(r"[A-Za-z_]\w*", expr):
        # A bare name is how a matrix variable is used: say which target lacks it.
        defined = ", ".join(sorted(scope.matrix)) or "none: it has no matrix"
        return ConfigError(
            f"undefined matrix variable ${{{expr}}} in target {scope.name!r} "
            f"(its matrix variables: {defined})",
            pos=pos,
            hint=did_you_mean(expr, list(scope.matrix))
            or f"add {expr} to matrix:, or use params.{expr} / vars.{expr}",
        )
    return ConfigError(
        f"undefined reference ${{{expr}}}",
        pos=pos,
        hint=did_you_mean(expr, choices) or "use params.X, vars.X, env.X, outs, deps or target",
    )


def interpolate(text: str, scope: Scope, pos: SourcePos, *, shell: bool) -> str:
    """Substitute every ``${...}`` in ``text``; shell-quote values when ``shell``.

    With ``shell``, each quoted value must land where the shell reads a plain word (see
    `shell_context_problem`); anywhere else the command is refused, whatever the value.
    """
    if "${" not in text:
        if shell and "\x00" in text:
            raise _nul_in_command(pos)
        return text
    if not shell:

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            expr = m.group(1)
            return " ".join(_resolve(expr[4:] if expr.startswith("raw:") else expr, scope, pos))

        return _INTERP.sub(repl, text)
    command = _Command()
    last = 0
    for m in _INTERP.finditer(text):
        command.literal(text[last : m.start()], dollar_brace=m.group(0) == "$${")
        last = m.end()
        if m.group(0) != "$${":
            command.value(m.group(0), m.group(1), scope, pos)
    command.literal(text[last:], dollar_brace=False)
    result = "".join(command.pieces)
    if "\x00" in result:
        raise _nul_in_command(pos)
    command.check_contexts(result, pos)
    return result


class _Command:
    """A shell command being interpolated: its pieces, and where each quoted value went."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.literals: list[str] = []  # the command's own text, to decide whether to lex
        self.spans: list[tuple[int, int]] = []  # where each quoted value landed in the result
        self.labels: list[str] = []
        self.size = 0
        self.lex = False  # raw text and $${ are shell syntax from elsewhere: always lex

    def literal(self, literal: str, *, dollar_brace: bool) -> None:
        """The command's own text before a reference (``dollar_brace``: the ``$${`` one)."""
        self.literals.append(literal)
        if dollar_brace:
            literal += "${"  # the shell sees ${: a parameter expansion starts here
            self.lex = True
        self.pieces.append(literal)
        self.size += len(literal)

    def value(self, label: str, expr: str, scope: Scope, pos: SourcePos) -> None:
        """The value of ``${expr}`` (written ``label``): quoted, or pasted when raw."""
        raw = False
        if expr.startswith("raw:"):
            raw, expr = True, expr[4:]
        values = _resolve(expr, scope, pos)
        if any("\x00" in v for v in values):
            raise ConfigError(
                f"{label} has a NUL byte in its value: a command line cannot hold one",
                pos=pos,
            )
        if raw:
            piece = " ".join(values)
            self.lex = True  # raw text is shell text: it may open a quote
        else:
            piece = " ".join(shlex.quote(v) for v in values)
            if piece:  # an empty ${outs} inserts nothing
                self.spans.append((self.size, self.size + len(piece)))
                self.labels.append(label)
        self.pieces.append(piece)
        self.size += len(piece)

    def check_contexts(self, result: str, pos: SourcePos) -> None:
        """Refuse the command if a quoted value landed where the shell does not read a
        plain word."""
        # Without quotes, `$`, `#`, `\\`, `<<` or `((` in the command's own text every value
        # is a plain word; the literals are joined so that `<${outs}<` (empty outs) still
        # reads `<<`.
        if not self.spans or not (self.lex or SH_SPECIAL.search("".join(self.literals))):
            return
        problem = shell_context_problem(result, self.spans)
        if problem is None:
            return
        index, where = problem
        label = self.labels[index]
        inner = label[2:-1].strip()
        raise ConfigError(
            f"{label} is {where} in this command: shell quoting cannot stop a value "
            "there from running as a command",
            pos=pos,
            hint=f"put it outside any quotes, where it is quoted for you: "
            f'--name={label} or "text "{label}" text"; {_raw_hint(inner)}',
        )


def _nul_in_command(pos: SourcePos) -> ConfigError:
    return ConfigError(
        "the command has a NUL byte: a command line cannot hold one",
        pos=pos,
        hint="check the escapes in the string",
    )


def _raw_hint(inner: str) -> str:
    return f"${{raw:{inner}}} pastes it unquoted, at your own risk"
