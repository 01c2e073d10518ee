"""One image's variant set, rendered and written: in the artist's thread or in workers.

:func:`write_variant_set` is the one way a set is made: render every variant first (a
failure raises :class:`~podpod_scraping.core.variants.VariantError` before any object
is written), then write each object once under its content address, then return the
record the catalog stores with the image. Two writers call it:

- :class:`InlineVariantWriter`, in the calling thread (``refresh.variant_processes: 0``);
- :class:`ProcessVariantWriter`, in worker processes, each with an object-store client
  of its own (the default). A run's process has dozens of fetching threads on one GIL;
  resizing, encoding and the uploads' Python there stretched every artist's wall time.
  Workers run at the lowest CPU priority (:data:`WORKER_NICENESS`). Measured with
  ``benchmarks/throughput.py --only a,n --repeat 3`` on 2 cores, the loss with variants
  on: -28 % in the artist's thread, -10 .. -25 % (run medians) with 2 workers at the run's
  priority, -3 .. -11 % with them at +19 (see the README).

A worker that dies or hangs fails that artist's set (its image stays as it was) and is
replaced for the next one: a set that can crash the renderer must not stop the batch.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from podpod_scraping.core.naming import variant_object_name
from podpod_scraping.core.refresh import StoreError
from podpod_scraping.core.variants import VariantError, VariantRequest
from podpod_scraping.storage.catalog.repository import VariantRecord, VariantSetRecord
from podpod_scraping.storage.objects import IMMUTABLE_CACHE_CONTROL, ObjectStore

#: Seconds one set may take in a worker before the worker is replaced: rendering a
#: 4000x3000 photo takes well under a second, each upload at most its retry deadline.
WORKER_TIMEOUT_S = 600.0
#: How much lower than the run's the workers' CPU priority is (``nice``; 19 = lowest).
#: The run's threads hold the sites' connection slots: when they wait for a core, every
#: slot they hold waits too; a set that waits for a core holds none. Measured with
#: ``benchmarks/throughput.py --only a,n --repeat 3`` on 2 cores: loss with variants on
#: -16 and -25 % (run medians) at the run's priority, -17 % at +10, -3 .. -11 % at +19.
#: Within a container (a run pod) it only orders the pod's own processes.
WORKER_NICENESS = 19


@dataclass(frozen=True)
class VariantJob:
    """One image's set to write: picklable, it is what a worker process receives."""

    artist_id: str
    image_sha256: str  # the published image's: its sets live in its folder
    published_name: str  # its object (the fallback's object when it is the fallback)
    request: VariantRequest


def write_variant_set(objects: ObjectStore, job: VariantJob) -> VariantSetRecord:
    """Render the set, then write every object once (before any row names it).

    Bytes that already have an object (the published JPEG as the fallback, a square
    image's avatar = its full variants) are not written again: their rows name it.
    """
    rendered = job.request.render()  # VariantError: nothing of the set is written
    names = {job.image_sha256: job.published_name}
    records: list[VariantRecord] = []
    for variant in rendered.variants:
        name = names.get(variant.sha256)
        if name is None:
            name = variant_object_name(
                job.artist_id, job.image_sha256, rendered.fingerprint, variant.file_name
            )
            objects.put_immutable(
                name,
                variant.data,
                content_type=variant.content_type,
                cache_control=IMMUTABLE_CACHE_CONTROL,
                metadata={"artist_id": job.artist_id, "image_sha256": job.image_sha256},
            )
            names[variant.sha256] = name
        records.append(
            VariantRecord(
                kind=variant.kind.value,
                format=variant.format,
                width=variant.width,
                height=variant.height,
                object_name=name,
                public_url=objects.public_url(name),
                content_type=variant.content_type,
                byte_size=variant.byte_size,
                sha256=variant.sha256,
            )
        )
    placeholders = rendered.placeholders
    return VariantSetRecord(
        variant_set=rendered.fingerprint,
        variants=tuple(records),
        blurhash=placeholders.blurhash,
        thumbhash=placeholders.thumbhash,
        dominant_color=placeholders.dominant_color,
        aspect_ratio=placeholders.aspect_ratio,
        avatar_method=rendered.avatar_method.value if rendered.avatar_method else None,
        avatar_preview=rendered.avatar_preview,
    )


class VariantWriter(Protocol):
    """Writes sets for many threads at once; :meth:`close` ends whatever it started."""

    def write(self, job: VariantJob) -> VariantSetRecord: ...

    def close(self) -> None: ...


class InlineVariantWriter:
    """Sets written in the calling thread."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def write(self, job: VariantJob) -> VariantSetRecord:
        return write_variant_set(self._objects, job)

    def close(self) -> None:
        return None


def variant_writer(objects: ObjectStore, processes: int) -> VariantWriter:
    """The writer ``refresh.variant_processes`` asks for (0: the artist's own thread)."""
    if processes < 0:
        raise ValueError(f"variant processes must be 0 or more, got {processes}")
    return ProcessVariantWriter(objects, processes) if processes else InlineVariantWriter(objects)


class ProcessVariantWriter:
    """Sets written by ``processes`` worker processes, started on the first set.

    Each worker gets the object store pickled (a GCS store opens its own client there,
    see :class:`~podpod_scraping.storage.objects.GCSObjectStore`) and then one job at a
    time over a pipe; a calling thread waits for a free worker. Workers are started by
    the ``forkserver`` method where there is one (never ``fork``: the run process has
    threads), and end on :meth:`close`, or with this process.
    """

    def __init__(
        self, objects: ObjectStore, processes: int, *, timeout: float = WORKER_TIMEOUT_S
    ) -> None:
        if processes < 1:
            raise ValueError(f"a process writer needs at least 1 process, got {processes}")
        if timeout <= 0:
            raise ValueError(f"worker timeout must be positive, got {timeout}")
        self._objects = objects
        self._timeout = timeout
        self._lock = threading.Lock()
        self._started: list[_WorkerProcess] = []
        self._closed = False
        # None: a worker not started yet (or replaced after a crash), started when taken.
        self._idle: queue.LifoQueue[_WorkerProcess | None] = queue.LifoQueue()
        for _ in range(processes):
            self._idle.put(None)

    def write(self, job: VariantJob) -> VariantSetRecord:
        with self._worker() as worker:
            return worker.call(job, self._timeout)

    @property
    def worker_pids(self) -> list[int]:
        """The live workers' process ids (what an operator or a test may look at)."""
        with self._lock:
            return [w.pid for w in self._started if w.alive]

    @contextmanager
    def _worker(self) -> Iterator[_WorkerProcess]:
        worker = self._idle.get()
        try:
            if worker is None or not worker.alive:  # never started, or died while idle
                worker = self._start()
            yield worker
        except _WorkerLost:
            worker = None  # replaced on the next take
            raise
        finally:
            self._idle.put(worker)

    def _start(self) -> _WorkerProcess:
        with self._lock:
            if self._closed:
                raise RuntimeError("this variant writer is closed")
            try:
                worker = _WorkerProcess(self._objects)
            except (OSError, pickle.PickleError, TypeError) as error:  # cannot heal by retrying
                raise StoreError(
                    f"cannot start a variant writer process ({type(error).__name__}: "
                    f"{error}); fix that, or set refresh.variant_processes: 0 to write "
                    "variant sets in the run's own threads",
                    transient=False,
                ) from error
            self._started = [w for w in self._started if w.alive] + [worker]
            return worker

    def close(self) -> None:
        with self._lock:
            self._closed = True
            started, self._started = self._started, []
        for worker in started:
            worker.stop()


class _WorkerLost(VariantError):
    """The worker rendering a set exited or hung: that artist's set fails, not the batch."""


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        # The forkserver imports this module (Pillow, OpenCV, the GCS client) once; each
        # worker is then forked from it in milliseconds. No effect once it is running.
        context.set_forkserver_preload([__name__])
    return context


class _WorkerProcess:
    def __init__(self, objects: ObjectStore) -> None:
        context = _context()
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, objects), name="podpod-variant-writer", daemon=True
        )
        self._process.start()
        child.close()

    @property
    def pid(self) -> int:
        return self._process.pid or 0

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def call(self, job: VariantJob, timeout: float) -> VariantSetRecord:
        try:
            self._connection.send(job)
            if not self._connection.poll(timeout):
                self.stop()
                raise _WorkerLost(
                    f"the variant worker took more than {timeout:g} s for artist "
                    f"{job.artist_id}; it was stopped"
                )
            status, value = self._connection.recv()
        except (EOFError, OSError) as error:
            self.stop()
            raise _WorkerLost(
                f"the variant worker exited while writing artist {job.artist_id}'s set "
                f"(exit code {self._process.exitcode}; out of memory?)"
            ) from error
        if status == "ok":
            return value
        raise value

    def stop(self) -> None:
        self._connection.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)


def _serve(connection: Connection, objects: ObjectStore) -> None:
    """A worker's loop: one job in, its record (or the error it raised) out, until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle
    os.nice(WORKER_NICENESS)  # lowering one's own priority needs no privilege
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", write_variant_set(objects, job))
        except Exception as error:  # sent back as it is: the caller maps it like its own
            reply = ("error", error)
        try:
            connection.send(reply)
        except Exception as error:  # an error that does not pickle: its text does
            connection.send(("error", RuntimeError(f"{type(error).__name__}: {reply[1]}")))
