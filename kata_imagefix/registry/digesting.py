"""A blob digest computed beside the download instead of after each read.

Why: checking a 1 GB layer's sha256 costs ~0.75 s of CPU here, as much as
receiving and inflating it together. hashlib releases the GIL for large
buffers, so on a second thread that time overlaps the download and the
decompression. Small blobs (configs, manifests) are hashed inline: a thread is
started only once a blob has passed THRESHOLD bytes.
"""

from __future__ import annotations

import collections
import hashlib
import threading


class BackgroundDigest:
    THRESHOLD = 1 << 20
    IN_FLIGHT = 32 << 20  # bytes queued for the hasher at most: memory stays bounded

    def __init__(self, algorithm: str) -> None:
        self.hash = hashlib.new(algorithm)
        self.seen = 0
        self.queue: collections.deque[bytes | None] = collections.deque()
        self.queued = 0
        self.cv = threading.Condition()
        self.thread: threading.Thread | None = None
        self.stopped = False

    def update(self, data: bytes) -> None:
        self.seen += len(data)
        if self.thread is None:
            if self.seen <= self.THRESHOLD:
                self.hash.update(data)
                return
            self.thread = threading.Thread(target=self._run, name="blob-digest", daemon=True)
            self.thread.start()
        with self.cv:
            while self.queued >= self.IN_FLIGHT and not self.stopped:
                self.cv.wait()
            self.queue.append(data)
            self.queued += len(data)
            self.cv.notify_all()

    def _run(self) -> None:
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                data = self.queue.popleft()
                if data is not None:
                    self.queued -= len(data)
                self.cv.notify_all()
            if data is None:
                return
            self.hash.update(data)  # without the GIL for big buffers: runs beside the reader

    def _stop(self) -> None:
        if self.thread is not None:
            with self.cv:
                self.queue.append(None)
                self.stopped = True
                self.cv.notify_all()
            self.thread.join()
            self.thread = None

    def hexdigest(self) -> str:
        self._stop()
        return self.hash.hexdigest()

    def abandon(self) -> None:
        """The blob will not be checked (its stream failed): let the thread go."""
        if self.thread is not None:
            with self.cv:
                self.queue.clear()
                self.queued = 0
            self._stop()
