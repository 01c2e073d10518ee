"""Object names for published images: content-addressed, one folder per artist.

A name is derived only from the artist id and the image's SHA-256, so the same image always
lands on the same object (reruns are no-ops) and a new image never overwrites an old one
(the main API keeps serving the previous object until its row is switched). Every part is
validated because artist ids come from another system and end up in paths and URLs.
"""

from __future__ import annotations

import re

from podpod_scraping.core.formats import EXTENSIONS as IMAGE_EXTENSIONS

DEFAULT_PREFIX = "artists"

# Partition keys are catalog ids (integers, UUIDs, slugs): a conservative charset keeps
# every name safe as a path segment, a GCS object name and a URL path without escaping.
_ARTIST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")


def validate_artist_id(artist_id: str) -> str:
    """Return ``artist_id`` if it is safe as one path segment, else raise ``ValueError``."""
    if not isinstance(artist_id, str) or not artist_id:
        raise ValueError(f"artist id must be a non-empty string, got {artist_id!r}")
    if "/" in artist_id or "\\" in artist_id:
        raise ValueError(f"artist id must not contain a path separator: {artist_id!r}")
    if ".." in artist_id:
        raise ValueError(f"artist id must not contain '..': {artist_id!r}")
    if any(ch.isspace() or not ch.isprintable() for ch in artist_id):
        raise ValueError(
            f"artist id must not contain whitespace or control characters: {artist_id!r}"
        )
    if not _ARTIST_ID.fullmatch(artist_id):
        raise ValueError(
            "artist id must be 1-128 characters of letters, digits, '_', '-' or '.', "
            f"starting with a letter or digit: {artist_id!r}"
        )
    return artist_id


def image_object_name(
    artist_id: str, sha256: str, extension: str, *, prefix: str = DEFAULT_PREFIX
) -> str:
    """``<prefix>/<artist_id>/<sha256>.<extension>``, e.g. ``artists/42/<64 hex>.jpg``.

    Raises ``ValueError`` naming the offending part when any part is not acceptable.
    """
    validate_artist_id(artist_id)
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 lowercase hex characters, got {sha256!r}")
    if extension not in IMAGE_EXTENSIONS:
        raise ValueError(
            f"extension must be one of {sorted(IMAGE_EXTENSIONS)} (lowercase, no dot), "
            f"got {extension!r}"
        )
    segments = prefix.split("/") if isinstance(prefix, str) else [prefix]
    if not all(isinstance(s, str) and _PREFIX_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(
            "prefix must be one or more '/'-separated segments of letters, digits, '_' or "
            f"'-' (no leading or trailing '/'), got {prefix!r}"
        )
    return f"{prefix}/{artist_id}/{sha256}.{extension}"


_VARIANT_SET = re.compile(r"[0-9a-f]{12}")
_VARIANT_FILE = re.compile(r"(avatar-)?[1-9][0-9]{0,4}")


def variant_object_name(
    artist_id: str, sha256: str, variant_set: str, file_name: str, *, prefix: str = DEFAULT_PREFIX
) -> str:
    """``artists/<id>/<sha256>/<set>/<w>.<ext>``: one variant of one published image.

    Content-addressed by the image and the set's policy fingerprint, so a rerun writes the
    same names (no-ops), a changed original or a changed policy gets a new folder, and
    older sets stay where the app may still have cached them.
    """
    folder = image_object_name(artist_id, sha256, "jpg", prefix=prefix).removesuffix(".jpg")
    if not _VARIANT_SET.fullmatch(variant_set):
        raise ValueError(f"variant set must be 12 lowercase hex characters, got {variant_set!r}")
    stem, _, extension = file_name.partition(".")
    if not _VARIANT_FILE.fullmatch(stem) or extension not in IMAGE_EXTENSIONS:
        raise ValueError(
            f"variant file name must look like 640.webp or avatar-128.avif: {file_name!r}"
        )
    return f"{folder}/{variant_set}/{file_name}"
