"""A bucket to a directory and back: ``yunbang backup objects DIR`` / ``yunbang restore objects
DIR`` (docs/operations.md, "Backup and restore"), what ``mc mirror`` does for MinIO, through
the ``minio`` client the app already uses, so any S3-compatible store and no extra tool will do.

The directory::

    DIR/yunbang-objects.json   what it is: bucket, when, how many objects and bytes, complete?
    DIR/objects/<key>          each object's bytes, under its own key
    DIR/meta/<key>.json        its size, ETag, SHA-256, Content-Type and metadata

A backup mirrors the bucket: an object already in DIR with the same ETag and size is not
fetched again (a run that was cut off resumes), and objects no longer in the bucket (retention
deleted them) leave DIR at the end of a run that listed the whole bucket, so a restore never
brings back a document that was meant to be gone. A restore puts every object back with its
Content-Type and metadata and skips those the bucket already has at that size (the app never
rewrites a key: ``new_key`` makes a new one for every object), so it resumes too.

One object at a time, streamed in 1 MiB chunks: memory does not grow with the bucket. These
are synchronous: they run in a command of their own, not on the server's event loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from minio import Minio
from minio.error import S3Error

FORMAT = "yunbang-objects"
VERSION = 1
MANIFEST = "yunbang-objects.json"
CHUNK = 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
# Headers S3 keeps with an object and hands back: what a restore must set again.
KEPT_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Tally:
    copied: int = 0
    copied_bytes: int = 0
    unchanged: int = 0
    removed: int = 0

    def line(self, verb: str) -> str:
        parts = [f"{verb} {self.copied} objects ({self.copied_bytes} bytes)", f"{self.unchanged} already there"]
        if self.removed:
            parts.append(f"{self.removed} no longer in the bucket removed from the backup")
        return ", ".join(parts)


def _relative(key: str) -> Path:
    """An object key as a relative path, refused when it could leave the directory."""
    parts = key.split("/")
    if not key or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        raise BackupError(f"object key {key!r} cannot be a file name (empty, '.' or '..' segment)")
    return Path(*parts)


def _write_file(path: Path, scratch: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Written beside, fsynced, then renamed into place: a cut-off run leaves no half file."""
    scratch.mkdir(parents=True, exist_ok=True)
    partial = scratch / uuid.uuid4().hex
    try:
        with open(partial, "xb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, path)
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
            raise BackupError(f"{path}: one key is a prefix of another ({exc})") from exc
    finally:
        partial.unlink(missing_ok=True)


def _write_json(path: Path, scratch: Path, data: dict[str, Any]) -> None:
    _write_file(path, scratch, lambda out: out.write(json.dumps(data, ensure_ascii=False, indent=1).encode()))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} is unreadable: {exc}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BucketBackup:
    """One bucket of one S3-compatible store (``client`` as the app builds it) and one directory."""

    def __init__(self, client: Minio, bucket: str, directory: Path) -> None:
        self.client, self.bucket, self.root = client, bucket, Path(directory)
        self.objects, self.meta, self.scratch = self.root / "objects", self.root / "meta", self.root / ".partial"

    def _meta_path(self, key: str) -> Path:
        relative = _relative(key)
        return self.meta / relative.parent / f"{relative.name}.json"

    # -- backup

    def backup(self, progress: Callable[[str], None] = lambda line: None) -> Tally:
        manifest = self.root / MANIFEST
        previous: dict[str, Any] = {}
        if manifest.exists():
            previous = _read_json(manifest)
            if previous.get("format") != FORMAT:
                raise BackupError(f"{self.root} holds something else than an object backup")
        elif self.root.exists() and any(self.root.iterdir()):
            raise BackupError(f"{self.root} is not empty and not an object backup: name a new directory")
        if not self.client.bucket_exists(bucket_name=self.bucket):
            raise BackupError(f"bucket {self.bucket!r} does not exist")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # This run's mark, in whole seconds (what every filesystem's mtime keeps) and never the
        # last run's: each object seen gets it, and what keeps an older mark was not seen.
        started_at, mark = _now(), max(int(time.time()), int(previous.get("mark", 0)) + 1)
        _write_json(manifest, self.scratch, {"format": FORMAT, "version": VERSION, "bucket": self.bucket,
                                             "started": started_at, "mark": mark, "complete": False})
        tally, total, total_bytes = Tally(), 0, 0
        for listed in self.client.list_objects(bucket_name=self.bucket, recursive=True):
            if listed.is_dir or listed.object_name is None:
                continue
            key, etag, size = listed.object_name, (listed.etag or "").strip('"'), int(listed.size or 0)
            meta_path = self._meta_path(key)
            total, total_bytes = total + 1, total_bytes + size
            if self._unchanged(key, meta_path, etag, size):
                tally.unchanged += 1
            else:
                self._fetch(key, meta_path, etag, size)
                tally.copied, tally.copied_bytes = tally.copied + 1, tally.copied_bytes + size
                if tally.copied % 100 == 0:
                    progress(f"{tally.copied} objects copied")
            os.utime(meta_path, (mark, mark))  # seen in this run: kept by the sweep below
        tally.removed = self._sweep(mark)
        _write_json(manifest, self.scratch, {"format": FORMAT, "version": VERSION, "bucket": self.bucket,
                                             "started": started_at, "finished": _now(), "mark": mark,
                                             "complete": True, "objects": total, "bytes": total_bytes})
        return tally

    def _unchanged(self, key: str, meta_path: Path, etag: str, size: int) -> bool:
        if not meta_path.is_file():
            return False
        meta = _read_json(meta_path)
        data = self.objects / _relative(key)
        return meta.get("etag") == etag and meta.get("size") == size and data.is_file() and data.stat().st_size == size

    def _fetch(self, key: str, meta_path: Path, etag: str, size: int) -> None:
        response = self.client.get_object(bucket_name=self.bucket, object_name=key)
        digest, got = hashlib.sha256(), 0
        try:
            def fill(out: BinaryIO) -> None:
                nonlocal got
                for chunk in response.stream(CHUNK, decode_content=False):  # the bytes as stored
                    digest.update(chunk)
                    out.write(chunk)
                    got += len(chunk)
                if got != size:
                    raise BackupError(f"{key}: {got} bytes read of {size} listed (changed while copied? run again)")

            _write_file(self.objects / _relative(key), self.scratch, fill)
            headers = response.headers
        finally:
            response.close()
            response.release_conn()
        kept = {name: value for name, value in headers.items()
                if name.lower().startswith("x-amz-meta-") or name.lower() in KEPT_HEADERS}
        _write_json(meta_path, self.scratch, {
            "key": key, "size": size, "etag": etag, "sha256": digest.hexdigest(),
            "content_type": headers.get("Content-Type", "application/octet-stream"), "metadata": kept})

    def _sweep(self, mark: int) -> int:
        """Objects this run did not see (gone from the bucket) leave the backup."""
        removed = 0
        for meta_path in self._meta_files():
            if int(meta_path.stat().st_mtime) == mark:
                continue
            key = _read_json(meta_path)["key"]
            (self.objects / _relative(key)).unlink(missing_ok=True)
            meta_path.unlink()
            removed += 1
        return removed

    def _meta_files(self) -> Iterator[Path]:
        for folder, _, files in os.walk(self.meta):
            for name in sorted(files):
                if name.endswith(".json"):
                    yield Path(folder) / name

    # -- restore

    def restore(self, progress: Callable[[str], None] = lambda line: None) -> Tally:
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise BackupError(f"{self.root} is not an object backup (no {MANIFEST})")
        about = _read_json(manifest)
        if about.get("format") != FORMAT or about.get("version") != VERSION:
            raise BackupError(f"{manifest}: not a {FORMAT} backup of version {VERSION}")
        if not about.get("complete"):
            raise BackupError(f"the backup in {self.root} did not finish: run the backup again to complete it")
        if not self.client.bucket_exists(bucket_name=self.bucket):
            self.client.make_bucket(bucket_name=self.bucket)
        tally = Tally()
        for meta_path in self._meta_files():
            meta = _read_json(meta_path)
            key, size = meta["key"], int(meta["size"])
            if self._in_bucket(key, size):
                tally.unchanged += 1
                continue
            self._put(meta)
            tally.copied, tally.copied_bytes = tally.copied + 1, tally.copied_bytes + size
            if tally.copied % 100 == 0:
                progress(f"{tally.copied} objects restored")
        return tally

    def _in_bucket(self, key: str, size: int) -> bool:
        try:
            found = self.client.stat_object(bucket_name=self.bucket, object_name=key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise
        return found.size == size

    def _put(self, meta: dict[str, Any]) -> None:
        key, size = meta["key"], int(meta["size"])
        path = self.objects / _relative(key)
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
        if path.stat().st_size != size or digest.hexdigest() != meta["sha256"]:
            raise BackupError(f"{path} does not match what was backed up (size or SHA-256): the backup is damaged")
        with open(path, "rb") as source:
            self.client.put_object(bucket_name=self.bucket, object_name=key, data=source, length=size,
                                   content_type=meta["content_type"], metadata=meta.get("metadata") or None,
                                   part_size=PART_SIZE, num_parallel_uploads=1)
