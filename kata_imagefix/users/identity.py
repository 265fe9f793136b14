"""The identity a Kubernetes container's process really gets: kubelet, then containerd, then genpolicy.

A pod never hands containerd the image's own `USER` string (docs/users.md):

1. The kubelet merges the pod's and the container's securityContext (the
   container wins) and, without `runAsUser`, asks containerd's image service
   for the image's user - which reports only the part before the first `:`
   (a number as a uid, anything else as a name; nothing means uid 0). The
   image's group never travels on. `runAsGroup` comes from the spec only;
   `fsGroup` and `supplementalGroups` (pod level) are sent as extra groups.
2. containerd turns that into `uid[:gid]`: a lone uid takes its primary group
   from the image's `/etc/passwd`, a name is looked up there, and every group
   of `/etc/group` that lists the user is added (unless the pod's
   `supplementalGroupsPolicy` is `Strict`). Under guest pull those files are
   not on the host: a name fails, a lone uid gets gid 0, the groups are lost.
3. Kata's policy generator computes the ids from the image's files and, under
   guest pull, refuses a pod unless every id it would derive from them is
   written in the pod: a non-zero uid, a non-zero gid, every supplementary group.

`resolve_identity` runs one container through all three and returns what each
step gives, what the image means, and the explicit securityContext that makes
them agree. Every command that judges or writes a pod uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import (
    MAX_ID,
    WHY_EXPLICIT,
    UserSpec,
    containerd_file_id,
    find_entry,
    id_field,
    primary_gid,
    resolve_user,
)
from .memo import per_image

ReadFile = Callable[[str], bytes | None]
_GO_PARSE_INT = re.compile(r"[+-]?[0-9]+\Z")  # strconv.ParseInt(s, 10, 64): ASCII digits, one sign


@dataclass(frozen=True)
class Ids:
    """A process identity: uid, primary gid and the supplementary groups (the primary gid not among them)."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    def show(self) -> str:
        extra = f" groups {','.join(map(str, sorted(self.groups)))}" if self.groups else ""
        return f"{self.uid}:{self.gid}{extra}"


@dataclass(frozen=True)
class Outcome:
    """What containerd makes of a container: the ids, or why creating it fails."""

    ids: Ids | None
    failure: str | None = None


def _int_field(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Security:
    """The securityContext fields that decide the identity, merged as the kubelet merges them."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    supplemental_groups: tuple[int, ...] = ()
    fs_group: int | None = None
    strict_groups: bool = False  # supplementalGroupsPolicy: Strict (the image's /etc/group is not read)

    @classmethod
    def of(cls, container: dict[str, Any] | None, pod: dict[str, Any] | None) -> Security:
        container, pod = container or {}, pod or {}

        def pick(key: str) -> Any:  # the container's value, else the pod's
            return container[key] if container.get(key) is not None else pod.get(key)

        listed = pod.get("supplementalGroups")
        listed = listed if isinstance(listed, list) else []
        supplemental = tuple(g for g in listed if _int_field(g) is not None)
        return cls(_int_field(pick("runAsUser")), _int_field(pick("runAsGroup")),
                   pick("runAsNonRoot") is True, supplemental, _int_field(pod.get("fsGroup")),
                   pod.get("supplementalGroupsPolicy") == "Strict")

    @property
    def pod_groups(self) -> frozenset[int]:
        """The groups the kubelet sends whatever the image says: fsGroup and supplementalGroups."""
        extra = set(self.supplemental_groups)
        if self.fs_group is not None:
            extra.add(self.fs_group)
        return frozenset(extra)


@dataclass(frozen=True)
class KubeletUser:
    """What the kubelet sends containerd for the user: a uid or a name, and a group only from the spec."""

    uid: int | None
    name: str | None
    gid: int | None
    from_image: bool  # the user came from the image (no runAsUser)

    @property
    def user_string(self) -> str:
        """containerd's GenerateUserString: user[:group]."""
        user = self.name if self.name is not None else str(self.uid)
        return user if self.gid is None else f"{user}:{self.gid}"


def image_user_as_reported(image_user: str) -> tuple[int | None, str | None]:
    """containerd's CRI image status: the USER's part before the first ':', as a uid when Go's ParseInt
    takes it, else as a name; (None, None) for none - which the kubelet then treats as uid 0."""
    part = image_user.split(":", 1)[0]
    if part == "":
        return None, None
    if _GO_PARSE_INT.match(part) and -(2**63) <= int(part) < 2**63:
        return int(part), None
    return None, part


def kubelet_user(security: Security, image_user: str) -> KubeletUser:
    if security.run_as_user is not None:
        return KubeletUser(security.run_as_user, None, security.run_as_group, False)
    uid, name = image_user_as_reported(image_user)
    if name is not None:
        return KubeletUser(None, name, security.run_as_group, True)
    return KubeletUser(uid if uid is not None else 0, None, security.run_as_group, True)


def kubelet_refusal(security: Security, sent: KubeletUser) -> str | None:
    """The kubelet's runAsNonRoot check (verifyRunAsNonRoot), or None when it lets the container start."""
    if not security.run_as_non_root:
        return None
    if not sent.from_image:
        return "runAsUser 0 breaks the non-root policy" if sent.uid == 0 else None
    if sent.name is not None:
        return (f"the image has the non-numeric user {sent.name!r}: the kubelet cannot verify it is "
                "non-root")
    return "the image will run as root (uid 0)" if sent.uid == 0 else None


def _groups_of(group_file: bytes | None, user_name: str | None, primary: int, *,
               strip: bool = True) -> frozenset[int]:
    """The gids of /etc/group lines (other than the user's own-name group) whose member list has the user:
    containerd's WithAdditionalGIDs (the primary gid is not a supplementary group here). `strip`: members
    trimmed of blanks as moby's parser does (genpolicy compares them as written)."""
    if group_file is None or not user_name:
        return frozenset()
    name = user_name.encode("utf-8", "surrogateescape")
    found = set()
    for match in re.finditer(rb"^([^:\n]*):[^:\n]*:([0-9]+):([^\n]*)$", group_file, re.M):
        group_name, members = match.group(1), match.group(3).rstrip(b"\r").split(b",")
        if strip:
            group_name, members = group_name.strip(), [m.strip() for m in members]
        if group_name != name and name in members:
            gid = int(match.group(2))
            if gid <= MAX_ID and gid != primary:
                found.add(gid)
    return frozenset(found)


def _user_name(passwd: bytes | None, uid: int) -> str | None:
    fields = find_entry(passwd, id_value=uid)
    return fields[0] if fields else None


def containerd(sent: KubeletUser, security: Security, read_file: ReadFile | None) -> Outcome:
    """What containerd's CRI plugin makes of the kubelet's user: `read_file` reads the image's files as the
    host has them (None under guest pull: nothing is unpacked on the host)."""
    passwd = read_file("/etc/passwd") if read_file else None
    groups_file = read_file("/etc/group") if read_file else None
    if sent.name is not None:
        fields = find_entry(passwd, name=sent.name) if passwd is not None else None
        if fields is None or len(fields) < 4:
            where = "the host has no /etc/passwd of the image (guest pull)" if read_file is None else (
                "the image has no /etc/passwd" if passwd is None else
                f"no user {sent.name!r} in the image's /etc/passwd")
            return Outcome(None, f"containerd must look up the name {sent.name!r}, but {where}")
        uid = containerd_file_id(fields[2])  # unchecked: 4294967296 runs as root
        gid = sent.gid if sent.gid is not None else containerd_file_id(fields[3])
        name: str | None = sent.name
    else:
        assert sent.uid is not None
        uid = sent.uid
        if not 0 <= uid <= MAX_ID:
            return Outcome(None, f"uid {uid} is outside 0..{MAX_ID}: containerd refuses it")
        if sent.gid is not None:
            gid = sent.gid
        else:  # WithUserID: the gid field of the uid's line, unchecked; no line means gid 0
            fields = find_entry(passwd, id_value=uid)
            gid = containerd_file_id(fields[3]) if fields and len(fields) >= 4 else 0
        name = _user_name(passwd, uid)
    assert uid is not None
    if sent.gid is not None and not 0 <= sent.gid <= MAX_ID:
        return Outcome(None, f"gid {sent.gid} is outside 0..{MAX_ID}: containerd refuses it")
    image_groups = frozenset() if security.strict_groups else _groups_of(groups_file, name, gid)
    return Outcome(Ids(uid, gid, (image_groups | security.pod_groups) - {gid}))


def image_meaning(image_user: str, read_file: ReadFile) -> Outcome:
    """The identity the image means: its USER read as containerd's WithUser reads it with the files there
    (what `docker run` and a host-pull `ctr run` give), with the groups /etc/group lists the user in."""

    spec = UserSpec.parse(image_user)
    resolution = resolve_user(spec, read_file)
    if not resolution.ok:
        return Outcome(None, resolution.problem)
    assert resolution.uid is not None and resolution.gid is not None
    passwd = read_file("/etc/passwd")
    name = spec.user_name or _user_name(passwd, resolution.uid)
    return Outcome(Ids(resolution.uid, resolution.gid,
                       _groups_of(read_file("/etc/group"), name, resolution.gid)))


# --- Kata's genpolicy ---------------------------------------------------------------------------------

# A line genpolicy cannot parse (a negative lookahead per line: no backtracking state kept across lines)
_POLICY_PASSWD_BAD = re.compile(
    rb"^(?![^:\n]*:[^:\n]*:[0-9]+:[0-9]+:[^:\n]*:[^:\n]*:[^:\n\r]*\r?$)", re.M)
_POLICY_GROUP_BAD = re.compile(rb"^(?![^:\n]*:[^:\n]*:[0-9]+:[^:\n\r]*\r?$)", re.M)


class _PolicyFiles:
    """/etc/passwd and /etc/group as genpolicy parses them (registry.rs parse_passwd_file,
    parse_group_file): every line must have exactly 7 (passwd) or 4 (group) fields with numeric ids - one
    line that does not (a blank line, a comment) makes every lookup in that file fail. An empty or missing
    file is no file. Checked and searched with regexes: no table is built (a million-line passwd)."""

    def __init__(self, read_file: ReadFile) -> None:
        self.passwd = self._valid(read_file("/etc/passwd"), _POLICY_PASSWD_BAD)
        self.group = self._valid(read_file("/etc/group"), _POLICY_GROUP_BAD)

    @staticmethod
    def _valid(data: bytes | None, bad: re.Pattern[bytes]) -> bytes | None:
        if not data:
            return None
        end = len(data) - 1 if data.endswith(b"\n") else len(data)  # Rust's lines(): no last empty line
        return None if bad.search(data, 0, end) else data

    def gid_of_uid(self, uid: int) -> int | None:
        return primary_gid(self.passwd, uid) if self.passwd is not None else None

    def uid_of_name(self, name: str) -> int | None:
        fields = find_entry(self.passwd, name=name) if self.passwd is not None else None
        return id_field(fields[2]) if fields else None

    def groups_of_uid(self, uid: int) -> set[int]:
        if self.passwd is None or self.group is None:
            return set()
        return set(_groups_of(self.group, _user_name(self.passwd, uid), primary=-1, strip=False))


def _policy_uid(part: str, files: _PolicyFiles) -> int:
    """genpolicy's parse_user_string: '' is 0, a u32 is itself, a name its passwd uid - or 0 (a warning)."""
    if part == "":
        return 0
    if re.fullmatch(r"\+?[0-9]+", part) and int(part) < 2**32:
        return int(part)
    found = files.uid_of_name(part)
    return found if found is not None else 0


@dataclass(frozen=True)
class PolicyVerdict:
    """What genpolicy computes for the container (UID, GID, AdditionalGids with the GID in them) and what it
    demands before it writes a policy under guest pull."""

    uid: int
    gid: int
    additional: frozenset[int]
    missing_uid: bool
    missing_gid: bool
    missing_groups: tuple[int, ...]

    @property
    def refuses(self) -> bool:
        return self.missing_uid or self.missing_gid or bool(self.missing_groups)

    def demands(self) -> str:
        parts = []
        if self.missing_uid or self.missing_gid:
            parts += [f"runAsUser: {self.uid}"] if self.uid else []
            parts += [f"runAsGroup: {self.gid}"] if self.gid else []
        if self.missing_groups:
            parts.append(f"supplementalGroups: [{', '.join(map(str, self.missing_groups))}]")
        return ", ".join(parts)


def genpolicy(image_user: str, read_file: ReadFile, container: dict[str, Any] | None,
              pod: dict[str, Any] | None) -> PolicyVerdict:
    """Kata's genpolicy for one workload container (get_container_process and
    exit_if_guest_pull_needs_security_context, src/tools/genpolicy/src/policy.rs; docs/users.md)."""
    files = _PolicyFiles(read_file)
    container, pod = container or {}, pod or {}
    uid = gid = 0
    additional: set[int] = set()
    if image_user:
        parts = image_user.split(":")
        if len(parts) <= 2:
            uid = _policy_uid(parts[0], files)  # a workload's group part is dropped, as by the kubelet
        found = files.gid_of_uid(uid)
        if found is not None:
            gid = found
            additional.add(gid)
    additional.add(gid)
    must_check_passwd = False
    if _int_field(pod.get("runAsUser")) is not None:
        uid, must_check_passwd = pod["runAsUser"], True
    if _int_field(pod.get("runAsGroup")) is not None:
        gid, additional, must_check_passwd = pod["runAsGroup"], {pod["runAsGroup"]}, False
    if must_check_passwd:
        found = files.gid_of_uid(uid)
        gid = found if found is not None else 0
        additional = {gid}
    explicit = Security.of({}, pod).pod_groups
    additional |= explicit
    if _int_field(container.get("runAsUser")) is not None:
        uid = container["runAsUser"]
        found = files.gid_of_uid(uid)
        gid = found if found is not None else gid  # keeps the GID so far, unlike containerd (gid 0)
        additional.add(gid)
    if _int_field(container.get("runAsGroup")) is not None:
        gid = container["runAsGroup"]
        additional.add(gid)
    additional |= files.groups_of_uid(uid)
    security = Security.of(container, pod)
    missing_uid = uid != 0 and security.run_as_user != uid
    missing_gid = gid != 0 and security.run_as_group != gid
    missing = tuple(sorted(g for g in additional if g != gid and g not in explicit))
    return PolicyVerdict(uid, gid, frozenset(additional), missing_uid, missing_gid, missing)


# --- one container through the whole chain --------------------------------------------------------------

@dataclass(frozen=True)
class ContainerIdentity:
    """One container through the kubelet, containerd (guest and host pull) and genpolicy."""

    security: Security
    sent: KubeletUser
    refusal: str | None  # the kubelet's runAsNonRoot refusal
    guest: Outcome  # containerd under guest pull: the host has none of the image's files
    host: Outcome  # containerd with the image unpacked on the host
    target: Outcome  # the pod's explicit values, the rest as the image means them
    policy: PolicyVerdict

    def actual(self, guest_pull: bool) -> Outcome:
        return self.guest if guest_pull else self.host

    @property
    def policy_denies(self) -> bool:
        """The agent policy compares uid, gid and the whole group set with what containerd sends: a
        difference denies CreateContainer even when genpolicy wrote the policy."""
        ids = self.guest.ids
        if ids is None:
            return False
        return (self.policy.uid, self.policy.gid, self.policy.additional) != (ids.uid, ids.gid,
                                                                               ids.groups | {ids.gid})


@per_image
def resolve_identity(image_user: str, read_file: ReadFile, container: dict[str, Any] | None,
                     pod: dict[str, Any] | None) -> ContainerIdentity:
    security = Security.of(container, pod)
    sent = kubelet_user(security, image_user)
    guest = containerd(sent, security, None)
    host = containerd(sent, security, read_file)
    target = host
    if host.ids is not None and security.run_as_user is None and security.run_as_group is None:
        meant = image_meaning(image_user, read_file)
        if meant.ids is None:  # e.g. a passwd gid past 31 bits: the 185:0 containerd makes of it is no fix
            target = meant
        elif meant.ids.gid != host.ids.gid:
            target = Outcome(Ids(host.ids.uid, meant.ids.gid, host.ids.groups - {meant.ids.gid}))
    return ContainerIdentity(security, sent, kubelet_refusal(security, sent), guest, host, target,
                             genpolicy(image_user, read_file, container, pod))


@dataclass
class ExplicitIdentity:
    """The securityContext values that make the kubelet, containerd under guest pull and genpolicy agree on
    the target identity: for the container (or, for a pod of one container where that avoids genpolicy's
    leftovers, for the pod), and the groups for the pod's supplementalGroups."""

    container: dict[str, int] = field(default_factory=dict)
    pod: dict[str, int] = field(default_factory=dict)
    pod_groups: tuple[int, ...] = ()
    extra_groups: tuple[int, ...] = ()  # groups genpolicy demands that the image does not mean
    left: str | None = None  # why it cannot be made right (never invented)

    def __bool__(self) -> bool:
        return bool(self.container or self.pod or self.pod_groups)

    def describe(self, container: str | None = None) -> str:
        """The values as a sentence: `set runAsUser: 185, runAsGroup: 185 in the securityContext of container
        'c' and add supplementalGroups: [2000] to the pod's securityContext`."""
        def shown(values: dict[str, int]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in values.items())

        where = f"of container {container!r}" if container else "of the container"
        parts = [f"set {shown(self.container)} in the securityContext {where}"] if self.container else []
        parts += [f"set {shown(self.pod)} in the pod's securityContext"] if self.pod else []
        if self.pod_groups:
            parts.append(f"add supplementalGroups: [{', '.join(map(str, self.pod_groups))}] to the pod's "
                         "securityContext")
        return " and ".join(parts)


def pod_settings(image_user: str, read_file: ReadFile) -> str | None:
    """What a Kubernetes pod running this image under guest pull must set beside the image's own USER, as a
    sentence; None when nothing (root with no groups) or when the ids cannot be found."""
    explicit = explicit_identity(image_user, read_file, {}, {})
    if explicit.left is not None or not explicit:
        return None
    return f"on Kubernetes under guest pull the pod must also {explicit.describe()} ({WHY_EXPLICIT})"


@per_image
def explicit_identity(image_user: str, read_file: ReadFile, container: dict[str, Any] | None,
                      pod: dict[str, Any] | None, *, sole: bool = False) -> ExplicitIdentity:
    """The values to add so the process really runs as the target identity under guest pull and genpolicy
    accepts it. Values the manifest sets are never changed.

    Where each value goes matters to genpolicy (policy.rs, pod.rs): a container-level runAsUser makes it
    read the gid from passwd again, and container-level ids do not clear the groups it derived before
    (the image's primary gid stays and must then be listed in supplementalGroups), while a pod-level
    runAsGroup does. So the placements are tried - container level; for `sole` (the pod's only container)
    also the pod's securityContext - each run through the kubelet, containerd under guest pull and
    genpolicy, and the one they all agree on with the fewest groups the image does not mean is kept."""
    container, pod = dict(container or {}), dict(pod or {})
    identity = resolve_identity(image_user, read_file, container, pod)
    target = identity.target.ids
    if target is None:
        return ExplicitIdentity(left=identity.target.failure)
    security = identity.security
    need_user = security.run_as_user is None and (target.uid != 0 or identity.sent.name is not None)
    user_levels = [None] if not need_user else ["container"] + (["pod"] if sole else [])
    group_levels: list[str | None] = [None]
    if "runAsGroup" not in container:
        group_levels.append("container")
        if sole and security.run_as_group is None:
            group_levels.append("pod")
    best: tuple[tuple[int, ...], ExplicitIdentity] | None = None
    for user_level in user_levels:
        for group_level in group_levels:
            candidate = _candidate(image_user, read_file, container, pod, target, user_level, group_level,
                                   identity.refusal is not None)
            if candidate is None:
                continue
            split = bool(candidate.container) and bool(candidate.pod)  # both levels: harder to read
            score = (len(candidate.extra_groups), len(candidate.container) + len(candidate.pod), split,
                     len(candidate.pod))
            if best is None or score < best[0]:
                best = (score, candidate)
    if best is None:
        return ExplicitIdentity(left=f"no securityContext makes containerd and genpolicy agree on "
                                     f"{target.show()}")
    return best[1]


def _candidate(image_user: str, read_file: ReadFile, container: dict[str, Any], pod: dict[str, Any],
               target: Ids, user_level: str | None, group_level: str | None,
               refused_before: bool) -> ExplicitIdentity | None:
    """runAsUser / runAsGroup at these levels plus the groups genpolicy then demands - or None when the
    chain would still disagree, run as another identity than the target, or be refused by the kubelet for
    what was written (a refusal the manifest causes itself stays; the rest is still put right)."""
    values: dict[str, dict[str, int]] = {"container": {}, "pod": {}}
    if user_level is not None:
        values[user_level]["runAsUser"] = target.uid
    if group_level is not None:
        values[group_level]["runAsGroup"] = target.gid
    trial_container, trial_pod = {**container, **values["container"]}, {**pod, **values["pod"]}
    verdict = genpolicy(image_user, read_file, trial_container, trial_pod)
    have = Security.of(trial_container, trial_pod).pod_groups
    wanted = (set(target.groups) | set(verdict.missing_groups)) - have - {target.gid}
    if wanted:
        listed = list(trial_pod.get("supplementalGroups") or [])
        trial_pod = {**trial_pod, "supplementalGroups": listed + sorted(wanted)}
    check = resolve_identity(image_user, read_file, trial_container, trial_pod)
    ids = check.guest.ids
    if ids is None or check.policy.refuses or check.policy_denies or (check.refusal and not refused_before):
        return None
    if (ids.uid, ids.gid) != (target.uid, target.gid) or not target.groups <= ids.groups:
        return None
    return ExplicitIdentity(values["container"], values["pod"], tuple(sorted(wanted)),
                            tuple(sorted(wanted - target.groups)))
