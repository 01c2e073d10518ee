"""The object stores: write-once semantics against a real GCS emulator and a real folder."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.cloud import storage

from podpod_scraping.core.naming import image_object_name
from podpod_scraping.core.outcomes import sha256_hex
from podpod_scraping.storage.objects import (
    GCSObjectStore,
    LocalObjectStore,
    ObjectConflictError,
    ObjectNotFoundError,
    ObjectStoreError,
    StoredObject,
)
from podpod_scraping_tests.fixtures.gcs import GCSEmulator

IMAGE = b"\xff\xd8\xff\xe0" + b"first image bytes" * 50
OTHER = b"\xff\xd8\xff\xe0" + b"other image bytes" * 50
NAME = image_object_name("42", sha256_hex(IMAGE), "jpg")
IMMUTABLE = "public, max-age=31536000, immutable"


def _fresh_blob(emulator: GCSEmulator, bucket: storage.Bucket, name: str) -> storage.Blob:
    """The object as a different client sees it (nothing cached from the writer)."""
    blob = emulator.client().bucket(bucket.name or "").get_blob(name)
    assert blob is not None, f"{name} is not in the bucket"
    return blob


# --------------------------------------------------------------------------- GCS


def test_gcs_put_stores_bytes_content_type_cache_control_and_metadata(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator, gcs_bucket: storage.Bucket
) -> None:
    stored = gcs_store.put_immutable(
        NAME, IMAGE, content_type="image/jpeg", metadata={"artist_id": "42", "source": "site"}
    )

    blob = _fresh_blob(gcs_emulator, gcs_bucket, NAME)
    assert blob.download_as_bytes() == IMAGE
    assert blob.content_type == "image/jpeg"
    assert blob.cache_control == IMMUTABLE
    assert blob.metadata == {"artist_id": "42", "source": "site", "sha256": sha256_hex(IMAGE)}
    assert stored == StoredObject(
        name=NAME,
        uri=f"gs://{gcs_bucket.name}/{NAME}",
        public_url=f"{gcs_emulator.endpoint}/{gcs_bucket.name}/{NAME}",
        sha256=sha256_hex(IMAGE),
        byte_size=len(IMAGE),
        content_type="image/jpeg",
        created=True,
    )


def test_gcs_second_put_of_same_bytes_is_not_rewritten(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator, gcs_bucket: storage.Bucket
) -> None:
    gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    before = _fresh_blob(gcs_emulator, gcs_bucket, NAME)

    again = gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    after = _fresh_blob(gcs_emulator, gcs_bucket, NAME)
    assert again.created is False
    assert again.sha256 == sha256_hex(IMAGE)
    assert again.content_type == "image/jpeg"
    assert (after.generation, after.metageneration) == (before.generation, before.metageneration)


def test_gcs_put_of_different_bytes_under_a_taken_name_conflicts_and_keeps_the_original(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator, gcs_bucket: storage.Bucket
) -> None:
    gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    generation = _fresh_blob(gcs_emulator, gcs_bucket, NAME).generation

    with pytest.raises(ObjectConflictError, match="different bytes"):
        gcs_store.put_immutable(NAME, OTHER, content_type="image/png")

    blob = _fresh_blob(gcs_emulator, gcs_bucket, NAME)
    assert blob.download_as_bytes() == IMAGE
    assert blob.content_type == "image/jpeg"
    assert blob.generation == generation


def test_gcs_existing_object_without_sha256_metadata_is_compared_by_its_bytes(
    gcs_store: GCSObjectStore, gcs_bucket: storage.Bucket
) -> None:
    # Written by another tool: no custom metadata to trust.
    gcs_bucket.blob(NAME).upload_from_string(IMAGE, content_type="image/jpeg")

    assert gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg").created is False
    with pytest.raises(ObjectConflictError):
        gcs_store.put_immutable(NAME, OTHER, content_type="image/jpeg")


def test_gcs_existing_object_whose_sha256_metadata_lies_is_a_conflict(
    gcs_store: GCSObjectStore, gcs_bucket: storage.Bucket
) -> None:
    blob = gcs_bucket.blob(NAME)
    blob.metadata = {"sha256": sha256_hex(IMAGE)}
    blob.upload_from_string(OTHER, content_type="image/jpeg")  # md5 gives it away

    with pytest.raises(ObjectConflictError):
        gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")


def test_gcs_read_exists_and_missing_objects(gcs_store: GCSObjectStore) -> None:
    assert gcs_store.exists(NAME) is False
    with pytest.raises(ObjectNotFoundError):
        gcs_store.read(NAME)

    gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    assert gcs_store.exists(NAME) is True
    assert gcs_store.read(NAME) == IMAGE


def test_gcs_public_url_serves_the_object(gcs_store: GCSObjectStore) -> None:
    stored = gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(stored.public_url, timeout=10) as response:
        assert response.read() == IMAGE


def test_gcs_default_public_url_is_storage_googleapis_com(gcs_client: storage.Client) -> None:
    store = GCSObjectStore("podpod-images", client=gcs_client)

    assert store.public_url(NAME) == f"https://storage.googleapis.com/podpod-images/{NAME}"
    assert store.uri(NAME) == f"gs://podpod-images/{NAME}"


def test_gcs_replace_overwrites_a_mutable_object(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator, gcs_bucket: storage.Bucket
) -> None:
    gcs_store.replace("sources/42/latest.json", b'{"v": 1}', content_type="application/json")
    gcs_store.replace("sources/42/latest.json", b'{"v": 2}', content_type="application/json")

    blob = _fresh_blob(gcs_emulator, gcs_bucket, "sources/42/latest.json")
    assert blob.download_as_bytes() == b'{"v": 2}'
    assert blob.content_type == "application/json"
    assert blob.cache_control == "no-cache"


def test_gcs_metadata_sha256_that_disagrees_with_the_data_is_refused(
    gcs_store: GCSObjectStore,
) -> None:
    with pytest.raises(ValueError, match="does not match the data"):
        gcs_store.put_immutable(
            NAME, IMAGE, content_type="image/jpeg", metadata={"sha256": sha256_hex(OTHER)}
        )
    assert gcs_store.exists(NAME) is False


def test_gcs_store_without_a_client_follows_storage_emulator_host(
    gcs_client: storage.Client, gcs_bucket: storage.Bucket
) -> None:
    # The gcs_client fixture set STORAGE_EMULATOR_HOST, as the Dagster resource relies on.
    store = GCSObjectStore(gcs_bucket.name or "")

    store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    assert gcs_bucket.blob(NAME).download_as_bytes() == IMAGE


@pytest.mark.timeout(60)
def test_gcs_emulator_keeps_answering_after_hundreds_of_uploads(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator
) -> None:
    # With its log piped and never read (the wrapper class), the server stopped answering
    # after ~335 requests (measured); 500 uploads prove the fixture avoids that.
    names = [f"load/{index:04d}.bin" for index in range(500)]
    for index, name in enumerate(names):
        gcs_store.put_immutable(
            name, index.to_bytes(4, "big"), content_type="application/octet-stream"
        )

    assert gcs_emulator.process.poll() is None
    assert gcs_store.read(names[-1]) == (499).to_bytes(4, "big")


def test_gcs_emulator_stores_the_md5_the_store_verifies(
    gcs_store: GCSObjectStore, gcs_emulator: GCSEmulator, gcs_bucket: storage.Bucket
) -> None:
    gcs_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    expected = base64.b64encode(hashlib.md5(IMAGE, usedforsecurity=False).digest()).decode()
    assert _fresh_blob(gcs_emulator, gcs_bucket, NAME).md5_hash == expected


# --------------------------------------------------------------------------- local folder


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def _all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_local_put_stores_bytes_and_a_sidecar_with_content_type_and_metadata(
    local_store: LocalObjectStore,
) -> None:
    stored = local_store.put_immutable(
        NAME, IMAGE, content_type="image/jpeg", metadata={"artist_id": "42"}
    )

    path = local_store.root / NAME
    assert path.read_bytes() == IMAGE
    sidecar = json.loads(Path(f"{path}.meta.json").read_text())
    assert sidecar == {
        "content_type": "image/jpeg",
        "cache_control": IMMUTABLE,
        "sha256": sha256_hex(IMAGE),
        "byte_size": len(IMAGE),
        "metadata": {"artist_id": "42", "sha256": sha256_hex(IMAGE)},
    }
    assert stored.created is True
    assert stored.uri == path.as_uri()
    assert stored.public_url == path.as_uri()
    assert (stored.sha256, stored.byte_size, stored.content_type) == (
        sha256_hex(IMAGE),
        len(IMAGE),
        "image/jpeg",
    )


def test_local_second_put_of_same_bytes_is_not_rewritten(local_store: LocalObjectStore) -> None:
    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    before = os.stat(local_store.root / NAME)

    again = local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    after = os.stat(local_store.root / NAME)
    assert again.created is False
    assert again.content_type == "image/jpeg"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_local_put_of_different_bytes_under_a_taken_name_conflicts_and_keeps_the_original(
    local_store: LocalObjectStore,
) -> None:
    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    with pytest.raises(ObjectConflictError, match="different bytes"):
        local_store.put_immutable(NAME, OTHER, content_type="image/png")

    assert local_store.read(NAME) == IMAGE
    sidecar = json.loads((local_store.root / f"{NAME}.meta.json").read_text())
    assert sidecar["content_type"] == "image/jpeg"


def test_local_store_leaves_no_temporary_files_behind(local_store: LocalObjectStore) -> None:
    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    with pytest.raises(ObjectConflictError):
        local_store.put_immutable(NAME, OTHER, content_type="image/jpeg")
    local_store.replace("sources/42/latest.json", b"{}", content_type="application/json")
    local_store.replace("sources/42/latest.json", b"[]", content_type="application/json")

    assert _all_files(local_store.root) == {
        NAME,
        f"{NAME}.meta.json",
        "sources/42/latest.json",
        "sources/42/latest.json.meta.json",
    }


@pytest.mark.parametrize("failing_call", ["fsync", "link"])
def test_local_crash_mid_write_leaves_no_object_under_the_final_name(
    local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch, failing_call: str
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, failing_call, crash)
        with pytest.raises(ObjectStoreError, match="No space left"):
            local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    assert local_store.exists(NAME) is False
    assert _all_files(local_store.root) == set()
    # And the next attempt succeeds normally.
    assert local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg").created is True
    assert local_store.read(NAME) == IMAGE


def test_local_rerun_repairs_a_sidecar_lost_after_the_object_was_written(
    local_store: LocalObjectStore,
) -> None:
    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")
    sidecar = local_store.root / f"{NAME}.meta.json"
    sidecar.unlink()

    again = local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    assert again.created is False
    assert json.loads(sidecar.read_text())["sha256"] == sha256_hex(IMAGE)


def test_local_concurrent_puts_of_one_name_create_it_exactly_once(
    local_store: LocalObjectStore,
) -> None:
    start = threading.Barrier(8)

    def put(data: bytes) -> str:
        start.wait(timeout=10)
        try:
            created = local_store.put_immutable(NAME, data, content_type="image/jpeg").created
        except ObjectConflictError:
            return "conflict"
        return "created" if created else "existing"

    payloads = [IMAGE if index % 2 else OTHER for index in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(put, payloads))

    assert results.count("created") == 1
    winner = local_store.read(NAME)
    for payload, result in zip(payloads, results, strict=True):
        if result != "created":
            assert result == ("existing" if payload == winner else "conflict")


def test_local_read_exists_and_missing_objects(local_store: LocalObjectStore) -> None:
    assert local_store.exists(NAME) is False
    with pytest.raises(ObjectNotFoundError):
        local_store.read(NAME)

    local_store.put_immutable(NAME, IMAGE, content_type="image/jpeg")

    assert local_store.exists(NAME) is True
    assert local_store.read(NAME) == IMAGE


def test_local_replace_overwrites_a_mutable_object(local_store: LocalObjectStore) -> None:
    local_store.replace("sources/42/latest.json", b'{"v": 1}', content_type="application/json")
    stored = local_store.replace(
        "sources/42/latest.json", b'{"v": 2}', content_type="application/json"
    )

    assert local_store.read("sources/42/latest.json") == b'{"v": 2}'
    assert stored.sha256 == sha256_hex(b'{"v": 2}')


def test_local_public_url_uses_the_configured_base(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, public_base_url="http://127.0.0.1:8080/images/")

    assert store.public_url(NAME) == f"http://127.0.0.1:8080/images/{NAME}"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../outside.jpg",
        "artists/../../outside.jpg",
        "/etc/passwd",
        "artists//x.jpg",
        "artists/./x.jpg",
        ".hidden/x.jpg",
        "artists/x.jpg.meta.json",
        "artists\\x.jpg",
        "artists/x\n.jpg",
        "a" * 1025,
    ],
)
def test_unsafe_object_names_are_refused_by_both_stores(
    local_store: LocalObjectStore, gcs_client: storage.Client, name: str
) -> None:
    gcs = GCSObjectStore("podpod-images", client=gcs_client)
    for store in (local_store, gcs):
        with pytest.raises(ValueError, match="object name"):
            store.put_immutable(name, IMAGE, content_type="image/jpeg")
    assert not local_store.root.exists() or _all_files(local_store.root) == set()
