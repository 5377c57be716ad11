"""The data store: one bucket-like tree addressed by URI (``s3://bucket/prefix`` or a local path).

The same layout is used on S3 and on a local directory, so every runtime reads and writes
through this one class. Keys are ``/``-separated paths relative to the store's root.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyarrow import fs as pafs


class DataStore:
    """A key/value view of a local directory or an S3 prefix.

    Parameters
    ----------
    root_uri
        ``s3://bucket/prefix``, ``file:///abs/path`` or a plain local path.
    """

    def __init__(self, root_uri: str) -> None:
        if "://" in root_uri and not root_uri.startswith("file://"):
            self._fs, root = pafs.FileSystem.from_uri(root_uri)
            self._scheme = root_uri.split("://", 1)[0]
            self.is_local = False
        else:
            local = Path(root_uri.removeprefix("file://")).expanduser().resolve()
            local.mkdir(parents=True, exist_ok=True)
            self._fs, root = pafs.LocalFileSystem(), str(local)
            self._scheme = ""
            self.is_local = True
        self._root = root.rstrip("/")

    @property
    def root_uri(self) -> str:
        return self.uri("")

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (what pyarrow and local Spark take)."""
        return posixpath.join(self._root, key) if key else self._root

    def uri(self, key: str) -> str:
        """The URI of ``key``: an absolute path locally, ``s3://…`` on AWS (what Spark takes)."""
        path = self.path(key)
        return f"{self._scheme}://{path}" if self._scheme else path

    def key_of(self, uri: str) -> str:
        """The key of a URI or path inside this store (inverse of :meth:`uri`)."""
        path = uri.split("://", 1)[1] if self._scheme and "://" in uri else uri
        path = path.removeprefix("file://")
        if not path.startswith(self._root):
            raise ValueError(f"{uri} is outside the data store {self.root_uri}")
        return path[len(self._root) :].lstrip("/")

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._fs

    def exists(self, key: str) -> bool:
        return bool(self._fs.get_file_info(self.path(key)).type != pafs.FileType.NotFound)

    def open_stream(self, key: str) -> pa.NativeFile:
        """``key`` for one sequential read (one GET on S3)."""
        return self._fs.open_input_stream(self.path(key))

    def open_file(self, key: str) -> pa.NativeFile:
        """``key`` for random access (ranged GETs on S3)."""
        return self._fs.open_input_file(self.path(key))

    def read_bytes(self, key: str) -> bytes:
        with self._fs.open_input_stream(self.path(key)) as stream:
            data: bytes = stream.read()
            return data

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``key`` whole: readers see the old object or the new one, never a part.

        S3 PUTs are atomic already; locally the bytes go to a sibling temp file first.
        """
        target = self.path(key)
        if self.is_local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            temp = f"{target}.{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as handle:
                handle.write(data)
            Path(temp).replace(target)
            return
        with self._fs.open_output_stream(target) as stream:
            stream.write(data)

    def copy(self, source: str, target: str) -> None:
        """Copy ``source`` to ``target`` whole (S3: a server-side copy, objects up to 5 GB)."""
        if self.is_local:
            Path(self.path(target)).parent.mkdir(parents=True, exist_ok=True)
        self._fs.copy_file(self.path(source), self.path(target))

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, document: Any) -> None:
        self.write_bytes(key, json.dumps(document, indent=2, sort_keys=True, default=str).encode())

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[str]:
        """Keys of the files under ``prefix`` (sorted; empty when the prefix does not exist)."""
        selector = pafs.FileSelector(self.path(prefix), allow_not_found=True, recursive=recursive)
        infos = self._fs.get_file_info(selector)
        files = (info.path for info in infos if info.type == pafs.FileType.File)
        yield from sorted(self.key_of(path) for path in files)

    def delete(self, key: str) -> None:
        if self.exists(key):
            self._fs.delete_file(self.path(key))

    def delete_prefix(self, prefix: str) -> None:
        info = self._fs.get_file_info(self.path(prefix))
        if info.type == pafs.FileType.Directory:
            self._fs.delete_dir(self.path(prefix))
        elif info.type == pafs.FileType.File:
            self._fs.delete_file(self.path(prefix))

    def size(self, key: str) -> int:
        return int(self._fs.get_file_info(self.path(key)).size or 0)
