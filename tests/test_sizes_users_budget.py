import pytest

from kata_imagefix.budget import BudgetModel
from kata_imagefix.errors import ImagefixError
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
    ("", UserKind.ROOT), ("root", UserKind.ROOT), ("0", UserKind.ROOT), ("0:0", UserKind.ROOT),
    ("root:root", UserKind.ROOT), ("spark", UserKind.NAMED), ("nobody", UserKind.NAMED),
    ("app:app", UserKind.NAMED), ("185:spark", UserKind.NAMED), ("spark:185", UserKind.NAMED),
    ("root:1000", UserKind.NAMED), ("185", UserKind.NUMERIC_NO_GROUP), ("185:185", UserKind.NUMERIC),
    ("0:185", UserKind.NUMERIC),
])
def test_user_kinds(raw, kind):
    assert UserSpec.parse(raw).kind is kind


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
    ("4242", files(), "uid 4242 has no entry"),
])
def test_unresolvable_users_say_why(raw, reader, problem):
    resolution = resolve_user(UserSpec.parse(raw), reader)
    assert not resolution.ok and problem in resolution.problem


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
