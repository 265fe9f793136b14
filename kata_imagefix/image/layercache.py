"""What fully read registry layers said about a few paths, kept by layer digest.

Why: resolving `USER spark` from a registry means streaming every layer above
the one holding /etc/passwd - a gigabyte for apache/spark-like images - and
the next fix of any image sharing those layers (another tag, the next CI run)
would stream it all again. A layer digest names its bytes, so what a layer
said about /etc/passwd can never go stale; only facts from layers whose digest
was checked (registry streams check it on close, even when closed early) are kept.

Where: $IMAGEFIX_CACHE_DIR, else $XDG_CACHE_HOME/imagefix, else ~/.cache/imagefix.
IMAGEFIX_NO_CACHE=1 turns it off. An unwritable or damaged cache is ignored.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from .layerfs import Verdict

MAX_CONTENT = 1 << 20  # passwd/group files: a layer saying more than this is simply not cached


class LayerFacts:
    def __init__(self, root: Path) -> None:
        self.root = root / "layer-paths"

    def _file(self, digest: str) -> Path | None:
        algorithm, _, value = digest.partition(":")
        if not value or not value.isalnum() or not algorithm.isalnum():
            return None
        return self.root / algorithm / f"{value}.json"

    def get(self, digest: str) -> dict[str, Verdict] | None:
        path = self._file(digest)
        if path is None:
            return None
        try:
            doc = json.loads(path.read_bytes())
            return {
                name: Verdict(entry["kind"], base64.b64decode(entry["content"]) if "content" in entry
                              else None)
                for name, entry in doc["paths"].items()
            }
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, digest: str, verdicts: dict[str, Verdict]) -> None:
        path = self._file(digest)
        if path is None or any(len(v.content or b"") > MAX_CONTENT for v in verdicts.values()):
            return
        known = self.get(digest) or {}
        known.update(verdicts)
        doc = {"paths": {
            name: {"kind": v.kind, **({"content": base64.b64encode(v.content).decode()}
                                      if v.content is not None else {})}
            for name, v in sorted(known.items())
        }}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(doc))
            os.replace(temp, path)  # readers see the old file or the new one, never half of one
        except OSError:
            pass


def default_cache() -> LayerFacts | None:
    if os.environ.get("IMAGEFIX_NO_CACHE", "").strip() not in ("", "0"):
        return None
    root = os.environ.get("IMAGEFIX_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "imagefix")
    return LayerFacts(Path(root))
