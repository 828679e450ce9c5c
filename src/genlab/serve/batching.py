"""Micro-batching: concurrent sampling requests for one model share one forward pass.

Each model has one worker thread and a queue. The worker takes the oldest job, waits up to
`max_wait_ms` for more jobs with the same batch key (the same model conditions) until
`max_batch` samples are gathered, runs them in one call and hands each caller its own slice.
Jobs whose key differs wait for the next round, in arrival order. A job larger than
`max_batch` runs alone; `max_batch=1` turns batching off (one job per call, no waiting).

Exactness: a job carries its own seed, and a batch draws each job's latent with that job's
generator before one decoding pass (the contract's `LatentSampler`, decoded row by row), so a
request gets the same samples whether or not it was batched (tests/serve check it). Models
without an explicit latent get key None: their jobs always run alone.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    size: int  # samples
    key: Hashable | None  # jobs with equal keys may share a call; None: always alone
    payload: Any
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """`run(jobs)` is called on the worker thread with 1..max_batch samples' worth of jobs that
    share a key; it returns one result per job (or raises: every job gets the exception)."""

    def __init__(
        self,
        run: Callable[[Sequence[Job]], Sequence[Any]],
        *,
        max_batch: int,
        max_wait_ms: float,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
    ):
        self._run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000
        self._on_batch = on_batch
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._pending: deque[Job] = deque()
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, size: int, key: Hashable | None, payload: Any) -> Future:
        job = Job(size, key, payload)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    # --- the worker ----------------------------------------------------------------------------
    def _take(self, timeout: float | None) -> Job | bool | None:
        """The next queued job; False on timeout."""
        try:
            return self._queue.get(timeout=timeout) if timeout != 0 else self._queue.get_nowait()
        except queue.Empty:
            return False

    def _work(self) -> None:
        while True:
            if not self._pending:
                job = self._take(None)
                if job is None:
                    return
                self._pending.append(job)  # type: ignore[arg-type]
            first = self._pending[0]
            if first.key is not None and self.max_batch > 1:
                deadline = time.monotonic() + self.max_wait
                while sum(j.size for j in self._batch_of(first)) < self.max_batch:
                    job = self._take(max(0.0, deadline - time.monotonic()))
                    if job is False:
                        break
                    if job is None:
                        self._queue.put(None)  # finish this batch, then stop
                        break
                    self._pending.append(job)  # type: ignore[arg-type]
            batch = self._select(first)
            live = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if live:
                self._execute(live)

    def _batch_of(self, first: Job) -> list[Job]:
        """The pending jobs that would run with `first`: its key, in arrival order, while they
        fit in max_batch (`first` always runs, even alone over the limit)."""
        batch, total = [], 0
        for job in self._pending:
            fits = job.key == first.key and total + job.size <= self.max_batch
            if job is first or (fits and first.key is not None):
                batch.append(job)
                total += job.size
        return batch

    def _select(self, first: Job) -> list[Job]:
        batch = self._batch_of(first)
        chosen = {id(job) for job in batch}
        self._pending = deque(job for job in self._pending if id(job) not in chosen)
        return batch

    def _execute(self, jobs: list[Job]) -> None:
        try:
            results = self._run(jobs)
        except BaseException as e:  # handed to every caller, the worker goes on
            for job in jobs:
                job.future.set_exception(e)
            return
        if self._on_batch is not None:
            self._on_batch(sum(j.size for j in jobs))
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)
