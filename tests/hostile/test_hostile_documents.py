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
from kata_imagefix.model.budget import BudgetModel
from kata_imagefix.rules import catalogue
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


# --- Kata TOML and Kubernetes documents: random values in the real field names ----------------------

toml_values = st.one_of(st.integers(-2**70, 2**70), st.booleans(), st.floats(allow_nan=False),
                        st.text(alphabet="abc xyz-_", max_size=6).map(lambda t: f'"{t}"'),
                        st.lists(st.integers(0, 9), max_size=3).map(lambda v: str(v)))
TOML_TABLES = ["runtime", "factory", "agent.kata", "hypervisor.qemu", "hypervisor.qemu.factory", "image"]
TOML_KEYS = ["create_container_timeout", "default_memory", "enable_annotations", "name", "dial_timeout_ms",
             "other"]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(TOML_TABLES),
                          st.lists(st.tuples(st.sampled_from(TOML_KEYS), toml_values), max_size=4)),
                max_size=5))
def test_kata_toml_with_random_values_checks_or_refuses(tables):
    from kata_imagefix.kata.config import KataConfig, detect_runtime
    from kata_imagefix.kata.toml_lines import parse_toml
    from kata_imagefix.rules.kata_subject import KataSubject

    text = "".join(f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in keys)
                   for name, keys in tables)
    main = parse_toml(text, "c.toml")
    config = KataConfig(main, [], *detect_runtime(main))
    try:
        subject = KataSubject(config, [("img", BudgetModel().estimate(10**9))])
        rules = catalogue()
        for rule in ("KIF301", "KIF302", "KIF303", "KIF304"):
            list(rules[rule].check(subject))
    except ImagefixError:
        pass


k8s_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "image", "securityContext", "runAsUser", "runAsGroup", "runAsNonRoot",
                         "containers", "initContainers", "spec", "template", "metadata", "annotations",
                         "resources", "limits", "memory", "runtimeClassName"]), inner, max_size=4),
    max_leaves=15)


KINDS = ["Pod", "Deployment", "CronJob", "List", "PodTemplate"]


@settings(max_examples=200)
@given(st.fixed_dictionaries({"kind": st.sampled_from(KINDS)},
                             optional={"metadata": k8s_values, "spec": k8s_values, "template": k8s_values,
                                       "items": st.lists(k8s_values, max_size=2)}))
def test_kubernetes_documents_with_random_shapes_audit_or_refuse(doc):
    import yaml

    from kata_imagefix.k8s.audit import AuditOptions, pod_subject
    from kata_imagefix.k8s.manifests import workloads_in
    from kata_imagefix.rules.pod_subject import ContainerView

    try:
        found = workloads_in("m.yaml", yaml.safe_dump(doc))
        for workload in found:
            views = [ContainerView(c, workload.security, None, "not read") for c in workload.containers]
            subject = pod_subject(workload, views, BudgetModel(), AuditOptions(all_pods=True))
            for rule in catalogue().values():
                if rule.target == "pod":
                    list(rule.check(subject))
    except ImagefixError:
        pass


# containerd decodes the config with Go's encoding/json: keys match struct fields exactly, else
# case-insensitively (with simple Unicode folding), applied in document order, the last one winning
@pytest.mark.parametrize(("config", "runs_as_spark"), [
    ('"config": {"user": "spark"}', True),
    ('"Config": {"User": "spark"}', True),
    ('"CONFIG": {"USER": "spark"}', True),
    ('"config": {"u\u017fer": "spark"}', True),  # LATIN SMALL LETTER LONG S folds onto s
    ('"config": {"user": "root", "User": "spark"}', True),
    ('"config": {"User": "spark", "user": ""}', False),  # the last one wins, even over the exact name
    ('"config": {"User": "spark", "USER": null}', True),  # null leaves a string as it was
    ('"config": {"User": "spark"}, "config": {"Env": ["A=1"]}', True),  # a second object merges
    ('"config": {"User": "spark"}, "Config": {"Labels": {"a": "b"}}', True),
    ('"config": {"Us\u00e9r": "spark"}', False),  # not a case variant: no field
    ('"config": {"User_": "spark"}', False),
])
def test_config_keys_in_another_case_are_read_as_containerd_reads_them(cli, tmp_path, config, runs_as_spark):
    import tarfile

    from child import layout_around

    def write_tar(out) -> None:
        for name, body in (("etc/passwd", SPARK_PASSWD.encode()), ("etc/group", SPARK_GROUP.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            out.write(info.tobuf(tarfile.USTAR_FORMAT) + body + bytes(-len(body) % 512))
        out.write(bytes(1024))

    def raw(diff_id: str) -> bytes:
        rootfs = json.dumps({"type": "layers", "diff_ids": [diff_id]})
        return ('{"architecture": "amd64", "os": "linux", ' + config + ', "rootfs": ' + rootfs + "}").encode()

    result = cli("scan", "--format", "json", layout_around(tmp_path / "img", write_tar, raw_config=raw))
    assert result.exit_code == (1 if runs_as_spark else 0), result.stderr  # root in a Kata guest: a note
    assert ('"USER 185:185' in result.stdout) == runs_as_spark, result.stdout


# Scalars PyYAML's own constructors take apart (dates), or that a tag makes them try to: Kubernetes
# reads a manifest as JSON (no dates there), so a date-like value is the text it is written as.
@pytest.mark.parametrize("value", ["2001-13-45", "2001-02-30", "2001-12-14t21:59:43.10-05:00", "2001-12-14",
                                   "!!timestamp 2001-13-45", "!!binary '=='", "!!int 0x", "!!float abc",
                                   "!!python/object:os.system x"])
def test_manifest_scalars_a_yaml_constructor_refuses_are_never_an_internal_error(cli, tmp_path, value):
    manifest = tmp_path / "m.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  annotations:\n"
                        f"    built: {value}\nspec:\n  runtimeClassName: kata-qemu-tdx\n"
                        "  securityContext: {runAsUser: 185, runAsGroup: 185}\n  containers:\n"
                        "  - name: app\n    image: oci:/nonexistent/layout\n")
    for args in (["k8s", "check", manifest], ["k8s", "fix", "--check", manifest]):
        result = cli(*args)
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, value
        assert result.exit_code in (0, 1, 2), (value, result)
        if value.startswith("2001"):  # a date-like plain scalar is text: the document is read
            assert "not valid YAML" not in result.stdout + result.stderr, (value, result)
