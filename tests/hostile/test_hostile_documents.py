"""Image documents with fields of the wrong type: parsed into checked shapes or refused in one line."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from make_samples import SPARK_GROUP, SPARK_PASSWD, ImageSpec, base_layer, write_oci_layout

from kata_imagefix.errors import ImagefixError
from kata_imagefix.image.documents import (
    docker_archive_manifest,
    image_config,
    image_index,
    image_manifest,
    load_json,
)
from kata_imagefix.image.model import Image
from kata_imagefix.kata.budget import BudgetModel
from kata_imagefix.scan import RuleSelection, scan_image

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)
DIGEST = "sha256:" + "a" * 64


def shaped(keys: list[str]):
    """Objects that use the real field names, with anything as their values."""
    return st.dictionaries(st.sampled_from(keys), json_values | st.just(DIGEST), max_size=len(keys))


CONFIG_KEYS = ["User", "Env", "Labels", "WorkingDir", "Entrypoint", "Cmd", "ExposedPorts", "Volumes"]
config_docs = st.fixed_dictionaries({}, optional={
    "config": shaped(CONFIG_KEYS) | json_values, "os": json_values, "architecture": json_values,
    "history": st.lists(shaped(["created_by", "empty_layer", "comment"]), max_size=3) | json_values,
    "rootfs": st.fixed_dictionaries({}, optional={"diff_ids": st.lists(st.just(DIGEST) | json_values,
                                                                       max_size=3)}) | json_values})
descriptors = shaped(["digest", "size", "mediaType", "platform", "annotations"])


@settings(max_examples=300)
@given(config_docs | json_values)
def test_image_config_parses_or_refuses_and_the_rules_then_run(doc):
    try:
        config = image_config(doc, "config")
    except ImagefixError:
        return
    image = Image("oci:x", "oci", config, [])
    scan_image(image, RuleSelection(), BudgetModel())  # nothing but ImagefixError may come out


@settings(max_examples=300)
@given(st.fixed_dictionaries({}, optional={"manifests": st.lists(descriptors, max_size=3) | json_values,
                                           "config": descriptors | json_values,
                                           "layers": st.lists(descriptors, max_size=3) | json_values})
       | json_values)
def test_manifests_and_indexes_parse_or_refuse(doc):
    for check in (image_manifest, image_index):
        with contextlib.suppress(ImagefixError):
            check(doc, "doc")


@given(st.lists(shaped(["Config", "RepoTags", "Layers"]), max_size=3) | json_values)
def test_docker_archive_manifests_parse_or_refuse(doc):
    with contextlib.suppress(ImagefixError):
        docker_archive_manifest(doc, "manifest.json")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": NaN}', '{"a": Infinity}',
                                  b'{"a": "\xff"}', '{"a": "\\ud800"}'])
def test_hostile_json_text_is_an_input_error(text):
    try:
        value = load_json(text, "doc")
    except ImagefixError as exc:
        assert str(exc).startswith("doc:")
        return
    with pytest.raises(ImagefixError, match="lone surrogate"):
        image_config({"config": {"User": value["a"]}}, "config")


def _layout(tmp_path, mutate_config=None, mutate_index=None):
    root = tmp_path / "img"
    spec = ImageSpec([base_layer(SPARK_PASSWD, SPARK_GROUP)], config={"User": "spark"})
    write_oci_layout(root, {"1": spec})
    index_path = root / "index.json"
    index = json.loads(index_path.read_text())
    if mutate_index:
        mutate_index(index)
        index_path.write_text(json.dumps(index))
    if mutate_config:
        import hashlib

        manifest_path = root / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads(manifest_path.read_text())
        config_path = root / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]
        config = json.loads(config_path.read_text())
        mutate_config(config)
        data = json.dumps(config).encode()
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(data)
        manifest["config"]["digest"] = f"sha256:{digest}"
        manifest["config"]["size"] = len(data)
        mdata = json.dumps(manifest).encode()
        mdigest = hashlib.sha256(mdata).hexdigest()
        (root / "blobs" / "sha256" / mdigest).write_bytes(mdata)
        index["manifests"][0]["digest"] = f"sha256:{mdigest}"
        index["manifests"][0]["size"] = len(mdata)
        index_path.write_text(json.dumps(index))
    return f"oci:{root}:1"


@pytest.mark.parametrize(("mutate_config", "mutate_index", "needle"), [
    (lambda c: c.update(config="x"), None, "config must be an object"),
    (lambda c: c["config"].update(User=5), None, "config.User must be a string"),
    (lambda c: c.update(history=5), None, "history must be an array"),
    (None, lambda i: i.update(manifests="x"), "manifests must be an array"),
    (None, lambda i: i["manifests"][0].update(size="abc"), "size must be a byte count"),
    (None, lambda i: i["manifests"][0].update(annotations=["x"]), "annotations must be an object"),
])
def test_wrong_types_in_a_layout_are_one_line(cli, tmp_path, mutate_config, mutate_index, needle):
    result = cli("scan", _layout(tmp_path, mutate_config, mutate_index))
    assert result.exit_code == 2 and needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr
