"""An image's file contents held in memory, for tests that judge images without a source behind them."""

from __future__ import annotations


class Files:
    """What an Image asks its contents for: whole files by path; walking the layers is never needed."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_file(self, path: str) -> bytes | None:
        return self.files.get(path)

    def layer_entries(self, how: str):
        raise ValueError("not needed")
