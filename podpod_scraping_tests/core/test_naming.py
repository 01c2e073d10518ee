"""Object naming: content-addressed names, and refusal of anything unsafe in a path or URL."""

from __future__ import annotations

import hashlib

import pytest

from podpod_scraping.core.naming import image_object_name

SHA = hashlib.sha256(b"an image").hexdigest()


def test_name_is_prefix_artist_id_and_content_hash() -> None:
    assert image_object_name("42", SHA, "jpg") == f"artists/42/{SHA}.jpg"


def test_custom_prefix_is_used() -> None:
    assert image_object_name("42", SHA, "png", prefix="sources") == f"sources/42/{SHA}.png"


def test_same_inputs_give_the_same_name() -> None:
    assert image_object_name("a-1", SHA, "webp") == image_object_name("a-1", SHA, "webp")


@pytest.mark.parametrize(
    "artist_id",
    ["0f8fad5b-d9cb-469f-a165-70867728950e", "artist_1", "A.B", "7" * 128],
)
def test_ordinary_ids_are_accepted(artist_id: str) -> None:
    assert image_object_name(artist_id, SHA, "gif").split("/")[1] == artist_id


@pytest.mark.parametrize(
    ("artist_id", "message"),
    [
        ("", "non-empty"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\x00b", "control"),
        ("a\x7fb", "control"),
        (".hidden", "starting with a letter or digit"),
        ("a?b", "letters, digits"),
        ("a%2Fb", "letters, digits"),
        ("x" * 129, "1-128"),
    ],
)
def test_unsafe_artist_ids_are_refused_with_a_clear_message(artist_id: str, message: str) -> None:
    with pytest.raises(ValueError, match="artist id") as error:
        image_object_name(artist_id, SHA, "jpg")
    assert message in str(error.value)


@pytest.mark.parametrize(
    "sha256", ["", "abc", SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, f"../{SHA[3:]}"]
)
def test_malformed_sha256_is_refused(sha256: str) -> None:
    with pytest.raises(ValueError, match="sha256 must be 64 lowercase hex"):
        image_object_name("42", sha256, "jpg")


@pytest.mark.parametrize("extension", ["", ".jpg", "JPG", "svg", "html", "jpg/../x", "exe"])
def test_extension_outside_the_image_allowlist_is_refused(extension: str) -> None:
    with pytest.raises(ValueError, match="extension must be one of"):
        image_object_name("42", SHA, extension)


@pytest.mark.parametrize("prefix", ["", "/artists", "artists/", "a//b", "..", "a b"])
def test_malformed_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix must be"):
        image_object_name("42", SHA, "jpg", prefix=prefix)
