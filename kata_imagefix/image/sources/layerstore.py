"""Per-layer facts from the Docker engine's own layer store, read from disk beside its layer folders.

Why: `docker history` lists steps, not layers; matching the two breaks on a
0-byte layer (a `WORKDIR` that creates a directory, a `RUN` that changes
nothing) and then every size lands on the wrong layer. The engine keeps, per
layer chain, the unpacked size it computed (`layerdb/sha256/<chain-id>/size`,
the file bytes `docker history` shows) and the layer tar's exact shape
(`tar-split.json.gz`, which it replays to rebuild the tar on push), and the
image config with `history[].empty_layer` (`imagedb/content/sha256/<id>`),
which says which step made which layer. See moby's
[layer/layer_store.go](https://github.com/moby/moby/blob/master/layer/layer_store.go),
[layer/filestore.go](https://github.com/moby/moby/blob/master/layer/filestore.go) and
[image/fs.go](https://github.com/moby/moby/blob/master/image/fs.go).
Readable only as root on the engine's host, as overlay2's folders are; callers fall back otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The engine's ChainID of each layer: the first diff ID, then sha256 of "parent child" (OCI)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else
                      "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def engine_root(inspect: dict, api: Any) -> Path | None:
    """The engine's data root (/var/lib/docker): from overlay2's folder names, else `docker info`."""
    data = (inspect.get("GraphDriver") or {}).get("Data") or {}
    for key in ("UpperDir", "LowerDir", "MergedDir", "WorkDir"):
        first = (data.get(key) or "").split(":")[0]
        if first:
            path = Path(first)
            if len(path.parents) >= 3:
                return path.parents[2]  # <root>/overlay2/<id>/diff
    try:
        root = api.info().get("DockerRootDir")
    except Exception:  # an engine that will not say: no layer store
        return None
    return Path(root) if root else None


class LayerStore:
    """One image's layers in the store at `root` for storage driver `driver`."""

    def __init__(self, root: Path, driver: str, diff_ids: list[str], image_id: str) -> None:
        self.base = root / "image" / driver
        self.diff_ids, self.image_id = diff_ids, image_id
        self.folders = [self.base / "layerdb" / "sha256" / chain.partition(":")[2]
                        for chain in chain_ids(diff_ids)]

    def sizes(self) -> list[int] | None:
        """Each layer's unpacked size (file bytes, as `docker history`), or None when unreadable."""
        try:
            sizes = [int((folder / "size").read_text().strip()) for folder in self.folders]
            diffs = [(folder / "diff").read_text().strip() for folder in self.folders]
        except (OSError, ValueError):
            return None
        return sizes if diffs == self.diff_ids else None  # the folder must hold the layer it is named for

    def config(self) -> dict | None:
        """The image config as stored (its history marks empty layers), or None."""
        path = self.base / "imagedb" / "content" / "sha256" / self.image_id.partition(":")[2]
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        if "sha256:" + hashlib.sha256(raw).hexdigest() != self.image_id:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def tar_sizes(self) -> list[int] | None:
        """Each layer tar's exact length, replayed from tar-split's records (segments + file sizes)."""
        out = []
        for folder in self.folders:
            size = tar_split_length(folder / "tar-split.json.gz")
            if size is None:
                return None
            out.append(size)
        return out


def tar_split_length(path: Path) -> int | None:
    """The tar length tar-split's records rebuild: raw segments (headers, padding) plus file contents."""
    import base64
    import gzip

    if not os.access(path, os.R_OK):
        return None
    total = 0
    try:
        with gzip.open(path, "rb") as records:
            for line in records:
                entry = json.loads(line)
                if entry.get("type") == 1:  # a file's content: its size
                    total += int(entry.get("size") or 0)
                elif entry.get("type") == 2:  # bytes kept as they were: headers, padding, the end blocks
                    total += len(base64.b64decode(entry.get("payload") or ""))
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return total
