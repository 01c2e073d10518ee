"""The object store: where image bytes live (a GCS bucket, or a local folder by default).

Published images are *write-once*: :meth:`ObjectStore.put_immutable` creates an object only
if its name is free. Names are content-addressed (see ``core.naming``), so a rerun that
finds the same bytes is a no-op (``created=False``) and different bytes under a taken name
are a bug that must surface (:class:`ObjectConflictError`), never a silent overwrite.
No store ever shows a partial object under its final name.

:meth:`ObjectStore.replace` is the one mutable write, for small documents such as the
latest-attempt manifest (last writer wins).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import requests
from google.api_core import exceptions as google_errors
from google.api_core.exceptions import GoogleAPIError, NotFound, PreconditionFailed
from google.auth.exceptions import GoogleAuthError, TransportError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from podpod_scraping.core.outcomes import sha256_hex

IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: Where GCS serves public objects (a CDN in front of the bucket may replace it).
GCS_PUBLIC_BASE_URL = "https://storage.googleapis.com"
#: Mutable documents must not be cached by clients or CDNs.
MUTABLE_CACHE_CONTROL = "no-cache"
#: Custom-metadata key holding the object's SHA-256 (how reruns recognise their bytes).
SHA256_METADATA_KEY = "sha256"
#: Points google-cloud-storage at an emulator instead of GCS (tests, benchmarks).
EMULATOR_HOST_ENV = "STORAGE_EMULATOR_HOST"
#: Suffix of the local store's sidecar file that keeps content type and metadata.
SIDECAR_SUFFIX = ".meta.json"
_MAX_NAME_BYTES = 1024  # GCS's limit; the local store keeps the same rule.


@dataclass(frozen=True)
class StoredObject:
    """An object as it is in the store after a write."""

    name: str
    uri: str
    public_url: str
    sha256: str
    byte_size: int
    content_type: str
    created: bool  # False when an identical object already existed (rerun)


@dataclass(frozen=True)
class ObjectInfo:
    """What the store holds under a name (read without downloading where possible)."""

    name: str
    sha256: str | None  # None when the object carries no SHA-256 (written by something else)
    byte_size: int


class ObjectStoreError(Exception):
    """The store could not do what was asked (I/O or service failure).

    ``transient`` is False for faults a retry cannot fix (bad credentials, no such
    bucket, no permission, a read-only disk): the caller should stop and say so.
    """

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps ``transient`` across a process boundary (the variant writer's workers).
        return (type(self), (str(self),), self.__dict__)


class ObjectConflictError(ObjectStoreError):
    """A write-once name already holds *different* bytes; nothing was overwritten."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)  # a naming bug or tampering: never heals


class ObjectNotFoundError(ObjectStoreError):
    """No object has that name."""


class ObjectStore(Protocol):
    """What the publishing code needs from a bucket (GCS) or a folder (embedded default)."""

    def put_immutable(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = IMMUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Create ``name`` once; same bytes again → ``created=False``; other bytes → conflict."""
        ...

    def replace(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = MUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Create or atomically replace ``name`` (last writer wins)."""
        ...

    def read(self, name: str) -> bytes:
        """The object's bytes; :class:`ObjectNotFoundError` when absent."""
        ...

    def exists(self, name: str) -> bool: ...

    def stat(self, name: str) -> ObjectInfo | None:
        """The object's SHA-256 and size, or None when no object has that name."""
        ...

    def delete(self, name: str) -> bool:
        """Remove ``name`` (takedowns only); False when it was already gone."""
        ...

    def uri(self, name: str) -> str: ...

    def public_url(self, name: str) -> str: ...


def validate_object_name(name: str) -> str:
    """Reject names that could escape a folder, hide in one, or break a URL."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"object name must be a non-empty string, got {name!r}")
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise ValueError(f"object name is longer than {_MAX_NAME_BYTES} bytes: {name[:80]!r}...")
    if "\\" in name or any(not ch.isprintable() for ch in name):
        raise ValueError(f"object name must not contain '\\' or control characters: {name!r}")
    for segment in name.split("/"):
        if not segment or segment in (".", ".."):
            raise ValueError(f"object name has an empty, '.' or '..' segment: {name!r}")
        if segment.startswith("."):
            # Reserved for the local store's temporary files.
            raise ValueError(f"object name segments must not start with '.': {name!r}")
    if name.endswith(SIDECAR_SUFFIX):
        raise ValueError(f"object names ending in {SIDECAR_SUFFIX!r} are reserved: {name!r}")
    return name


def _metadata_with_sha256(metadata: Mapping[str, str] | None, sha256: str) -> dict[str, str]:
    merged = {str(k): str(v) for k, v in (metadata or {}).items()}
    given = merged.get(SHA256_METADATA_KEY)
    if given is not None and given != sha256:
        raise ValueError(
            f"metadata {SHA256_METADATA_KEY}={given!r} does not match the data ({sha256})"
        )
    merged[SHA256_METADATA_KEY] = sha256
    return merged


def _md5_base64(data: bytes) -> str:
    # GCS reports md5Hash as base64 of the raw digest; md5 is an integrity check here.
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


# --------------------------------------------------------------------------- local folder


class _NamedStore:
    """What both stores share: a :class:`StoredObject` from their own URI scheme."""

    def uri(self, name: str) -> str:
        raise NotImplementedError

    def public_url(self, name: str) -> str:
        raise NotImplementedError

    def _stored(
        self, name: str, sha256: str, size: int, content_type: str, *, created: bool
    ) -> StoredObject:
        return StoredObject(
            name=name,
            uri=self.uri(name),
            public_url=self.public_url(name),
            sha256=sha256,
            byte_size=size,
            content_type=content_type,
            created=created,
        )


class LocalObjectStore(_NamedStore):
    """Objects as files under ``root`` (the embedded default: a folder a person can open).

    Each object ``a/b.jpg`` has a sidecar ``a/b.jpg.meta.json`` with its content type,
    cache control, SHA-256 and metadata. Writes go to a temporary file in the same folder
    first; write-once objects appear via ``os.link`` (which fails if the name is taken),
    replaceable ones via ``os.replace``. Both are atomic, so a crash never leaves a partial
    object under its final name. The object is written before its sidecar; a rerun repairs
    a sidecar lost to a crash in between.
    """

    def __init__(self, root: str | os.PathLike[str], *, public_base_url: str | None = None) -> None:
        self._root = Path(root).expanduser().resolve()
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None

    @property
    def root(self) -> Path:
        return self._root

    def path(self, name: str) -> Path:
        """The file holding object ``name``."""
        return self._root.joinpath(*validate_object_name(name).split("/"))

    def uri(self, name: str) -> str:
        return self.path(name).as_uri()

    def public_url(self, name: str) -> str:
        if self._public_base_url is None:
            return self.uri(name)
        return f"{self._public_base_url}/{quote(validate_object_name(name), safe='/')}"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def stat(self, name: str) -> ObjectInfo | None:
        # The bytes are hashed (a local read is cheap): a sidecar may lag after a crash.
        try:
            data = self.read(name)
        except ObjectNotFoundError:
            return None
        return ObjectInfo(name=name, sha256=sha256_hex(data), byte_size=len(data))

    def delete(self, name: str) -> bool:
        path = self.path(name)
        try:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            finally:
                path.with_name(path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
        except OSError as error:
            raise _local_error(f"cannot delete object {name!r}", error) from error
        return True

    def read(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no object {name!r} in {self._root}") from None
        except OSError as error:
            raise _local_error(f"cannot read object {name!r}", error) from error

    def put_immutable(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = IMMUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        path = self.path(name)
        sha256 = sha256_hex(data)
        sidecar = self._sidecar(content_type, cache_control, sha256, len(data), metadata)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._temp_file(path, data) as temp:
                try:
                    os.link(temp, path)
                    created = True
                except FileExistsError:
                    created = False
            if created:
                self._write_sidecar(path, sidecar)
                _fsync_dir(path.parent)
                return self._stored(name, sha256, len(data), content_type, created=True)
            existing = path.read_bytes()
        except OSError as error:
            raise _local_error(f"cannot write object {name!r}", error) from error
        if sha256_hex(existing) != sha256:
            raise ObjectConflictError(
                f"object {name!r} already exists with different bytes "
                f"(existing sha256 {sha256_hex(existing)}, new {sha256}); not overwritten"
            )
        existing_meta = self._read_sidecar(path)
        if existing_meta is None:  # lost to a crash between link and sidecar: repair it
            try:
                self._write_sidecar(path, sidecar)
            except OSError as error:
                raise _local_error(f"cannot repair metadata of {name!r}", error) from error
            existing_meta = sidecar
        existing_type = str(existing_meta.get("content_type") or content_type)
        return self._stored(name, sha256, len(existing), existing_type, created=False)

    def replace(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = MUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        path = self.path(name)
        sha256 = sha256_hex(data)
        sidecar = self._sidecar(content_type, cache_control, sha256, len(data), metadata)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._temp_file(path, data) as temp:
                os.replace(temp, path)
            self._write_sidecar(path, sidecar)
            _fsync_dir(path.parent)
        except OSError as error:
            raise _local_error(f"cannot write object {name!r}", error) from error
        return self._stored(name, sha256, len(data), content_type, created=True)

    # -- helpers

    @staticmethod
    def _sidecar(
        content_type: str,
        cache_control: str,
        sha256: str,
        size: int,
        metadata: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        return {
            "content_type": content_type,
            "cache_control": cache_control,
            "sha256": sha256,
            "byte_size": size,
            "metadata": _metadata_with_sha256(metadata, sha256),
        }

    @staticmethod
    def sidecar_path(path: Path) -> Path:
        return path.with_name(path.name + SIDECAR_SUFFIX)

    def _read_sidecar(self, path: Path) -> dict[str, Any] | None:
        try:
            loaded = json.loads(self.sidecar_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def _write_sidecar(self, path: Path, sidecar: Mapping[str, Any]) -> None:
        target = self.sidecar_path(path)
        encoded = json.dumps(sidecar, indent=2, sort_keys=True).encode("utf-8")
        with self._temp_file(target, encoded) as temp:
            os.replace(temp, target)

    @staticmethod
    @contextlib.contextmanager
    def _temp_file(final: Path, data: bytes) -> Iterator[Path]:
        """A fully written, fsynced temporary file next to ``final``; always removed after."""
        fd, temp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            yield temp
        finally:
            temp.unlink(missing_ok=True)


#: Local I/O errors that no retry fixes: permissions, a read-only or missing volume.
_PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}


def _local_error(message: str, error: OSError) -> ObjectStoreError:
    permanent = error.errno in _PERMANENT_ERRNOS
    fix = " (check the folder's permissions: PODPOD_OBJECT_STORE_URL)" if permanent else ""
    return ObjectStoreError(f"{message}: {error}{fix}", transient=not permanent)


#: Google errors that heal: rate limits, server errors, timeouts, dropped connections.
_TRANSIENT_GOOGLE = (
    google_errors.TooManyRequests,
    google_errors.InternalServerError,
    google_errors.BadGateway,
    google_errors.ServiceUnavailable,
    google_errors.GatewayTimeout,
    google_errors.RetryError,  # the retry deadline passed: the service may come back
    google_errors.DeadlineExceeded,
    requests.ConnectionError,
    requests.Timeout,
    TransportError,
    ConnectionError,
    TimeoutError,
)
#: What raising code should catch around a client call.
_GCS_ERRORS = (GoogleAPIError, GoogleAuthError, requests.RequestException, OSError)


def _gcs_error(message: str, error: BaseException) -> ObjectStoreError:
    """An :class:`ObjectStoreError` that says whether a retry can help, and the fix if not."""
    if isinstance(error, _TRANSIENT_GOOGLE):
        return ObjectStoreError(f"{message}: {error}", transient=True)
    if isinstance(error, google_errors.Unauthorized | GoogleAuthError):
        fix = (
            "the credentials were refused: check GOOGLE_APPLICATION_CREDENTIALS or "
            "Workload Identity"
        )
    elif isinstance(error, google_errors.Forbidden):
        fix = (
            "the service account lacks a role on the bucket "
            "(roles/storage.objectCreator and roles/storage.objectViewer)"
        )
    elif isinstance(error, google_errors.NotFound):
        fix = "the bucket does not exist: check PODPOD_OBJECT_STORE_URL"
    else:
        fix = "not a fault that a retry fixes"
    return ObjectStoreError(f"{message}: {error} ({fix})", transient=False)


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable (best effort: not every OS supports it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- GCS bucket


class GCSObjectStore(_NamedStore):
    """Objects in a Google Cloud Storage bucket.

    Write-once uploads carry ``if_generation_match=0``: GCS creates the object only if the
    name is free, atomically, so concurrent runs cannot both write. That precondition also
    makes the upload idempotent, which is why it is safe to pass ``retry=DEFAULT_RETRY``
    (the library only retries unconditionally-safe calls by default). A retry whose first
    attempt did land sees 412 and reports the object as already present (``created=False``).

    The client's credentials come from the environment (ADC) unless a client is given;
    they are never logged. ``STORAGE_EMULATOR_HOST`` points the default client at an emulator.
    """

    def __init__(
        self,
        bucket_name: str,
        *,
        client: storage.Client | None = None,
        public_base_url: str = GCS_PUBLIC_BASE_URL,
        request_timeout: float = 10.0,
        retry_deadline: float = 15.0,
    ) -> None:
        if not bucket_name or "/" in bucket_name:
            raise ValueError(f"bucket name must be a plain bucket name, got {bucket_name!r}")
        if not (0 < request_timeout <= retry_deadline):
            raise ValueError(
                f"need 0 < request_timeout ({request_timeout}) <= retry_deadline "
                f"({retry_deadline}), in seconds"
            )
        # One object per call: seconds, not the library's 120 s default, so a dead bucket
        # fails an artist quickly and the batch's breaker stops the run.
        # Any: the client accepts a float (or a (connect, read) pair) but hints int.
        self._timeout: Any = request_timeout
        self._retry_deadline = retry_deadline
        self._retry = DEFAULT_RETRY.with_timeout(retry_deadline)
        self._client = client if client is not None else storage.Client()
        self._bucket = self._client.bucket(bucket_name)
        self._bucket_name = bucket_name
        self._public_base_url = public_base_url.rstrip("/")

    @property
    def bucket_name(self) -> str:
        return self._bucket_name

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its settings: another process (a variant writer's worker) opens its
        own client, with credentials from its environment as ``storage.Client()`` finds
        them, and the emulator this process uses, if any. A client never crosses over."""
        return (
            _reopened_gcs_store,
            (
                self._bucket_name,
                self._client.project,
                os.environ.get(EMULATOR_HOST_ENV),
                self._public_base_url,
                self._timeout,
                self._retry_deadline,
            ),
        )

    def uri(self, name: str) -> str:
        return f"gs://{self._bucket_name}/{validate_object_name(name)}"

    def public_url(self, name: str) -> str:
        quoted = quote(validate_object_name(name), safe="/")
        return f"{self._public_base_url}/{self._bucket_name}/{quoted}"

    def exists(self, name: str) -> bool:
        return self.stat(name) is not None

    def stat(self, name: str) -> ObjectInfo | None:
        try:
            blob = self._bucket.get_blob(
                validate_object_name(name), timeout=self._timeout, retry=self._retry
            )
        except _GCS_ERRORS as error:
            raise _gcs_error(f"cannot check {self.uri(name)}", error) from error
        if blob is None:
            return None
        return ObjectInfo(
            name=name,
            sha256=(blob.metadata or {}).get(SHA256_METADATA_KEY),
            byte_size=int(blob.size or 0),
        )

    def delete(self, name: str) -> bool:
        blob = self._bucket.blob(validate_object_name(name))
        try:
            # Deleting is idempotent (a retried delete that landed gets 404 = gone).
            blob.delete(timeout=self._timeout, retry=self._retry)
        except NotFound:
            return False
        except _GCS_ERRORS as error:
            raise _gcs_error(f"cannot delete {self.uri(name)}", error) from error
        return True

    def read(self, name: str) -> bytes:
        blob = self._bucket.blob(validate_object_name(name))
        try:
            return blob.download_as_bytes(checksum="auto", timeout=self._timeout, retry=self._retry)
        except NotFound:
            raise ObjectNotFoundError(f"no object {self.uri(name)}") from None
        except _GCS_ERRORS as error:
            raise _gcs_error(f"cannot read {self.uri(name)}", error) from error

    def put_immutable(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = IMMUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        sha256 = sha256_hex(data)
        try:
            # if_generation_match=0: create only; a retry after a lost response gets 412.
            return self._upload(name, data, sha256, content_type, cache_control, metadata, 0)
        except PreconditionFailed:
            return self._existing(name, data, sha256)

    def replace(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str = MUTABLE_CACHE_CONTROL,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        # Last writer wins by design, so repeating the whole upload is harmless.
        return self._upload(
            name, data, sha256_hex(data), content_type, cache_control, metadata, None
        )

    def _upload(
        self,
        name: str,
        data: bytes,
        sha256: str,
        content_type: str,
        cache_control: str,
        metadata: Mapping[str, str] | None,
        if_generation_match: int | None,
    ) -> StoredObject:
        """Upload with a crc32c request check and an md5/size check of what was stored."""
        validate_object_name(name)
        blob = self._bucket.blob(name)
        blob.cache_control = cache_control
        blob.metadata = _metadata_with_sha256(metadata, sha256)
        try:
            blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=if_generation_match,
                checksum="crc32c",
                timeout=self._timeout,
                retry=self._retry,
            )
        except PreconditionFailed:
            raise
        except _GCS_ERRORS as error:
            raise _gcs_error(f"cannot upload {self.uri(name)}", error) from error
        self._verify_upload(blob, data)
        return self._stored(name, sha256, len(data), content_type, created=True)

    # -- helpers

    def _verify_upload(self, blob: storage.Blob, data: bytes) -> None:
        """End-to-end check of what the server stored (beyond the request's crc32c)."""
        if blob.md5_hash is not None and blob.md5_hash != _md5_base64(data):
            raise ObjectStoreError(
                f"{self.uri(blob.name or '')} was stored with md5 {blob.md5_hash}, "
                f"expected {_md5_base64(data)}"
            )
        if blob.size is not None and blob.size != len(data):
            raise ObjectStoreError(
                f"{self.uri(blob.name or '')} was stored with {blob.size} bytes, "
                f"expected {len(data)}"
            )

    def _existing(self, name: str, data: bytes, sha256: str) -> StoredObject:
        """The name is taken: same bytes → a rerun (``created=False``); else a conflict."""
        try:
            existing = self._bucket.get_blob(name, timeout=self._timeout, retry=self._retry)
            if existing is None:
                raise ObjectStoreError(
                    f"{self.uri(name)} existed at upload time but is gone now; retry later"
                )
            existing_sha = (existing.metadata or {}).get(SHA256_METADATA_KEY)
            if existing_sha is None:  # written by something else: hash the bytes themselves
                existing_sha = sha256_hex(
                    existing.download_as_bytes(
                        if_generation_match=existing.generation,
                        timeout=self._timeout,
                        retry=self._retry,
                    )
                )
        except _GCS_ERRORS as error:
            raise _gcs_error(f"cannot inspect {self.uri(name)}", error) from error
        same_md5 = existing.md5_hash is None or existing.md5_hash == _md5_base64(data)
        if existing_sha != sha256 or not same_md5:
            raise ObjectConflictError(
                f"{self.uri(name)} already exists with different bytes "
                f"(existing sha256 {existing_sha}, new {sha256}); not overwritten"
            )
        return self._stored(
            name,
            sha256,
            int(existing.size if existing.size is not None else len(data)),
            existing.content_type or "application/octet-stream",
            created=False,
        )


def _reopened_gcs_store(
    bucket_name: str,
    project: str | None,
    emulator_host: str | None,
    public_base_url: str,
    request_timeout: float,
    retry_deadline: float,
) -> GCSObjectStore:
    """A pickled :class:`GCSObjectStore` in this process, with a client of its own."""
    if emulator_host is None:
        os.environ.pop(EMULATOR_HOST_ENV, None)
    else:
        os.environ[EMULATOR_HOST_ENV] = emulator_host
    return GCSObjectStore(
        bucket_name,
        client=storage.Client(project=project),
        public_base_url=public_base_url,
        request_timeout=request_timeout,
        retry_deadline=retry_deadline,
    )
