"""A `kind: *List` read item by item (each item's text a document of its own: a big List's node tree
took gigabytes) gives what reading it whole gives: the same `k8s check`, `k8s fix` and `k8s fix --diff`
output for every way a List can be written. Where an item's text would not read alone as it reads in
the List, the List is read whole (manifests.list_spans), and the two paths agree trivially."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st
from registries import push_spec, repo_name, spark_like

from kata_imagefix.k8s import manifests
from kata_imagefix.k8s.walk import split_documents
from kata_imagefix.registry.client import RegistryClient

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def image(registry, tmp_path_factory) -> str:
    """A named-user image (`k8s fix` writes its uid and gid into every Kata container that runs it)."""
    repository = repo_name("k8s-lists")
    push_spec(RegistryClient(registry.host), tmp_path_factory.mktemp("lists"), repository, "1",
              spark_like("spark"))
    return f"{registry.host}/{repository}:1"


def pod(name: str, image: str, kata: bool = True) -> dict:
    spec: dict = {"containers": [{"name": "app", "image": image}]}
    if kata:
        spec = {"runtimeClassName": "kata-qemu-tdx", **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


BLOCK = """\
# kubectl get pods -o yaml, hand-edited
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: apps/v1   # the first
  kind: Deployment
  metadata: {name: one}
  spec:
    template:
      spec:
        runtimeClassName: kata-qemu-tdx
        containers:
        - name: app
          image: IMG
- apiVersion: v1
  kind: Pod
  metadata: {name: lost}
  spec: {runtimeClassName: kata-qemu-tdx, containers: [{name: app, image: MISSING}]}
# between the items
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: conf}
  data: {a: "1"}

- apiVersion: v1
  kind: Pod
  metadata:
    name: two
  spec:
    runtimeClassName: kata-qemu-tdx
    securityContext: {}
    containers:
      - name: app
        image: IMG
        securityContext:
          runAsNonRoot: true
      - name: plain
        image: IMG
    # the last line of the item
- apiVersion: v1
  kind: Pod
  metadata: {name: runc}
  spec:
    containers: [{name: app, image: IMG}]
"""

FOUR = """\
apiVersion: v1
kind: PodList
metadata:
  resourceVersion: ""
items:
    -   apiVersion: v1
        kind: Pod
        metadata:
            name: four
        spec:
            runtimeClassName: kata-qemu-tdx
            containers:
                -   name: app
                    image: IMG
    -   apiVersion: v1
        kind: Pod
        metadata: {name: five}
        spec: {runtimeClassName: kata-qemu-tdx, containers: [{name: app, image: IMG}]}
"""

FLOW = """\
{apiVersion: v1, kind: List, items: [
  {apiVersion: v1, kind: Pod, metadata: {name: a},
   spec: {runtimeClassName: kata-qemu-tdx, containers: [{name: app, image: IMG}]}},
  {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {runtimeClassName: kata-qemu-tdx,
     containers: [{name: app, image: IMG, securityContext: {runAsNonRoot: true}}]}}
]}
"""

KIND_LAST = """\
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: late}
  spec:
    runtimeClassName: kata-qemu-tdx
    containers:
    - {name: app, image: IMG}
apiVersion: v1
kind: List
"""

ANCHOR_IN_ITEM = BLOCK.replace("        - name: app\n          image: IMG\n",
                               "        - &app\n          name: app\n          image: IMG\n")
ANCHORS = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: &meta {name: a}
  spec:
    runtimeClassName: kata-qemu-tdx
    containers: [&app {name: app, image: IMG}]
    initContainers: [*app]
- apiVersion: v1
  kind: Pod
  metadata: &meta2 {name: b}
  spec: &spec
    runtimeClassName: kata-qemu-tdx
    containers:
    - name: app
      image: IMG
      securityContext: &sc {runAsNonRoot: true}
    - {name: two, image: IMG, securityContext: *sc}
  extra: *meta2
- apiVersion: v1
  kind: Pod
  metadata: {name: plain}
  spec:
    runtimeClassName: kata-qemu-tdx
    containers: [{name: app, image: IMG}]
"""
LIST_ANCHOR = """\
apiVersion: v1
kind: List
metadata: &meta {name: a}
items:
- apiVersion: v1
  kind: Pod
  metadata: *meta
  spec:
    runtimeClassName: kata-qemu-tdx
    containers: [{name: app, image: IMG}]
"""
ANCHOR_ACROSS = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: &spec
    runtimeClassName: kata-qemu-tdx
    containers:
    - name: app
      image: IMG
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
  spec: *spec
"""
MERGE = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    <<: {runtimeClassName: kata-qemu-tdx}
    containers:
    - name: app
      image: IMG
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
  spec:
    runtimeClassName: kata-qemu-tdx
    containers:
    - name: app
      image: IMG
"""
INLINE_MERGE = "<<: {runtimeClassName: kata-qemu-tdx}"
BAD_MERGE = MERGE.replace(INLINE_MERGE, "<<: 5\n    runtimeClassName: kata-qemu-tdx")
COMPLEX_KEY = MERGE.replace(INLINE_MERGE,
                            "? [a, b]\n    : 1\n    runtimeClassName: kata-qemu-tdx")
TAGGED = MERGE.replace("  metadata: {name: a}", "  metadata: !!map {name: a}")
CUSTOM_TAG = MERGE.replace("  metadata: {name: a}", "  metadata: !Meta {name: a}")
NESTED = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: inner}
    spec:
      runtimeClassName: kata-qemu-tdx
      containers:
      - {name: app, image: IMG}
- apiVersion: v1
  kind: Pod
  metadata: {name: outer}
  spec:
    runtimeClassName: kata-qemu-tdx
    containers:
    - {name: app, image: IMG}
"""
DUPLICATE_IN_ITEM = MERGE.replace(INLINE_MERGE, "runtimeClassName: kata-qemu-tdx").replace(
    "  metadata: {name: b}", "  metadata: {name: b, name: c}")
ONE_PAIR = "{apiVersion: v1, kind: List, items: [kind: Pod, {kind: Pod, metadata: {name: x}, spec: " \
           "{runtimeClassName: kata-qemu-tdx, containers: [{name: app, image: IMG}]}}]}\n"


def _json(indent: int | None) -> str:
    items = [pod("a", "IMG"), pod("lost", "MISSING"), {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "s"}}, pod("b", "IMG"), pod("c", "IMG", kata=False)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                       "items": items}, indent=indent) + "\n"


CASES = {
    "block": (BLOCK, True),
    "block-crlf": (BLOCK.replace("\n", "\r\n"), True),
    "four-spaces": (FOUR, True),
    "flow": (FLOW, True),
    "json": (_json(4), True),
    "json-one-line": (_json(None), True),
    "kind-last": (KIND_LAST, True),
    "in-a-stream": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + BLOCK + "---\n" + _json(2)
                    + "---\n" + FLOW, True),
    "duplicate-in-an-item": (DUPLICATE_IN_ITEM, True),
    "anchor-in-an-item": (ANCHOR_IN_ITEM, True),
    "anchors-in-items": (ANCHORS, True),
    "one-anchor-twice": (ANCHORS.replace("&meta2", "&meta").replace("*meta2", "*meta"), False),
    "alias-of-the-lists-anchor": (LIST_ANCHOR, False),
    "anchor-across-items": (ANCHOR_ACROSS, False),
    "merge-key": (MERGE, False),
    "bad-merge": (BAD_MERGE, False),
    "complex-key": (COMPLEX_KEY, False),
    "tagged": (TAGGED, False),
    "custom-tag": (CUSTOM_TAG, False),
    "nested-list": (NESTED, False),
    "one-pair-item": (ONE_PAIR, False),
}


def _run(cli, monkeypatch, path, whole: bool) -> list[tuple[int, str, str]]:
    monkeypatch.setattr(manifests, "LIST_BY_ITEM", 2**62 if whole else 0)
    out = []
    for args in (("check", "--format", "json"), ("check",), ("fix", "-o", "-"), ("fix", "--diff"),
                 ("fix", "--format", "json", "-o", "-")):
        result = cli("k8s", *args, path)
        out.append((result.exit_code, result.stdout, result.stderr))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_a_list_read_item_by_item_gives_what_it_read_whole_gives(cli, registry, image, tmp_path, monkeypatch,
                                                                  case):
    text, split = CASES[case]
    text = text.replace("IMG", image).replace("MISSING", f"{registry.host}/imagefix-test/absent:1")
    path = tmp_path / ("list.json" if text.startswith("{\"") else "list.yaml")
    path.write_bytes(text.encode())
    lists = [chunk for chunk in split_documents(text) if "List" in chunk]
    assert all((manifests.list_spans(chunk, yaml.CSafeLoader) is not None) == split
               for chunk in lists), case
    item_by_item = _run(cli, monkeypatch, path, whole=False)
    assert item_by_item == _run(cli, monkeypatch, path, whole=True)
    assert all("Traceback" not in err for _, _, err in item_by_item)
    if split:
        assert "runAsUser: 185" in item_by_item[2][1] or '"runAsUser": 185' in item_by_item[2][1]


@pytest.mark.parametrize("whole", [True, False])
def test_a_json_document_after_a_separator_stays_json(cli, image, tmp_path, monkeypatch, whole):
    """The JSON style was chosen by a document's first character: after `---` that is the `-` of the
    separator, and the keys written into a JSON document or List were YAML (`{runAsUser: 185}`)."""
    monkeypatch.setattr(manifests, "LIST_BY_ITEM", 2**62 if whole else 0)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"spec": pod("p", image)["spec"]}}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [pod("a", image), pod("b", image)]}
    path = tmp_path / "stream.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
                    + json.dumps(deployment, indent=2) + "\n--- # the pods\n" + json.dumps(listed, indent=2)
                    + "\n---\n" + json.dumps(listed) + "\n")
    result = cli("k8s", "fix", "-o", "-", path)
    assert result.exit_code == 0, result.stderr
    fixed = [chunk.split("\n", 1)[1] for chunk in split_documents(result.stdout)[1:]]
    written = [json.loads(chunk) for chunk in fixed]  # JSON still, each of them
    identity = {"runAsUser": 185, "runAsGroup": 185}
    assert written[0]["spec"]["template"]["spec"]["containers"][0]["securityContext"] == identity
    assert all(item["spec"]["containers"][0]["securityContext"] == identity
               for doc in written[1:] for item in doc["items"])


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "image", "securityContext", "runAsUser", "containers", "initContainers",
                         "spec", "template", "metadata", "annotations", "kind", "items"]), inner, max_size=4),
    max_leaves=12)
_container = st.fixed_dictionaries({"name": st.text(max_size=4), "image": st.text(min_size=1, max_size=8)},
                                   optional={"securityContext": _values, "resources": _values})
_pod = st.fixed_dictionaries({"kind": st.just("Pod"), "spec": st.fixed_dictionaries(
    {"containers": st.lists(_container, max_size=2)},
    optional={"initContainers": st.lists(_container, max_size=2), "runtimeClassName": st.text(max_size=4)})},
    optional={"metadata": _values})
_items = st.lists(_pod | st.fixed_dictionaries(
    {"kind": st.sampled_from(["Pod", "Deployment", "List", "Service"])},
    optional={"metadata": _values, "spec": _values, "items": _values}), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(_items, st.sampled_from(["block", "flow", "json", "json-lines"]))
def test_random_lists_give_the_same_workloads_and_lines_both_ways(items, style):
    """What `k8s check` reads of a List (workloads, containers, their lines, the problems) is the same
    read item by item as read whole, for Lists of random items written four ways."""
    from kata_imagefix.k8s.manifests import Problem, workloads_in

    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    text = {"block": lambda: yaml.safe_dump(doc),
            "flow": lambda: yaml.safe_dump(doc, default_flow_style=True),
            "json": lambda: json.dumps(doc, indent=2), "json-lines": lambda: json.dumps(doc)}[style]()
    event(f"read item by item: {manifests.list_spans(text, yaml.CSafeLoader) is not None}")

    def read(size: int) -> tuple[list, list[Problem]]:
        original = manifests.LIST_BY_ITEM
        manifests.LIST_BY_ITEM = size
        try:
            problems: list[Problem] = []
            return workloads_in("m.yaml", text, problems), problems
        finally:
            manifests.LIST_BY_ITEM = original

    assert read(0) == read(2**62)
