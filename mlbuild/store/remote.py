"""A shared remote cache on any fsspec filesystem (``file://``, ``s3://``, ``gs://``, ...).

Layout under the remote URL, the local cache's layout, so any tool can check it::

    objects/ab/cdef…          file bytes (or a tree object), named by their xxh3-128 hex
    runs/ab/cdef….json        run-cache entry: build key → outs and manifest id
    manifests/ab/cdef….json   the manifest of the build that made the entry (+ .sig.json)

Objects are plain bytes: no packing, no compression. A run-cache entry is uploaded last,
after every object and the manifest it names, so a killed push never leaves an entry
pointing at missing objects. On object stores a PUT is atomic (an object appears whole or
not at all); on a plain filesystem (``file://``) each upload goes to a temporary name and
is renamed into place.

fsspec is imported only when a remote is used; the credentials and endpoint of ``s3://``
come from the usual AWS environment variables or from ``remote_options``. Every backend
error (botocore's, gcsfs', an OSError) becomes a one-line `RemoteError`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import MlbuildError
from .atomic import fsync_dir, fsync_file, rename_batch
from .cache import clone_file
from .records import digest_hex

__all__ = ["RefusedRecord", "Remote", "RemoteError", "object_rel"]

# Runs a function over items, on threads (`Transfer._map`); every call done when it returns.
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], Any]


def object_rel(digest: str) -> str:
    """Where the object ``xxh3-128:abcdef…`` lives on a remote: ``objects/ab/cdef…``."""
    hexd = digest_hex(digest)  # only checked hex becomes a path
    return f"objects/{hexd[:2]}/{hexd[2:]}"


# A remote directory asked about this many names is listed instead (Remote.missing).
LIST_FROM = 64


class RemoteError(MlbuildError):
    """The remote cannot be reached or answered something unusable (exit 1)."""


class RefusedRecord(RemoteError):
    """The remote answered, but a record it holds failed the strict parser: that build is
    not used (the remote itself is reachable; other targets may still come from it)."""


class Remote:
    """Byte-level access to the remote cache; knows paths, not digests' meaning."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec is a base dependency
            raise RemoteError("a remote cache needs fsspec", hint="pip install fsspec") from None
        self.url = url.rstrip("/")
        self.options = dict(options or {})
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **dict(options or {}))
        except (ImportError, ValueError) as exc:
            raise RemoteError(
                f"cannot use remote {url}: {exc}",
                hint='for s3:// install the extra: pip install "mlbuild[s3]"',
            ) from None
        self.root = root.rstrip("/")
        protocol = self.fs.protocol
        protocols = protocol if isinstance(protocol, (tuple, list)) else (protocol,)
        self.rename_into_place = bool({"file", "local"} & set(protocols))

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is there. On object stores a one-byte ranged read: one request,
        where ``fs.exists`` costs a HEAD plus a LIST (it also looks for a "directory")."""
        path = self.path(rel)
        try:
            if not self.rename_into_place:
                try:
                    self.fs.cat_file(path, start=0, end=1)
                    return True
                except FileNotFoundError:
                    return False
                except Exception:  # noqa: BLE001 - e.g. an empty object refuses a range
                    pass
            return os.path.exists(path) if self.rename_into_place else bool(self.fs.exists(path))
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: {exc}") from None

    def missing(self, rels: Sequence[str], run: Mapper) -> list[str]:
        """Those of ``rels`` that are not there, in order. A directory (an object store's
        prefix) asked about `LIST_FROM` names or more is listed once (one request per
        1,000 keys on S3) instead of asked about each name (one request each): a push of
        100,000 new objects asked the remote 100,000 times before it uploaded anything.
        A listing is trusted as `exists` is: a name there counts as present. ``run`` maps
        the questions onto the transfer's threads."""
        by_dir: dict[str, list[str]] = {}
        for rel in rels:
            by_dir.setdefault(rel.rsplit("/", 1)[0] if "/" in rel else "", []).append(rel)
        listed = [d for d, names in by_dir.items() if d and len(names) >= LIST_FROM]
        asked = [rel for d, names in by_dir.items() if d not in listed for rel in names]
        present: set[str] = set()
        for names in run(self._list_names, listed):
            present.update(names)
        present.update(
            rel for rel, there in zip(asked, run(self.exists, asked), strict=True) if there
        )
        return [rel for rel in rels if rel not in present]

    def _list_names(self, rel_dir: str) -> list[str]:
        """The workspace-style rels of the files directly in ``rel_dir`` (none if absent)."""
        path = self.path(rel_dir)
        try:
            if self.rename_into_place:
                names = os.listdir(path)
            else:
                self.fs.invalidate_cache(path)  # s3fs keeps listings: ask the store itself
                names = [str(p).rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]
        except FileNotFoundError:
            return []
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: listing {rel_dir}: {exc}") from None
        return [f"{rel_dir}/{name}" for name in names]

    def read(self, rel: str) -> bytes | None:
        """The bytes at ``rel``, or None when there is no such file."""
        try:
            data: bytes = self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: reading {rel}: {exc}") from None
        return data

    def download(self, rel: str, local: str) -> bool:
        """Copy ``rel`` to the local file ``local``; False when it does not exist."""
        try:
            if self.rename_into_place:  # a local path: the cache's copy, not fsspec's
                clone_file(self.path(rel), local)
            else:
                self.fs.get_file(self.path(rel), local)
        except FileNotFoundError:
            return False
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: downloading {rel}: {exc}") from None
        return True

    def upload(self, local: str, rel: str) -> None:
        """Put the local file at ``rel``, whole or not at all (see the module doc)."""
        dest = self.path(rel)
        try:
            if self.rename_into_place:  # a filesystem: temp name, fsync, rename
                # Not store.atomic.replacing(): the copy and the rename go through fsspec,
                # and the name is ``<dest>.tmp-<uuid>`` (what gc ages out on the remote).
                parent = dest.rsplit("/", 1)[0]
                self.fs.makedirs(parent, exist_ok=True)
                tmp = f"{dest}.tmp-{uuid.uuid4().hex}"
                self.fs.put_file(local, tmp)
                fsync_file(tmp)
                self.fs.mv(tmp, dest)
                fsync_dir(parent)
            else:  # an object store: a PUT is atomic, and there are no directories
                self.fs.put_file(local, dest)
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: uploading {rel}: {exc}") from None

    def upload_many(self, pairs: Sequence[tuple[str, str]], run: Mapper) -> None:
        """Put each ``(local file, rel)``, whole or not at all, with ``run`` mapping the
        uploads onto threads. On an object store, one atomic PUT each. On a filesystem,
        each to a temporary name, then one sync of the filesystem (`sync_filesystem`),
        the renames, and another sync: as with two fsyncs per file, no name points at
        bytes not on disk, at the cost of two syncs per batch."""
        if not self.rename_into_place:
            run(lambda pair: self.upload(*pair), pairs)
            return
        staged: list[tuple[str, str]] = []
        lock = threading.Lock()

        def stage(pair: tuple[str, str]) -> None:
            tmp = self._stage_upload(*pair)
            with lock:
                staged.append((tmp, self.path(pair[1])))

        try:
            run(stage, pairs)
            rename_batch(staged, self.root)
        except RemoteError:
            raise
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: uploading: {exc}") from None
        finally:
            for tmp, _ in staged:  # not renamed: nothing half-uploaded is left named
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _stage_upload(self, local: str, rel: str) -> str:
        """Copy ``local`` beside ``rel`` on a filesystem remote, under the temporary name
        ``<dest>.tmp-<uuid>`` (what gc ages out there); returns that name. The remote is
        a local path here: plain system calls and the cache's copy (a reflink where the
        filesystem has them), not fsspec's, which stats each file four times."""
        dest = self.path(rel)
        tmp = f"{dest}.tmp-{uuid.uuid4().hex}"
        try:
            try:
                clone_file(local, tmp)
            except FileNotFoundError:
                if not os.path.exists(local):
                    raise
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                clone_file(local, tmp)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise RemoteError(f"remote {self.url}: uploading {rel}: {exc}") from None
        return tmp

    def upload_bytes(self, data: bytes, rel: str, scratch: str) -> None:
        """Put ``data`` at ``rel`` (through a local temporary file under ``scratch``)."""
        os.makedirs(scratch, exist_ok=True)
        tmp = os.path.join(scratch, f".upload-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            self.upload(tmp, rel)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def delete(self, rel: str) -> None:
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
            raise RemoteError(f"remote {self.url}: deleting {rel}: {exc}") from None
