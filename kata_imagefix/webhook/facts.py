"""Images read for admission: from the registry without pulling, as `k8s check` reads them, each digest
once, within the request's deadline.

Image facts (the config, the sizes, what /etc/passwd and /etc/group say) are
kept in memory by manifest digest (the layer cache keeps the account files by
layer digest on disk as well). A reference pinned by digest is answered from
memory; a tag is re-resolved once its TTL has passed, and a tag that still
names a known digest costs one manifest and one config request, no layer. A
read that misses the deadline goes on in the background so that the API
server's retry (the ReplicaSet controller creates the pod again) finds it.
Failures are not kept: the next request reads again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, wait
from contextlib import suppress
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any

from ..errors import ImagefixError

Read = tuple[Any, str | None]  # (Image or None, why it could not be read)


@dataclass
class FactStats:
    reads: int = 0  # images opened in the registry
    read_failures: int = 0
    cache_hits: int = 0  # answered from memory (a pinned digest, a fresh tag, or a tag naming a known digest)
    deadline_misses: int = 0


class ImageFacts:
    def __init__(self, open_image: Callable[[str], Any], *, tag_ttl_s: float = 300.0, max_images: int = 256,
                 workers: int = 4, clock: Callable[[], float] = time.monotonic) -> None:
        self.open_image, self.tag_ttl_s, self.clock = open_image, tag_ttl_s, clock
        self.max_images = max_images
        self.by_digest: OrderedDict[str, Any] = OrderedDict()
        self.by_ref: dict[str, tuple[float, str]] = {}  # ref -> (when resolved, digest)
        self.pending: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.stats = FactStats()
        # daemon threads, not a ThreadPoolExecutor (whose workers the interpreter joins at exit): a read
        # stuck on a silent registry must not keep a stopped server (SIGTERM) from exiting
        self.queue: SimpleQueue[tuple[str, Future] | None] = SimpleQueue()
        self.workers = [threading.Thread(target=self._work, name=f"image-read-{n}", daemon=True)
                        for n in range(max(1, workers))]
        for worker in self.workers:
            worker.start()

    def lookup(self, refs: list[str], timeout_s: float) -> dict[str, Read]:
        """ref -> (Image, None) or (None, why), every ref answered within `timeout_s`."""
        out: dict[str, Read] = {}
        futures: dict[str, Future] = {}
        with self.lock:
            for ref in dict.fromkeys(refs):
                image = self._known(ref)
                if image is not None:
                    self.stats.cache_hits += 1
                    out[ref] = (image, None)
                    continue
                if ref not in self.pending:
                    self.pending[ref] = Future()
                    self.queue.put((ref, self.pending[ref]))
                futures[ref] = self.pending[ref]
        if futures:
            wait(list(futures.values()), timeout=max(0.0, timeout_s))
        for ref, future in futures.items():
            if future.done():
                out[ref] = future.result()
            else:
                with self.lock:
                    self.stats.deadline_misses += 1
                out[ref] = (None, f"not read within the {timeout_s:.1f} s deadline (the read goes on; "
                                  "a retry uses it)")
        return out

    def _known(self, ref: str) -> Any:
        digest = ref.rpartition("@")[2] if "@" in ref else None
        if digest is None:
            resolved = self.by_ref.get(ref)
            if resolved is None or self.clock() - resolved[0] > self.tag_ttl_s:
                return None
            digest = resolved[1]
        image = self.by_digest.get(digest)
        if image is not None:
            self.by_digest.move_to_end(digest)
        return image

    def _read(self, ref: str) -> Read:
        try:
            image = self.open_image(f"docker://{ref}")
            with suppress(ImagefixError):  # the rule that needs it reads it again and says what failed
                # both now (one pass over the layers): afterwards requests running at once only read the
                # Image's memo of them, never its layers
                image.read_file("/etc/passwd")
                image.read_file("/etc/group")
        except ImagefixError as exc:
            with self.lock:
                self.stats.reads += 1
                self.stats.read_failures += 1
                self.pending.pop(ref, None)
            return None, str(exc)
        except Exception as exc:  # a registry that answers nonsense must not take the server down
            with self.lock:
                self.stats.reads += 1
                self.stats.read_failures += 1
                self.pending.pop(ref, None)
            return None, f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.stats.reads += 1
            digest = image.digest or ref
            known = self.by_digest.get(digest)
            if known is not None:  # the tag still names a digest read before: its facts stay
                self.stats.cache_hits += 1
                image = known
            self.by_digest[digest] = image
            self.by_digest.move_to_end(digest)
            while len(self.by_digest) > self.max_images:
                self.by_digest.popitem(last=False)
            self.by_ref[ref] = (self.clock(), digest)
            self.pending.pop(ref, None)
        return image, None

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            ref, future = item
            future.set_result(self._read(ref))

    def close(self) -> None:
        for _ in self.workers:
            self.queue.put(None)


__all__ = ["FactStats", "ImageFacts"]
