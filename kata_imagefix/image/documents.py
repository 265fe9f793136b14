"""External JSON documents checked once, where they enter: OCI/Docker image documents.

Each check returns the document itself, now known to have the shapes the
OCI image spec (and Docker's archive format) allow for the fields imagefix
reads, or raises ImagefixError naming the input and the field. Code past this
point can use `.get()` and index without guarding against `"config": "x"`,
`"User": 5` or `"history": 5`.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from ..errors import ImagefixError
from ..registry.wire import checked_digest
from ..registry.wire import load_json as load_json  # where image/ and merge read it

# --- shapes ----------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def mapping(value: Any, where: str, *, optional: bool = False) -> dict:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise ImagefixError(f"{where} must be an object, not {_kind(value)}")
    return value


def sequence(value: Any, where: str, *, optional: bool = False) -> list:
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise ImagefixError(f"{where} must be an array, not {_kind(value)}")
    return value


@overload
def text(value: Any, where: str, *, optional: Literal[False] = False) -> str: ...
@overload
def text(value: Any, where: str, *, optional: bool) -> str | None: ...
def text(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ImagefixError(f"{where} must be a string, not {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ImagefixError(f"{where} holds a lone surrogate: not valid Unicode") from None
    return value


def size(value: Any, where: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 2**63:
        shown = value if isinstance(value, int) and not isinstance(value, bool) else _kind(value)
        raise ImagefixError(f"{where} must be a byte count, not {shown}")
    return value


def descriptor(value: Any, where: str) -> dict:
    """An OCI content descriptor: digest (checked), size, mediaType, optional platform/annotations."""
    item = mapping(value, where)
    checked_digest(item.get("digest"), f"{where}.digest")
    size(item.get("size"), f"{where}.size", optional=True)
    text(item.get("mediaType"), f"{where}.mediaType", optional=True)
    platform = mapping(item.get("platform"), f"{where}.platform", optional=True)
    for key in ("os", "architecture", "variant"):
        text(platform.get(key), f"{where}.platform.{key}", optional=True)
    annotations = mapping(item.get("annotations"), f"{where}.annotations", optional=True)
    for key, note in annotations.items():
        text(note, f"{where}.annotations[{key!r}]")
    return item


def image_index(value: Any, where: str) -> dict:
    doc = mapping(value, where)
    for number, item in enumerate(sequence(doc.get("manifests"), f"{where}.manifests", optional=True)):
        descriptor(item, f"{where}.manifests[{number}]")
    return doc


def image_manifest(value: Any, where: str) -> dict:
    """An image manifest, or an index when it says it is one (its `manifests` are checked)."""
    doc = mapping(value, where)
    if "manifests" in doc:
        return image_index(doc, where)
    if doc.get("config") is not None:
        descriptor(doc["config"], f"{where}.config")
    for number, item in enumerate(sequence(doc.get("layers"), f"{where}.layers", optional=True)):
        descriptor(item, f"{where}.layers[{number}]")
    return doc


# --- keys as Go's encoding/json matches them ----------------------------------------------------
#
# containerd and dockerd decode an image config into Go structs (opencontainers/image-spec
# specs-go/v1 config.go) with encoding/json, which (decode.go, `object`) maps each key of an object
# to a struct field by its exact name, else by a case-insensitive match (fold.go: bytes.EqualFold,
# simple Unicode folding, so "ſ" matches "s" and the Kelvin sign "k"); keys are applied in document
# order, so of "User", "user" and "USER" the last one wins. A JSON null leaves a string or a struct as
# it was and empties a list or a map; a second object for a struct field or a map is merged into the
# first. Keys that match no field are kept as written.

_STRING, _LIST, _MAP = "string", "list", "map"
_HISTORY = {"created": _STRING, "created_by": _STRING, "author": _STRING, "comment": _STRING,
            "empty_layer": _STRING}
_IMAGE_FIELDS: dict[str, Any] = {
    "created": _STRING, "author": _STRING, "architecture": _STRING, "os": _STRING, "os.version": _STRING,
    "os.features": _LIST, "variant": _STRING,
    "config": {"User": _STRING, "ExposedPorts": _MAP, "Env": _LIST, "Entrypoint": _LIST, "Cmd": _LIST,
               "Volumes": _MAP, "WorkingDir": _STRING, "Labels": _MAP, "StopSignal": _STRING,
               "ArgsEscaped": _STRING},
    "rootfs": {"type": _STRING, "diff_ids": _LIST},
    "history": [_HISTORY],
}
_FOLD = str.maketrans({"\u017f": "S", "\u212a": "K"})  # the two non-ASCII runes that fold onto ASCII


def _fold(key: str) -> str:
    """Go's foldName for a match against an ASCII field name: ASCII letters upper-cased, and the two
    runes whose fold orbit holds an ASCII letter mapped onto it (any other rune matches no field)."""
    ascii_upper = "".join(ch.upper() if "a" <= ch <= "z" else ch for ch in key)
    return ascii_upper.translate(_FOLD)


def go_decoded(value: Any, fields: dict[str, Any] = _IMAGE_FIELDS, into: dict | None = None) -> Any:
    """The object as Go would see it decoded into the struct whose fields are `fields`: each key under
    its field's own name (see the comment above)."""
    if not isinstance(value, dict):
        return value
    out = {} if into is None else into
    folded: dict[str, str] = {}
    for field in fields:
        folded.setdefault(_fold(field), field)  # the first declared field wins a fold collision
    for key, item in getattr(value, "pairs", None) or list(value.items()):
        name = key if key in fields else folded.get(_fold(key))
        if name is None:
            out[key] = item
            continue
        kind = fields[name]
        if isinstance(kind, dict):  # a struct: null changes nothing, a second object merges
            if item is None:
                continue
            if isinstance(item, dict) and isinstance(out.get(name), dict):
                go_decoded(item, kind, out[name])
            else:
                out[name] = go_decoded(item, kind)
        elif isinstance(kind, list):  # a list of structs
            out[name] = [go_decoded(entry, kind[0]) for entry in item] if isinstance(item, list) else item
        elif kind == _MAP and isinstance(item, dict):
            merged = out[name] if isinstance(out.get(name), dict) else {}
            merged.update(getattr(item, "pairs", None) or item)
            out[name] = merged
        elif item is not None or kind != _STRING:
            out[name] = item
    return out


def image_config(value: Any, where: str) -> dict:
    """The fields of an image config imagefix reads, in the types the OCI image spec gives them, under
    the names Go's decoder gives them (`{"config": {"user": "spark"}}` runs as spark)."""
    doc = go_decoded(mapping(value, where))
    for key in ("os", "architecture", "variant", "created"):
        text(doc.get(key), f"{where}.{key}", optional=True)
    config = mapping(doc.get("config"), f"{where}.config", optional=True)
    for key in ("User", "WorkingDir"):
        text(config.get(key), f"{where}.config.{key}", optional=True)
    for key in ("Env", "Entrypoint", "Cmd"):
        for number, item in enumerate(sequence(config.get(key), f"{where}.config.{key}", optional=True)):
            text(item, f"{where}.config.{key}[{number}]")
    for key in ("ExposedPorts", "Volumes"):
        mapping(config.get(key), f"{where}.config.{key}", optional=True)
    for key, label in mapping(config.get("Labels"), f"{where}.config.Labels", optional=True).items():
        text(label, f"{where}.config.Labels[{key!r}]")
    rootfs = mapping(doc.get("rootfs"), f"{where}.rootfs", optional=True)
    diff_ids = sequence(rootfs.get("diff_ids"), f"{where}.rootfs.diff_ids", optional=True)
    for number, item in enumerate(diff_ids):
        checked_digest(item, f"{where}.rootfs.diff_ids[{number}]")
    for number, item in enumerate(sequence(doc.get("history"), f"{where}.history", optional=True)):
        entry = mapping(item, f"{where}.history[{number}]")
        for key in ("created_by", "comment", "created", "author"):
            text(entry.get(key), f"{where}.history[{number}].{key}", optional=True)
        if not isinstance(entry.get("empty_layer", False), bool):
            raise ImagefixError(f"{where}.history[{number}].empty_layer must be a boolean")
    return doc


def docker_archive_manifest(value: Any, where: str) -> list[dict]:
    """`docker save`'s manifest.json: [{"Config": path, "RepoTags": [...], "Layers": [paths]}]."""
    entries = sequence(value, where)
    for number, item in enumerate(entries):
        entry = mapping(item, f"{where}[{number}]")
        text(entry.get("Config"), f"{where}[{number}].Config")
        for key in ("RepoTags", "Layers"):
            for index, name in enumerate(sequence(entry.get(key), f"{where}[{number}].{key}",
                                                  optional=key == "RepoTags")):
                text(name, f"{where}[{number}].{key}[{index}]")
    return entries
