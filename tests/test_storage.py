"""Object storage: the same stories against a local directory and a real S3 server (moto).

moto runs as a separate server process and is spoken to over HTTP by the real minio client,
exactly as MinIO would be in the deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import stat
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

import aiohttp
import pytest
from minio.error import S3Error
from yarl import URL

from uploads.storage import (
    MIN_PART_SIZE,
    LocalStore,
    ObjectStore,
    S3Store,
    StorageError,
    new_key,
)

MB = 1024 * 1024
SIGNING_KEY = b"test-signing-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _s3(endpoint: str, **kw: object) -> S3Store:
    return S3Store(endpoint=endpoint, access_key="testing", secret_key="testing",
                   bucket=f"yb-test-{uuid4().hex[:12]}", secure=False, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        made: ObjectStore = LocalStore(tmp_path / "data", signing_key=SIGNING_KEY)
    else:
        made = _s3(request.getfixturevalue("moto_endpoint"))
    await made.ensure_ready()
    return made


@pytest.fixture
async def s3(moto_endpoint: str) -> S3Store:
    made = _s3(moto_endpoint)
    await made.ensure_ready()
    return made


@pytest.fixture
async def local(tmp_path: Path) -> LocalStore:
    made = LocalStore(tmp_path / "data", signing_key=SIGNING_KEY)
    await made.ensure_ready()
    return made


def _chunk(i: int, size: int = MB) -> bytes:
    return i.to_bytes(4, "big") * (size // 4)


async def _chunks(count: int, size: int = MB, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i in range(count):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("the resident's phone lost its connection")
        yield _chunk(i, size)
        await asyncio.sleep(0)


async def _sha256(chunks: AsyncIterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


async def _nothing_left_behind(store: ObjectStore) -> None:
    """No unfinished multipart upload or temp file survives (swept as if a year had passed)."""
    assert await store.sweep_leftovers(older_than_seconds=0, now=time.time() + 365 * 86400) == 0


# --------------------------------------------------------------------------- whole objects


async def test_bytes_round_trip(store: ObjectStore) -> None:
    key = new_key("documents/original")
    assert await store.put(key, b"\x89PNG id card", content_type="image/png") == 12
    assert await store.exists(key)
    assert await store.read(key) == b"\x89PNG id card"


async def _peak_memory_of(upload: Awaitable[int]) -> tuple[int, float]:
    tracemalloc.start()
    try:
        stored = await upload
        return stored, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def _digest_of_chunks(count: int) -> str:
    digest = hashlib.sha256()
    for i in range(count):
        digest.update(_chunk(i))
    return digest.hexdigest()


async def test_streamed_upload_round_trip(store: ObjectStore) -> None:
    """25 MB in 1 MB chunks; on S3 this takes minio's multipart path (10 MB parts)."""
    key = new_key("documents/original")
    stored, peak = await _peak_memory_of(store.put(key, _chunks(25), content_type="application/pdf"))
    assert stored == 25 * MB
    # Local: a few 1 MB chunks at most (25 MB would mean it was held whole). S3: minio holds
    # about three copies of one 10 MB part while sending it.
    assert peak < (8 if isinstance(store, LocalStore) else 35), f"upload held {peak:.1f} MB"

    assert await _sha256(await store.get(key)) == (_digest_of_chunks(25), 25 * MB)
    if isinstance(store, S3Store):
        stat = await asyncio.to_thread(store._client.stat_object, bucket_name=store.bucket, object_name=key)
        assert stat.etag.endswith("-3"), "expected a 3-part multipart object"


async def test_s3_upload_memory_does_not_grow_with_the_object(moto_endpoint: str) -> None:
    store = _s3(moto_endpoint, part_size=MIN_PART_SIZE)
    await store.ensure_ready()
    key = new_key("documents/original")
    stored, peak = await _peak_memory_of(store.put(key, _chunks(40)))
    assert stored == 40 * MB
    assert peak < 20, f"a 40 MB upload held {peak:.1f} MB: it is not streaming"
    assert await _sha256(await store.get(key)) == (_digest_of_chunks(40), 40 * MB)


async def test_stream_with_declared_length_round_trips(store: ObjectStore) -> None:
    key = new_key("documents/viewing")
    assert await store.put(key, _chunks(3), length=3 * MB) == 3 * MB
    assert await store.read(key) == b"".join(_chunk(i) for i in range(3))


@pytest.mark.parametrize("declared", [2 * MB, 4 * MB])
async def test_stream_disagreeing_with_its_length_is_refused_and_not_stored(
    store: ObjectStore, declared: int
) -> None:
    key = new_key("documents/viewing")
    with pytest.raises(ValueError):
        await store.put(key, _chunks(3), length=declared)
    assert not await store.exists(key)
    await _nothing_left_behind(store)


async def test_exists_and_delete(store: ObjectStore) -> None:
    key = new_key("documents/thumbnail")
    assert not await store.exists(key)
    await store.put(key, b"thumb")
    assert await store.exists(key)
    await store.delete(key)
    assert not await store.exists(key)
    await store.delete(key)  # deleting what is gone is fine


async def test_get_of_missing_key_is_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(StorageError) as caught:
        await store.get(new_key("documents/original"))
    assert caught.value.code == "object_not_found"
    with pytest.raises(StorageError) as caught:
        await store.read(new_key("documents/original"))
    assert caught.value.code == "object_not_found"


async def test_failing_stream_leaves_no_object_and_no_leftovers(store: ObjectStore) -> None:
    """12 MB then the connection drops: on S3 minio has begun a multipart upload and aborts it."""
    key = new_key("documents/original")
    await store.put(key, b"the earlier version")
    with pytest.raises(ConnectionResetError):
        await store.put(key, _chunks(20, fail_after=12))
    assert await store.read(key) == b"the earlier version"

    fresh = new_key("documents/original")
    with pytest.raises(ConnectionResetError):
        await store.put(fresh, _chunks(20, fail_after=12))
    assert not await store.exists(fresh)
    await _nothing_left_behind(store)


async def test_cancelled_upload_leaves_no_object_and_no_leftovers(store: ObjectStore) -> None:
    """The request handler is cancelled mid-upload (client gone); on S3 a part is already sent."""
    key = new_key("documents/original")
    sent = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for i in range(30):
            if i == 12:
                sent.set()
            yield _chunk(i)
            await asyncio.sleep(0.01)

    upload = asyncio.create_task(store.put(key, slow()))
    await sent.wait()
    assert await _unfinished(store) == 1  # S3: a multipart upload with part 1; local: a temp file
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload

    # The worker thread notices at its next read and minio aborts its multipart upload.
    deadline = time.monotonic() + 5
    while await _unfinished(store) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not await _unfinished(store)
    assert not await store.exists(key)


async def _unfinished(store: ObjectStore) -> int:
    """Unfinished uploads, counted without sweeping them."""
    if isinstance(store, S3Store):
        page = await asyncio.to_thread(store._client._list_multipart_uploads, bucket_name=store.bucket)
        return len(page.uploads)
    assert isinstance(store, LocalStore)
    return len(list((store.root / ".tmp").iterdir()))


async def test_local_put_is_atomic(local: LocalStore) -> None:
    key = new_key("documents/original")
    seen: list[bool] = []

    async def watched() -> AsyncIterator[bytes]:
        yield b"half of a"
        seen.append(await local.exists(key))  # mid-upload, nothing is visible under the key
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        await local.put(key, watched())
    assert seen == [False]
    assert not await local.exists(key)
    assert not (local.root / key).exists()
    assert list((local.root / ".tmp").iterdir()) == []


async def test_local_objects_are_readable_by_the_server_only(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)  # left open by an older version
    local = LocalStore(root, signing_key=SIGNING_KEY)
    await local.ensure_ready()
    key = new_key("documents/original")
    await local.put(key, b"a resident's ID card")
    files = [p for p in root.rglob("*") if p.is_file()]
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert len(files) == 1 and len(folders) == 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}


# --------------------------------------------------------------------------- browser links


async def test_presigned_url_serves_the_object_and_is_short_lived(s3: S3Store, moto_endpoint: str) -> None:
    key = new_key("documents/viewing")
    await s3.put(key, b"viewing copy", content_type="image/jpeg")
    link = await s3.url(key, expires=1, filename="身份证 正面.jpg")

    parts = urlsplit(link)
    query = parse_qs(parts.query)
    assert parts.netloc == moto_endpoint and parts.path == f"/{s3.bucket}/{key}"
    assert query["X-Amz-Expires"] == ["1"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Signature"][0] and query["X-Amz-Date"][0]
    assert "filename*=UTF-8''%E8%BA%AB%E4%BB%BD%E8%AF%81" in query["response-content-disposition"][0]

    async with aiohttp.ClientSession() as http, http.get(URL(link, encoded=True)) as resp:
        assert resp.status == 200
        assert await resp.read() == b"viewing copy"
        assert "attachment" in resp.headers["Content-Disposition"]
        # moto does not check presigned signatures or X-Amz-Expires (MinIO and AWS do), so the
        # expiry is proven by the signed X-Amz-Expires=1 above, not by a refused fetch here.


async def test_presigned_url_is_signed_for_the_public_endpoint(moto_endpoint: str) -> None:
    store = _s3(moto_endpoint, public_endpoint="https://files.yunbang.example")
    link = await store.url(new_key("documents/viewing"), expires=300)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("https", "files.yunbang.example")
    assert "127.0.0.1" not in link
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["300"]


async def test_local_url_is_signed_and_expires(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    store = LocalStore(tmp_path, signing_key=SIGNING_KEY, clock=lambda: now)
    key = new_key("documents/viewing")
    link = await store.url(key, expires=300)

    parts = urlsplit(link)
    assert parts.path == f"/api/objects/{key}"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["expires"] == str(int(now) + 300)
    expires, sig = int(query["expires"]), query["sig"]

    assert store.verify(key, expires, sig, now)
    assert store.verify(key, str(expires), sig, now + 300)  # query strings arrive as text
    assert not store.verify(key, expires, sig, now + 301)  # expired
    assert not store.verify(key, expires + 3600, sig, now)  # expiry stretched
    assert not store.verify(new_key("documents/viewing"), expires, sig, now)  # another object
    assert not store.verify(key, expires, sig[:-1] + ("0" if sig[-1] != "0" else "1"), now)
    assert not store.verify(key, "soon", sig, now)
    assert not store.verify("../secrets", expires, sig, now)
    other = LocalStore(tmp_path, signing_key=b"another-deployment-key-000000000", clock=lambda: now)
    assert not other.verify(key, expires, sig, now)


async def test_local_url_signature_covers_the_download_name(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    store = LocalStore(tmp_path, signing_key=SIGNING_KEY, clock=lambda: now)
    key = new_key("documents/original")
    query = {k: v[0] for k, v in parse_qs(urlsplit(await store.url(key, filename="户口本.pdf")).query).items()}
    assert query["filename"] == "户口本.pdf"
    assert store.verify(key, query["expires"], query["sig"], now, filename=unquote(query["filename"]))
    assert not store.verify(key, query["expires"], query["sig"], now, filename="evil.html")
    assert not store.verify(key, query["expires"], query["sig"], now)


# --------------------------------------------------------------------------- leftovers


async def test_local_sweep_removes_only_stale_temp_files(local: LocalStore) -> None:
    crashed = local.root / ".tmp" / f"{uuid4().hex}.tmp"
    crashed.write_bytes(b"half an object")
    now = time.time()
    assert await local.sweep_leftovers(older_than_seconds=3600, now=now) == 0, "a put may still run"
    assert await local.sweep_leftovers(older_than_seconds=3600, now=now + 7200) == 1
    assert not crashed.exists()


async def test_s3_sweep_aborts_abandoned_uploads(s3: S3Store) -> None:
    # What minio's put_object leaves when the process dies between parts. moto reports every
    # upload as started on 2010-11-10, so only the "abandoned" side of the age check shows here.
    await asyncio.to_thread(s3._client._create_multipart_upload, bucket_name=s3.bucket,
                            object_name=new_key("documents/original"), headers={})
    assert await s3.sweep_leftovers(older_than_seconds=3600, now=time.time()) == 1
    assert await s3.sweep_leftovers(older_than_seconds=3600, now=time.time()) == 0


# --------------------------------------------------------------------------- keys and access


BAD_KEYS = ["../etc/passwd", "/etc/passwd", "documents/../../x", "documents//x", "documents/",
            "Documents/X", "a.b", "a b", "身份证", "", "a\x00b", "a\\b", "x" * 600]


@pytest.mark.parametrize("bad", BAD_KEYS)
async def test_invalid_keys_are_refused(store: ObjectStore, bad: str) -> None:
    attempts = [store.put(bad, b"x"), store.get(bad), store.read(bad), store.exists(bad),
                store.delete(bad), store.url(bad)]
    for attempt in attempts:
        with pytest.raises(StorageError) as caught:
            await attempt
        assert caught.value.code == "invalid_key"


def test_new_key_is_opaque_and_unique() -> None:
    keys = {new_key("documents/original") for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        prefix, _, tail = key.rpartition("/")
        assert prefix == "documents/original"
        assert len(tail) == 32 and all(c in "0123456789abcdef" for c in tail)
    for bad_prefix in ("../up", "身份证.jpg", "Photos", ""):
        with pytest.raises(StorageError) as caught:
            new_key(bad_prefix)
        assert caught.value.code == "invalid_key"


async def test_bucket_is_not_public(s3: S3Store, moto_endpoint: str) -> None:
    key = new_key("documents/original")
    await s3.put(key, b"private id card scan")
    await s3.ensure_ready()  # idempotent on an existing bucket

    anonymous = f"http://{moto_endpoint}/{s3.bucket}/{key}"
    async with aiohttp.ClientSession() as http, http.get(anonymous) as resp:
        # moto enforces object ACLs for unsigned requests: a private object is refused.
        assert resp.status == 403
        assert b"private id card scan" not in await resp.read()

    with pytest.raises(S3Error) as caught:
        await asyncio.to_thread(s3._client.get_bucket_policy, bucket_name=s3.bucket)
    assert caught.value.code == "NoSuchBucketPolicy"
