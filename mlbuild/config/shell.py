"""Where a quoted value lands in a shell command: the lexer that keeps ``${...}`` safe.

See interpolate.py for what is refused and why.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["SH_SPECIAL", "shell_context_problem"]

# shlex.quote makes a value one literal word *where the shell reads a plain word*. The lexer
# below follows the shell's quoting over a finished command and names every other place a
# quoted value landed. It follows POSIX sh, and bash where shells differ:
#
#   plain:   the script, ( subshell ), $( command ) — also inside "...": $( ) starts afresh
#   refused: "...", '...', `...`, ${...}, $((...)), ((...)), here-document bodies and
#            delimiters, comments, right after \ or $
#
# Where it cannot follow the shell for sure ($'...' quoting, bash's $[...], a quote inside
# "${...}", a `case` inside parentheses, whose `pattern)` closes nothing) every later value
# is refused: it errs on the side of no. bash is the reference where shells differ: it is
# /bin/sh on many systems, and it is the one that evaluates more (((...)), $[...]).

SH_SPECIAL = re.compile(r"""[\\'"`$#]|<<|\(\(""")
_SH_PLAIN_NEXT = re.compile(r"""[\\'"`$#()<\n{}]|(?<![^\s;&|()<>])case(?![^\s;&|()<>])""")
_SH_DQ_NEXT = re.compile(r"""[\\"`$]""")
_SH_BT_NEXT = re.compile(r"[\\`]")
_SH_WORD_END = frozenset(" \t\n;&|()<>")


class _Sh(Enum):
    """Where the shell is while it reads a command (the lexer's stack)."""

    TOP = "plain"
    SUBSHELL = "in ( )"
    CMDSUB = "in $( )"
    DQUOTE = "inside double quotes"
    BACKTICK = "inside backticks"
    PARAM = "inside a ${...} shell expansion"
    ARITH = "inside $((...)) or ((...)) arithmetic"


_SH_PLAIN = (_Sh.TOP, _Sh.SUBSHELL, _Sh.CMDSUB)


def shell_context_problem(text: str, spans: list[tuple[int, int]]) -> tuple[int, str] | None:
    """The first span of ``text`` (index into ``spans``) that is not in a plain context,
    with where it is; None when every span is a plain word. Spans are sorted, disjoint,
    and opaque here (each is one shlex-quoted word)."""
    return _Lexer(text, spans).run()


_Problem = tuple[int, str]  # index of a span, where it is


class _Lexer:
    """One pass over a command: a stack of contexts, each with a depth (open ``(`` of an
    ARITH, open ``{`` of a PARAM), and the here-documents whose bodies start on the next
    line. Each ``_on_*`` method reads the character at ``i`` and moves ``i`` past what it
    read; it returns a problem, or None to go on."""

    def __init__(self, text: str, spans: list[tuple[int, int]]) -> None:
        self.text = text
        self.n = len(text)
        self.spans = spans
        self.starts = {start: (index, end) for index, (start, end) in enumerate(spans)}
        self.stack: list[_Sh] = [_Sh.TOP]
        self.depth: list[int] = [0]
        self.heredocs: list[tuple[str, bool]] = []  # pending: delimiter, strip tabs (<<-)
        self.unsure: str | None = None
        self.nxt_span = 0  # index of the first span not yet passed
        self.i = 0

    def run(self) -> _Problem | None:
        text, spans = self.text, self.spans
        while self.i < self.n:
            if self.nxt_span < len(spans) and spans[self.nxt_span][0] < self.i:
                # Skipped without being checked: a case this lexer does not know. Refuse.
                return self.nxt_span, "somewhere mlbuild cannot follow"
            span_at = spans[self.nxt_span][0] if self.nxt_span < len(spans) else self.n
            ctx = self.stack[-1]
            pattern = (
                _SH_DQ_NEXT
                if ctx is _Sh.DQUOTE
                else _SH_BT_NEXT
                if ctx is _Sh.BACKTICK
                else _SH_PLAIN_NEXT
            )
            found = pattern.search(text, self.i, span_at)
            if found is None:
                if span_at >= self.n:
                    return None
                problem = self._on_span(span_at, ctx)
            else:
                self.i = found.start()
                problem = self._on_char(text[self.i], ctx, span_at)
            if problem is not None:
                return problem
        return None

    def _first_in(self, lo: int, hi: int) -> int | None:
        for index, (start, _) in enumerate(self.spans):
            if lo <= start < hi:
                return index
        return None

    def _push(self, ctx: _Sh, width: int) -> None:
        self.stack.append(ctx)
        self.depth.append(0)
        self.i += width

    def _pop(self) -> None:
        self.stack.pop()
        self.depth.pop()

    def _on_span(self, span_at: int, ctx: _Sh) -> _Problem | None:
        """A quoted value starts at ``span_at``: fine only in a plain context."""
        index, end = self.starts[span_at]
        if self.unsure is not None:
            return index, self.unsure
        if ctx not in _SH_PLAIN:
            return index, ctx.value
        self.nxt_span += 1
        self.i = end
        return None

    def _on_char(self, c: str, ctx: _Sh, span_at: int) -> _Problem | None:
        if c == "\\":
            return self._on_backslash(ctx)
        if ctx is _Sh.BACKTICK:
            if c == "`":
                self._pop()
            self.i += 1
        elif c == "`":
            self._push(_Sh.BACKTICK, 1)
        elif c == "$":
            return self._on_dollar(ctx)
        elif ctx is _Sh.DQUOTE:
            if c == '"':
                self._pop()
            self.i += 1
        elif c == "'":
            return self._on_single_quote(ctx, span_at)
        elif c == '"':
            self._push(_Sh.DQUOTE, 1)
        elif ctx is _Sh.PARAM:
            self._on_param(c)
        elif ctx is _Sh.ARITH:
            self._on_arith(c)
        else:
            return self._on_plain(c)
        return None

    def _on_backslash(self, ctx: _Sh) -> _Problem | None:
        i, starts = self.i, self.starts
        if i + 1 in starts and ctx is not _Sh.BACKTICK and ctx is not _Sh.DQUOTE:
            return starts[i + 1][0], "right after a backslash"
        self.i += 1 if i + 1 in starts else 2
        return None

    def _on_dollar(self, ctx: _Sh) -> _Problem | None:
        text, i = self.text, self.i
        if i + 1 in self.starts:
            return self.starts[i + 1][0], "right after a $"
        if text.startswith("$((", i):
            self._push(_Sh.ARITH, 3)
        elif text.startswith("$(", i):
            self._push(_Sh.CMDSUB, 2)
        elif text.startswith("${", i):
            self._push(_Sh.PARAM, 2)
        else:
            if text.startswith("$'", i) and ctx is not _Sh.DQUOTE:
                self.unsure = "after $'...' quoting, which mlbuild cannot follow"
            elif text.startswith("$[", i):  # bash's old $[ arithmetic ]
                self.unsure = "after $[...] arithmetic, which mlbuild cannot follow"
            self.i += 1
        return None

    def _on_single_quote(self, ctx: _Sh, span_at: int) -> _Problem | None:
        if ctx is _Sh.PARAM and _Sh.DQUOTE in self.stack:  # "${x:-'...'}": shells differ
            self.unsure = 'after a quote inside "${...}", which shells read differently'
        close = self.text.find("'", self.i + 1)
        close = self.n if close < 0 else close
        if span_at < self.n and span_at <= close:  # the quote found may be the span's own
            return self.nxt_span, "inside single quotes"
        self.i = close + 1
        return None

    def _on_param(self, c: str) -> None:
        if c == "{":
            self.depth[-1] += 1
        elif c == "}":
            if self.depth[-1] == 0:
                self._pop()
            else:
                self.depth[-1] -= 1
        self.i += 1

    def _on_arith(self, c: str) -> None:
        if c == "(":
            self.depth[-1] += 1
        elif c == ")":
            if self.depth[-1] == 0 and self.text.startswith("))", self.i):
                self._pop()
                self.i += 2
                return
            self.depth[-1] = max(0, self.depth[-1] - 1)
        self.i += 1

    def _on_plain(self, c: str) -> _Problem | None:
        """The script, a ( subshell ) or a $( command substitution )."""
        text, i = self.text, self.i
        if c == "#" and (i == 0 or text[i - 1] in _SH_WORD_END):
            end = text.find("\n", i)
            end = self.n if end < 0 else end
            inside = self._first_in(i, end)
            if inside is not None:
                return inside, "inside a comment"
            self.i = end
            return None
        if c == "(" and text.startswith("((", i):  # bash's (( arithmetic )), for ((;;))
            self._push(_Sh.ARITH, 2)
            return None
        if c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            return self._on_heredoc(i + 2)
        if c == "\n" and self.heredocs:
            return self._on_heredoc_bodies()
        if c == "(":
            self._push(_Sh.SUBSHELL, 0)
        elif c == ")":
            if len(self.stack) > 1:
                self._pop()
        elif c == "c" and (_Sh.SUBSHELL in self.stack or _Sh.CMDSUB in self.stack):
            self.unsure = "after a `case` inside ( ) or $( ), which mlbuild cannot follow"
        self.i += 1
        return None

    def _on_heredoc(self, j: int) -> _Problem | None:
        """``<<WORD`` (or ``<<-WORD``) from ``j``, just past ``<<``: the delimiter, with its
        quotes removed; a value in it is refused."""
        text, n, starts = self.text, self.n, self.starts
        strip = text.startswith("-", j)
        j += strip
        while j < n and text[j] in " \t":
            j += 1
        word: list[str] = []
        while j < n and text[j] not in _SH_WORD_END:
            if j in starts or (text[j] == "\\" and j + 1 in starts):
                return starts[j + (j not in starts)][0], "used as a here-document delimiter"
            if text[j] in "'\"":
                close = text.find(text[j], j + 1)
                close = n if close < 0 else close
                inside = self._first_in(j + 1, close + 1)
                if inside is not None:
                    return inside, "used as a here-document delimiter"
                word.append(text[j + 1 : close])
                j = close + 1
            elif text[j] == "\\":
                word.append(text[j + 1 : j + 2])
                j += 2
            else:
                word.append(text[j])
                j += 1
        self.heredocs.append(("".join(word), strip))
        self.i = j
        return None

    def _on_heredoc_bodies(self) -> _Problem | None:
        """The bodies of the pending here-documents start on the next line, one after the
        other; a value in one is refused."""
        text, n = self.text, self.n
        j = self.i + 1
        for delim, strip in self.heredocs:
            body = j
            while j < n:
                line_end = text.find("\n", j)
                line_end = n if line_end < 0 else line_end
                line = text[j:line_end]
                j = line_end + 1
                if (line.lstrip("\t") if strip else line) == delim:
                    inside = self._first_in(body, line_end)
                    break
            else:
                inside = self._first_in(body, n)
            if inside is not None:
                return inside, "inside a here-document"
        self.heredocs.clear()
        self.i = j
        return None
