"""Click's shell support, with bash taught that ``:`` is part of a target name.

Imported only when a shell asks (``_MLBUILD_COMPLETE`` set: `main`) or a script is printed
(`mlbuild completion`), so that no other command pays for click.shell_completion.

Bash splits words at ``:`` (COMP_WORDBREAKS), which target names hold (``model:prod``):
`BashTargets` glues the pieces back before click resolves them and, as bash-completion's
``__ltrim_colon_completions`` does, answers only the part after the last colon of the word
being completed (the part bash replaces). The script bash runs is click's, unchanged.
"""

from __future__ import annotations

import os
from typing import Any

from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    add_completion_class,
    split_arg_string,
)

__all__ = ["SHELLS", "BashTargets", "glue_colons"]


class BashTargets(BashComplete):
    """Click's bash support, with the words bash split at ``:`` glued back together."""

    _colon_prefix = ""  # the incomplete word up to its last colon (bash keeps that part)

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_arg_string(os.environ["COMP_WORDS"])[1:]
        cword = int(os.environ["COMP_CWORD"]) - 1
        # The cursor after a space: a new, empty word, glued to nothing.
        current = words[: cword + 1] if cword < len(words) else [*words, ""]
        args, last = glue_colons(current[:-1]), current[-1]
        if args and last and (last.startswith(":") or args[-1].endswith(":")):
            last = args.pop() + last
        self._colon_prefix = last[: last.rfind(":") + 1]
        return args, last

    def format_completion(self, item: CompletionItem[Any]) -> str:
        prefix = self._colon_prefix
        if prefix and isinstance(item.value, str) and item.value.startswith(prefix):
            item = CompletionItem(item.value[len(prefix) :], type=item.type, help=item.help)
        return super().format_completion(item)


def glue_colons(words: list[str]) -> list[str]:
    """``model`` ``:`` ``prod`` (bash's split of ``model:prod``) back into one word."""
    out: list[str] = []
    for word in words:
        if out and (word.startswith(":") or out[-1].endswith(":")):
            out[-1] += word
        else:
            out.append(word)
    return out


SHELLS: dict[str, type[ShellComplete]] = {
    "bash": BashTargets,
    "zsh": ZshComplete,
    "fish": FishComplete,
}

add_completion_class(BashTargets, "bash")  # click's registry: what `bash_complete` runs
