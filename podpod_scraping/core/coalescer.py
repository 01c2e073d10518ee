"""Coalescing lookups from many threads into batched requests (Wikidata, Commons).

Artists run concurrently in worker threads, each wanting one Wikidata item or one
Commons file. The APIs take up to 50 ids or titles per request and ask for one request
at a time, so a refresh of 10,000 artists must cost a few hundred requests, not tens of
thousands. A :class:`Coalescer` collects keys for a short window (or until a batch is
full), sends one request for all of them from whichever waiting thread goes first, and
hands each thread its own answer (or the batch's error).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: How long a thread waits for its batch's answer after the batch was sent.
_ANSWER_TIMEOUT = 300.0


@dataclass
class _Slot(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


class Coalescer(Generic[K, V]):
    """``get(key)`` answers from ``fetch_many(keys)`` calls of at most ``max_batch`` keys.

    ``fetch_many`` returns a mapping; a key it leaves out gets ``None``. An exception
    raised by ``fetch_many`` is raised in every thread of that batch (and only there).
    ``sent`` counts the batches, ``keys_sent`` the keys (for measurements).
    """

    def __init__(
        self,
        fetch_many: Callable[[list[K]], Mapping[K, V]],
        *,
        max_batch: int = 50,
        window: float = 0.05,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._fetch_many = fetch_many
        self._max_batch = max_batch
        self._window = window
        self._lock = threading.Lock()
        self._sending = threading.Lock()
        self._pending: dict[K, _Slot[V]] = {}
        self.sent = 0
        self.keys_sent = 0

    def get(self, key: K) -> V | None:
        """The answer for ``key``, batched with the other threads' keys of the moment."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[K]) -> dict[K, V | None]:
        """Answers for several keys of one caller (they join the same pending batch)."""
        wanted = list(dict.fromkeys(keys))
        slots: dict[K, _Slot[V]] = {}
        with self._lock:
            for key in wanted:
                slots[key] = self._pending.setdefault(key, _Slot())
            full = len(self._pending) >= self._max_batch
        if full:
            self._send_pending(wanted[0])
        for key, slot in slots.items():
            if not slot.done.wait(self._window):
                self._send_pending(key)  # nobody sent our key yet: this thread does
                if not slot.done.wait(_ANSWER_TIMEOUT):
                    raise TimeoutError(f"no answer for {key!r} within {_ANSWER_TIMEOUT:g} s")
            if slot.error is not None:
                raise slot.error
        return {key: slots[key].value for key in wanted}

    def _take(self, first: K | None = None) -> list[tuple[K, _Slot[V]]]:
        """Up to ``max_batch`` pending keys (``first`` among them), removed (lock held)."""
        keys = list(self._pending)
        if first is not None:
            keys.remove(first)
            keys.insert(0, first)
        return [(key, self._pending.pop(key)) for key in keys[: self._max_batch]]

    def _send_pending(self, key: K) -> None:
        """Send the pending keys (``key`` among them) once no other batch is in flight.

        One batch at a time (Wikimedia asks for one request at a time): keys that arrive
        while a batch is in flight wait for it and go together in the next one.
        """
        with self._sending:
            with self._lock:
                batch = self._take(key) if key in self._pending else None
            if batch:
                self._send(batch)

    def _send(self, batch: list[tuple[K, _Slot[V]]]) -> None:
        keys = [key for key, _slot in batch]
        with self._lock:
            self.sent += 1
            self.keys_sent += len(keys)
        try:
            answers = self._fetch_many(keys)
        except BaseException as error:  # each waiting artist reports it as its own outcome
            for _key, slot in batch:
                slot.error = error
                slot.done.set()
            return
        for key, slot in batch:
            slot.value = answers.get(key)
            slot.done.set()
