"""Names on disk for per-target state: target names are data, never paths.

Per-target files live under ``.mlbuild/`` (``logs/<name>.log``, ``aside/<name>/``,
``failed/<name>/``, ``manifests/index/<name>.jsonl``), where ``<name>`` is
`target_file_name` of the target. The mapping is injective (two targets never share a
file) and its result is always one plain path segment: no name, however hostile (``..``,
``.``, ``a/../../x``, an empty string, a NUL), can climb out of its directory.

- The common case stays readable and as documented: ``model:prod`` → ``model__prod``,
  ``data.v2`` → ``data.v2``. That form is used only for names made of letters, digits,
  ``.``, ``_``, ``-`` and at most one ``:``, that do not start with ``.``, contain no
  ``__`` and no ``_`` next to the ``:`` (so the ``__`` standing for the colon is the only
  one in the result, and it decodes uniquely).
- Every other name is percent-encoded (only letters, digits and ``-`` kept) behind a
  leading ``%``, which the readable form never contains.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["target_file_name"]

_READABLE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(:[A-Za-z0-9_.\-]+)?")


def target_file_name(target: str) -> str:
    """The one file-name segment that stands for ``target`` (see the module docstring)."""
    if (
        _READABLE.fullmatch(target)
        and "__" not in target
        and "_:" not in target
        and ":_" not in target
    ):
        return target.replace(":", "__")
    return "%" + urllib.parse.quote(target, safe="-").replace(".", "%2E").replace("_", "%5F")
