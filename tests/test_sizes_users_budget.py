import pytest
from hypothesis import given
from hypothesis import strategies as st

from kata_imagefix.errors import ImagefixError
from kata_imagefix.model.budget import BudgetModel
from kata_imagefix.sizes import human_size, parse_size
from kata_imagefix.users import UserKind, UserSpec, resolve_user


@pytest.mark.parametrize(("text", "expected"), [
    ("100MB", 100_000_000), ("1.5GiB", int(1.5 * 2**30)), ("4096", 4096), ("512 MiB", 512 * 2**20),
    ("2g", 2 * 10**9), ("10kb", 10_000), (7, 7),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "1.2.3MB", "-5MB", "10 parsecs", "1e9"])
def test_bad_sizes_name_the_problem(text):
    with pytest.raises(ImagefixError, match="cannot read size"):
        parse_size(text)


def test_human_size_is_decimal_like_docker():
    assert human_size(999) == "999 B"
    assert human_size(150_000_000) == "150.0 MB"
    assert human_size(1_410_000_000) == "1.4 GB"


@pytest.mark.parametrize(("raw", "kind"), [
    ("", UserKind.ROOT), ("0", UserKind.ROOT), ("0:0", UserKind.ROOT), (":", UserKind.ROOT),
    (":0", UserKind.ROOT), ("0:", UserKind.ROOT), ("root", UserKind.NAMED), ("root:root", UserKind.NAMED),
    ("0:root", UserKind.NAMED), ("spark", UserKind.NAMED), ("nobody", UserKind.NAMED),
    ("app:app", UserKind.NAMED), ("185:spark", UserKind.NAMED), ("spark:185", UserKind.NAMED),
    ("spark:", UserKind.NAMED), ("root:1000", UserKind.NAMED), ("185", UserKind.NUMERIC_NO_GROUP),
    ("+185", UserKind.NUMERIC_NO_GROUP), ("185:185", UserKind.NUMERIC), ("0:185", UserKind.NUMERIC),
    (":185", UserKind.NUMERIC), ("185:", UserKind.NUMERIC), ("\uff11\uff18\uff15", UserKind.NAMED),
    ("185:\u00b2", UserKind.NAMED), ("1_85", UserKind.NAMED), ("-1", UserKind.INVALID),
    ("-0", UserKind.ROOT), ("2147483647", UserKind.NUMERIC_NO_GROUP), ("2147483648", UserKind.INVALID),
    ("4294967296", UserKind.INVALID), ("9" * 30, UserKind.INVALID), ("1:2:3", UserKind.INVALID),
])
def test_user_kinds_follow_containerd(raw, kind):
    assert UserSpec.parse(raw).kind is kind


@pytest.mark.parametrize(("raw", "uid", "gid"), [
    (":185", 0, 185), ("185:", 185, 0), ("+185:+7", 185, 7), ("0", 0, None)])
def test_numeric_parts_without_lookup(raw, uid, gid):
    spec = UserSpec.parse(raw)
    assert (spec.uid, spec.gid, spec.names) == (uid, gid, [])


@given(st.text(max_size=40))
def test_any_user_string_parses_to_a_kind(raw):
    spec = UserSpec.parse(raw)
    kind = spec.kind  # never raises
    if kind in (UserKind.ROOT, UserKind.NUMERIC, UserKind.NUMERIC_NO_GROUP):
        assert 0 <= spec.uid <= 2**31 - 1 and spec.names == []
    if kind is UserKind.NAMED:
        assert spec.names and all(":" not in n for n in spec.names)
    resolution = resolve_user(spec, files())
    assert resolution.ok or resolution.problem


PASSWD = b"root:x:0:0::/root:/bin/sh\nspark:x:185:185::/opt/spark:/bin/sh\nweb:x:33:44::/:/bin/sh\n"
GROUP = b"root:x:0:\nspark:x:185:\nstaff:x:50:\n"


def files(passwd=PASSWD, group=GROUP):
    return {"/etc/passwd": passwd, "/etc/group": group}.get


@pytest.mark.parametrize(("raw", "numeric"), [
    ("spark", "185:185"), ("web", "33:44"), ("spark:staff", "185:50"), ("185:staff", "185:50"),
    ("185", "185:185"), ("web:7", "33:7"),
])
def test_resolution_reads_passwd_and_group(raw, numeric):
    resolution = resolve_user(UserSpec.parse(raw), files())
    assert resolution.ok and resolution.numeric == numeric


@pytest.mark.parametrize(("raw", "reader", "problem"), [
    ("ghost", files(), "no user 'ghost'"),
    ("spark", files(passwd=None), "no /etc/passwd"),
    ("spark:ghosts", files(), "no group 'ghosts'"),
    ("spark:staff", files(group=None), "no /etc/group"),
    ("-1", files(), "outside 0..2147483647"),
])
def test_unresolvable_users_say_why(raw, reader, problem):
    resolution = resolve_user(UserSpec.parse(raw), reader)
    assert not resolution.ok and problem in resolution.problem


def test_uid_without_passwd_entry_gets_gid_0_as_containerd_gives_it():
    resolution = resolve_user(UserSpec.parse("4242"), files())
    assert resolution.ok and resolution.numeric == "4242:0" and not resolution.gid_from_passwd


def test_budget_mysql_size_trips_the_60s_default_and_recommends_120():
    estimate = BudgetModel().estimate(600 * 10**6)
    assert estimate.pull_seconds == pytest.approx(65)
    assert not estimate.fits_create_timeout
    assert estimate.recommended_timeout_seconds == 120
    assert estimate.fits_kubelet_timeout
    assert estimate.fits_memory


def test_budget_memory_room_and_recommendation():
    model = BudgetModel()
    assert model.estimate(0).room_bytes == 1024 * 2**20
    big = model.estimate(1500 * 2**20)
    assert not big.fits_memory
    assert big.recommended_memory_mib == 3072  # 1500 MiB / 0.5 = 3000 -> next 256 MiB step
    small_guest = BudgetModel(guest_memory_mib=1024, memory_reserve_mib=768)
    assert small_guest.estimate(0).room_bytes == 256 * 2**20  # the reserve binds before the tmpfs


def test_budget_constants_are_settable():
    fast = BudgetModel(pull_rate_mb_s=50, safety_factor=1.0, overhead_s=0)
    assert fast.estimate(600 * 10**6).fits_create_timeout
    assert BudgetModel(create_timeout_s=120).estimate(600 * 10**6).fits_create_timeout
