"""The variant writers over the GCS emulator.

Runs write sets in worker processes (``refresh.variant_processes``, default 2): what a
worker writes must be exactly what the artist's own thread writes, its errors must keep
their meaning across the process boundary, and a worker that dies must cost one
artist's set, never the batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud import storage
from PIL import Image

from podpod_scraping.core.config import RefreshPolicy
from podpod_scraping.core.naming import image_object_name
from podpod_scraping.core.refresh import StoreError
from podpod_scraping.core.variants import VariantError, VariantRequest, VariantSet
from podpod_scraping.storage.objects import (
    GCSObjectStore,
    LocalObjectStore,
    ObjectConflictError,
    ObjectNotFoundError,
    ObjectStoreError,
)
from podpod_scraping.storage.variant_sets import (
    WORKER_NICENESS,
    InlineVariantWriter,
    ProcessVariantWriter,
    VariantJob,
    variant_writer,
    write_variant_set,
)
from podpod_scraping_tests.core.images_factory import band_photo
from podpod_scraping_tests.storage.conftest import POLICY

IMAGE_SHA = "ab" * 32  # no variant has these bytes: every variant gets an object


def _job(image: Image.Image, artist_id: str = "7") -> VariantJob:
    request = VariantRequest(image, image.width, image.height, POLICY.variants)
    published = image_object_name(artist_id, IMAGE_SHA, "jpg")
    return VariantJob(artist_id, IMAGE_SHA, published, request)


@pytest.fixture
def objects(gcs_bucket: storage.Bucket) -> GCSObjectStore:
    return GCSObjectStore(str(gcs_bucket.name), client=gcs_bucket.client)


@pytest.fixture
def workers(objects: GCSObjectStore) -> Iterator[ProcessVariantWriter]:
    writer = ProcessVariantWriter(objects, 1)
    yield writer
    writer.close()


def test_a_worker_writes_the_set_the_artists_own_thread_would(
    objects: GCSObjectStore, workers: ProcessVariantWriter, gcs_bucket: storage.Bucket
) -> None:
    job = _job(band_photo()[0])

    from_worker = workers.write(job)
    inline = InlineVariantWriter(objects).write(job)  # same bytes: finds them written

    assert from_worker == inline
    assert workers.worker_pids
    assert os.getpid() not in workers.worker_pids
    for variant in from_worker.variants:
        blob = gcs_bucket.get_blob(variant.object_name)
        assert blob is not None, variant.object_name
        assert blob.content_type == variant.content_type
        assert blob.size == variant.byte_size
        assert hashlib.sha256(blob.download_as_bytes()).hexdigest() == variant.sha256
        assert blob.metadata == {
            "artist_id": "7",
            "image_sha256": IMAGE_SHA,
            "sha256": variant.sha256,
        }


def test_a_set_whose_object_name_holds_other_bytes_is_a_permanent_conflict_from_a_worker(
    objects: GCSObjectStore, workers: ProcessVariantWriter
) -> None:
    job = _job(band_photo()[0])
    first = write_variant_set(objects, job).variants[0]
    objects.delete(first.object_name)
    objects.put_immutable(first.object_name, b"tampered", content_type="image/webp")

    with pytest.raises(ObjectConflictError) as raised:
        workers.write(job)

    assert raised.value.transient is False
    assert first.object_name in str(raised.value)


@dataclass(frozen=True)
class _CrashingRequest(VariantRequest):
    """A set whose rendering kills the worker process (as the kernel's OOM killer would)."""

    def render(self) -> VariantSet:
        os._exit(9)


def _first_worker(workers: ProcessVariantWriter) -> int:
    """The pid of the worker that wrote artist 1's set."""
    workers.write(_job(band_photo()[0], "1"))
    (pid,) = workers.worker_pids
    return pid


def _replaced(workers: ProcessVariantWriter, gone: int) -> bool:
    """Whether artist 3's set is written, by a worker other than ``gone``."""
    record = workers.write(_job(band_photo()[0], "3"))
    return bool(record.variants) and bool(workers.worker_pids) and gone not in workers.worker_pids


def test_a_worker_that_dies_mid_set_fails_only_that_set_and_the_next_gets_a_new_worker(
    workers: ProcessVariantWriter,
) -> None:
    first = _first_worker(workers)
    image = band_photo()[0]
    crashing = dataclasses.replace(
        _job(image, "2"),
        request=_CrashingRequest(image, image.width, image.height, POLICY.variants),
    )

    with pytest.raises(VariantError, match=r"exited while writing artist 2's set \(exit code 9"):
        workers.write(crashing)

    assert _replaced(workers, first)


def test_a_worker_killed_while_idle_is_replaced_without_failing_a_set(
    workers: ProcessVariantWriter,
) -> None:
    killed = _first_worker(workers)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while killed in workers.worker_pids and time.monotonic() < deadline:
        time.sleep(0.01)  # until its exit is seen (a condition, not a guess)

    assert _replaced(workers, killed)  # no set failed on the way


def test_a_worker_that_takes_too_long_is_stopped_and_the_set_fails(
    objects: GCSObjectStore,
) -> None:
    writer = ProcessVariantWriter(objects, 1, timeout=0.001)
    try:
        with pytest.raises(VariantError, match="took more than"):
            writer.write(_job(band_photo(width=2400, height=1600)[0]))
        assert writer.worker_pids == []
    finally:
        writer.close()


class _UnpicklableStore(LocalObjectStore):
    """A store a worker process cannot receive (it holds a lock, as a custom client might)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lock = threading.Lock()


def test_a_writer_whose_workers_cannot_start_fails_permanently_and_names_the_fix(
    tmp_path: Path,
) -> None:
    writer = ProcessVariantWriter(_UnpicklableStore(tmp_path), 1)
    try:
        with pytest.raises(StoreError, match=r"refresh\.variant_processes: 0") as raised:
            writer.write(_job(band_photo()[0]))
    finally:
        writer.close()

    assert raised.value.transient is False
    assert writer.worker_pids == []


def test_workers_render_at_a_lower_cpu_priority_than_the_run(
    workers: ProcessVariantWriter,
) -> None:
    workers.write(_job(band_photo()[0]))
    (pid,) = workers.worker_pids

    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + WORKER_NICENESS) > own


def test_closing_the_writer_ends_its_workers(objects: GCSObjectStore) -> None:
    writer = ProcessVariantWriter(objects, 1)
    writer.write(_job(band_photo()[0]))
    assert len(writer.worker_pids) == 1  # started on demand, one per set in flight

    writer.close()

    assert writer.worker_pids == []
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(_job(band_photo()[0]))


def test_runs_write_sets_in_two_worker_processes_unless_configured_otherwise(
    objects: GCSObjectStore,
) -> None:
    default = variant_writer(objects, RefreshPolicy().variant_processes)
    inline = variant_writer(objects, 0)
    try:
        assert isinstance(default, ProcessVariantWriter)
        assert isinstance(inline, InlineVariantWriter)
    finally:
        default.close()


def test_store_errors_keep_whether_they_heal_across_processes() -> None:
    for error in (
        ObjectStoreError("bucket gone", transient=False),
        ObjectStoreError("503", transient=True),
        ObjectConflictError("other bytes"),
        ObjectNotFoundError("no object"),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 — our own bytes
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.transient is error.transient


def test_a_pickled_gcs_store_opens_its_own_client_on_the_same_bucket(
    objects: GCSObjectStore,
) -> None:
    objects.put_immutable("probe/a.txt", b"hello", content_type="text/plain")

    copy = pickle.loads(pickle.dumps(objects))  # noqa: S301 — our own bytes

    assert isinstance(copy, GCSObjectStore)
    assert copy.bucket_name == objects.bucket_name
    assert copy.read("probe/a.txt") == b"hello"
