"""Lookups from many threads become few batched requests, each thread getting its answer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from podpod_scraping.core.coalescer import Coalescer


def test_concurrent_lookups_share_batches_and_each_gets_its_own_answer() -> None:
    batches: list[list[int]] = []
    lock = threading.Lock()

    def fetch_many(keys: list[int]) -> dict[int, int]:
        with lock:
            batches.append(keys)
        return {key: key * 10 for key in keys}

    coalescer = Coalescer(fetch_many, max_batch=50, window=0.2)
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(coalescer.get, range(40)))

    assert answers == [key * 10 for key in range(40)]
    assert len(batches) <= 4
    assert all(len(batch) <= 50 for batch in batches)


def test_a_full_batch_is_sent_without_waiting_for_the_window() -> None:
    coalescer: Coalescer[int, int] = Coalescer(
        lambda keys: dict.fromkeys(keys, 1), max_batch=3, window=30
    )

    assert coalescer.get_many([1, 2, 3]) == {1: 1, 2: 1, 3: 1}


def test_a_batch_error_is_raised_in_its_threads_only() -> None:
    def fetch_many(keys: list[str]) -> dict[str, str]:
        raise ValueError("malformed answer")

    coalescer = Coalescer(fetch_many, window=0.0)

    with pytest.raises(ValueError, match="malformed"):
        coalescer.get("a")


def test_a_key_missing_from_the_answer_gets_none() -> None:
    coalescer: Coalescer[str, str] = Coalescer(lambda keys: {}, window=0.0)

    assert coalescer.get("Q1") is None
