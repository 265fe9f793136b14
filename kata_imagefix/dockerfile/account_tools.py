"""Replay a stage's account steps the way the tools themselves give ids (docs/dockerfile-accounts.md).

- shadow's useradd/usermod/groupadd/groupmod (shadow-maint/shadow src/*.c,
  libmisc/find_new_gid.c in 4.13, lib/ since): `useradd` without `-g` makes a same-name group when
  `-U` is given or /etc/login.defs says `USERGROUPS_ENAB yes`; its gid is the
  uid when that gid is free and in range (1..SYS_GID_MAX with `-r`,
  GID_MIN..GID_MAX without), else a picked one. With `-N` (or no user
  groups) the gid is GROUP from /etc/default/useradd.
- busybox adduser (loginutils/adduser.c): `-u N` without `-G` gives gid N
  (or the build fails); `-S` without `-G` puts the user in `nogroup`;
  `-g` is the GECOS, not a group.
- Debian's adduser (3.134): `--system` without `--group`/`--ingroup`/`--gid`
  gives `nogroup` (65534); with `--uid N` a user group gets gid N.
- RHEL, UBI, Fedora: `adduser` is a link to useradd.

An id the tool picks at build time stays None, with the reason: imagefix
never guesses one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import getopt
from .account_files import UNKNOWN, Account, Files, Group, _Unknown
from .accounts import Command, CopyFrom, GroupLine, PasswdLine, Step

_USERADD = getopt.Spec("b:c:d:De:f:g:G:hk:K:lmMNop:rR:P:s:u:UZ:F", {
    "base-dir=": "b", "comment=": "c", "home-dir=": "d", "defaults": "D", "expiredate=": "e",
    "inactive=": "f", "gid=": "g", "groups=": "G", "help": "h", "skel=": "k", "key=": "K",
    "no-log-init": "l", "create-home": "m", "no-create-home": "M", "no-user-group": "N",
    "non-unique": "o", "password=": "p", "system": "r", "root=": "R", "prefix=": "P", "shell=": "s",
    "uid=": "u", "user-group": "U", "selinux-user=": "Z", "badname": "badname",
    "btrfs-subvolume-home": "btrfs", "extrausers": "extrausers", "add-subids-for-system": "F"})
_USERMOD = getopt.Spec("abc:d:e:f:g:G:hl:Lmop:P:R:rs:u:Uv:w:V:W:Z:", {
    "append": "a", "badname": "b", "comment=": "c", "home=": "d", "expiredate=": "e", "inactive=": "f",
    "gid=": "g", "groups=": "G", "help": "h", "login=": "l", "lock": "L", "move-home": "m",
    "non-unique": "o", "password=": "p", "prefix=": "P", "root=": "R", "remove": "r", "shell=": "s",
    "uid=": "u", "unlock": "U", "add-subuids=": "v", "del-subuids=": "V", "add-subgids=": "w",
    "del-subgids=": "W", "selinux-user=": "Z"})
_GROUPADD = getopt.Spec("fg:hK:op:rR:P:U:", {
    "force": "f", "gid=": "g", "help": "h", "key=": "K", "non-unique": "o", "password=": "p",
    "system": "r", "root=": "R", "prefix=": "P", "users=": "U"})
_GROUPMOD = getopt.Spec("ag:hn:op:R:P:U:", {
    "append": "a", "gid=": "g", "help": "h", "new-name=": "n", "non-unique": "o", "password=": "p",
    "root=": "R", "prefix=": "P", "users=": "U"})
_DELETE = getopt.Spec("fhrR:P:Z", {"force": "f", "help": "h", "remove": "r", "root=": "R", "prefix=": "P"})
_BUSYBOX_ADDUSER = getopt.Spec("h:g:s:G:DSHu:k:", {
    "home=": "h", "gecos=": "g", "shell=": "s", "ingroup=": "G", "disabled-password": "D",
    "empty-password": "D", "system": "S", "no-create-home": "H", "uid=": "u", "skel=": "k"})
_BUSYBOX_ADDGROUP = getopt.Spec("g:S", {"gid=": "g", "system": "S"})
_DEBIAN_ADDUSER = getopt.Spec("", {
    "add-extra-groups": "x", "add_extra_groups": "x", "allow-all-names": "n", "allow-badname": "n",
    "allow-bad-names": "n", "comment=": "comment", "conf=": "conf", "c=": "conf", "debug": "debug",
    "disabled-login": "dl", "disabled-password": "dp", "firstgid=": "fg", "firstuid=": "fu",
    "force-badname": "n", "gecos=": "comment", "gid=": "gid", "group": "group", "help": "help",
    "h": "help", "home=": "home", "ingroup=": "ingroup", "lastgid=": "lg", "lastuid=": "lu",
    "no-create-home": "nch", "quiet": "q", "q": "q", "shell=": "shell", "system": "system",
    "uid=": "uid", "verbose": "verbose", "version": "version", "v": "version",
    "encrypt-home": "eh", "extrausers": "eu"}, perl=True)

# Letters only busybox's adduser has, and only shadow's useradd has (for a base of unknown family).
_BUSYBOX_LETTERS, _SHADOW_LETTERS = set("DSHGk"), set("rmMNUocdefKlpZ")


def _number(text: str | bool | None) -> int | None:
    return int(text) if isinstance(text, str) and text.isascii() and text.isdigit() else None


@dataclass
class Table(Files):
    """The accounts after the stage's steps, over the files it started from."""

    below: Files = field(default_factory=lambda: Files("the base image"))
    family_hint: str | None = None
    users: dict[str, Account | None] = field(default_factory=dict)  # None: deleted
    groups: dict[str, Group | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.what = self.below.what
        self.known = self.below.known

    # Files, for a later stage that copies these files
    def user(self, name: str) -> Account | _Unknown | None:
        return self.users[name] if name in self.users else self.below.user(name)

    def user_by_uid(self, uid: int) -> Account | _Unknown | None:
        own = next((a for a in self.users.values() if a is not None and a.uid == uid), None)
        return own if own is not None else self.below.user_by_uid(uid)

    def group(self, name: str) -> Group | _Unknown | None:
        return self.groups[name] if name in self.groups else self.below.group(name)

    def gid_used(self, gid: int) -> bool | _Unknown:
        if any(g is not None and g.gid == gid for g in self.groups.values()):
            return True
        return self.below.gid_used(gid)

    def config(self, path: str) -> bytes | _Unknown | None:
        return self.below.config(path)

    def family(self) -> str | None:
        return self.below.family() or self.family_hint

    # --- helpers for the tools
    def group_gid(self, name: str) -> tuple[int | None, str | None]:
        """A group named on a command line: its gid, or why it is not known here."""
        number = _number(name)
        if number is not None:
            return number, None
        group = self.group(name)
        if group is UNKNOWN:
            return None, (f"group {name!r} comes from {self.what}, which was not checked "
                          "(--resolve-base reads its /etc/group)")
        if group is None:
            return None, f"no group {name!r}: nothing in the Dockerfile creates it and {self.what} has none"
        assert isinstance(group, Group)
        return group.gid, group.why

    def setting(self, path: str, key: str) -> str | _Unknown | None:
        """KEY's value in a config file of the base (login.defs: `KEY value`, others `KEY=value`)."""
        data = self.config(path)
        if data is UNKNOWN:
            return UNKNOWN
        assert data is None or isinstance(data, bytes)
        pattern = rb"^[ \t]*" + key.encode() + rb"[ \t]*[= \t][ \t]*\"?([^\"\s#]*)"
        match = re.search(pattern, data or b"", re.M)
        return match.group(1).decode("utf-8", "replace") if match else None

    def existing(self, name: str) -> Account | None:
        """A user to modify: the Dockerfile's, else a copy of the base's (None when not known)."""
        found = self.user(name)
        if isinstance(found, Account):
            copy = Account(found.uid, found.gid, found.uid_why, found.gid_why, found.group)
            self.users[name] = copy
            return copy
        return None


def replay(steps: list[Step], below: Files, family_hint: str | None = None,
           stage_files: Callable[[str], Files] | None = None) -> Table:
    """The accounts after `steps`, starting from `below` (COPY --from asks `stage_files`)."""
    table = Table(below=below, family_hint=family_hint)
    for step in steps:
        if isinstance(step, PasswdLine):
            table.users[step.name] = Account(step.uid, step.gid)
        elif isinstance(step, GroupLine):
            table.groups[step.name] = Group(step.gid)
        elif isinstance(step, CopyFrom):
            source = stage_files(step.source) if stage_files else Files(f"{step.source}'s files")
            table.below = _Copied(source, table.below, step)
            table.what, table.known = table.below.what, table.below.known
            if step.passwd:
                table.users.clear()
            if step.group:
                table.groups.clear()
        else:
            _run(step, table)
    return table


class _Copied(Files):
    """/etc/passwd and/or /etc/group replaced by another stage's (COPY --from)."""

    def __init__(self, source: Files, previous: Files, step: CopyFrom) -> None:
        super().__init__(source.what if step.passwd else previous.what)
        self.source, self.previous, self.step = source, previous, step
        self.known = source.known and (previous.known or (step.passwd and step.group))

    def user(self, name: str) -> Account | _Unknown | None:
        return (self.source if self.step.passwd else self.previous).user(name)

    def user_by_uid(self, uid: int) -> Account | _Unknown | None:
        return (self.source if self.step.passwd else self.previous).user_by_uid(uid)

    def group(self, name: str) -> Group | _Unknown | None:
        return (self.source if self.step.group else self.previous).group(name)

    def gid_used(self, gid: int) -> bool | _Unknown:
        return (self.source if self.step.group else self.previous).gid_used(gid)

    def config(self, path: str) -> bytes | _Unknown | None:
        return self.previous.config(path)

    def family(self) -> str | None:
        return self.previous.family()


def _run(command: Command, table: Table) -> None:
    tool, args = command.words[0], list(command.words[1:])
    if tool in ("adduser", "addgroup", "deluser", "delgroup"):
        family = "busybox" if command.busybox else (table.family() or _family_from_flags(args))
        if family == "shadow":  # RHEL & co: adduser is useradd (there is no addgroup)
            tool = {"adduser": "useradd", "addgroup": "groupadd", "deluser": "userdel",
                    "delgroup": "groupdel"}[tool]
        else:
            tool = f"{family}-{tool}"
    handler = _HANDLERS.get(tool)
    if handler is not None:
        handler(args, table)


def _family_from_flags(args: list[str]) -> str:
    letters = {c for a in args if a.startswith("-") and not a.startswith("--") for c in a[1:]}
    if letters & _BUSYBOX_LETTERS:
        return "busybox"
    if letters & _SHADOW_LETTERS:
        return "shadow"
    return "debian"


# --- shadow ------------------------------------------------------------------------------------

def _useradd(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _USERADD)
    if options.get("D") or len(operands) != 1:
        return  # `useradd -D` shows or sets defaults
    name = operands[0]
    uid = _number(options.get("u"))
    uid_why = None if uid is not None else f"useradd picks the uid of {name!r} at build time (give -u/--uid)"
    system = bool(options.get("r"))
    account = Account(uid, None, uid_why)
    if isinstance(options.get("g"), str):
        account.gid, account.gid_why = table.group_gid(str(options["g"]))
        account.group = None if _number(options["g"]) is not None else str(options["g"])
    else:
        own_group = True if options.get("U") else False if options.get("N") else _usergroups_enab(table)
        if own_group is True:
            gid, why = _user_group_gid(name, uid, system, table)
            table.groups[name] = Group(gid, why)
            account.gid, account.gid_why, account.group = gid, why, name
        elif own_group is False:
            account.gid, account.gid_why = _default_group(table)
        else:
            why = (f"useradd gives {name!r} a group of its own "
                   + (f"with gid {uid} if it is free" if uid is not None else "with a picked gid")
                   + f" when /etc/login.defs says USERGROUPS_ENAB yes, else GROUP of /etc/default/useradd: "
                   f"{table.what} was not checked (--resolve-base reads them)")
            table.groups[name] = Group(None, why)
            account.gid_why, account.group = why, name
    table.users[name] = account


def _usergroups_enab(table: Table) -> bool | None:
    value = table.setting("/etc/login.defs", "USERGROUPS_ENAB")
    if value is UNKNOWN:
        return None
    return isinstance(value, str) and value.lower() == "yes"  # getdef_bool: absent is no


def _login_defs_number(table: Table, key: str, default: int) -> int:
    value = table.setting("/etc/login.defs", key)
    number = _number(value) if isinstance(value, str) else None
    return number if number is not None else default


def _user_group_gid(name: str, uid: int | None, system: bool,
                    table: Table) -> tuple[int, None] | tuple[None, str]:
    """find_new_gid with the uid as the preferred gid: (gid, None) or (None, why)."""
    if uid is None:
        return None, f"useradd picks the uid of {name!r} at build time, and the gid of its group with it"
    gid_min = _login_defs_number(table, "GID_MIN", 1000)
    if system:
        low, high = 1, _login_defs_number(table, "SYS_GID_MAX", gid_min - 1)
    else:
        low, high = gid_min, _login_defs_number(table, "GID_MAX", 60000)
    if not low <= uid <= high:
        return None, (f"useradd picks the gid of group {name!r} at build time: uid {uid} is outside "
                      f"{low}..{high}, the {'system ' if system else ''}gid range in which it may be reused "
                      "as the gid (give -g, or create the group with groupadd -g)")
    used = table.gid_used(uid)
    if used is UNKNOWN:
        return None, (f"useradd gives group {name!r} gid {uid} only if {table.what} has no group with that "
                      "gid (--resolve-base checks it)")
    if used:
        return None, (f"gid {uid} is taken, so useradd picks another gid for group {name!r} at build time "
                      "(give -g)")
    return uid, None


def _default_group(table: Table) -> tuple[int | None, str | None]:
    value = table.setting("/etc/default/useradd", "GROUP")
    if value is UNKNOWN:
        return None, (f"useradd -N gives GROUP of {table.what}'s /etc/default/useradd, which was not "
                      "checked (--resolve-base reads it)")
    if not value:
        return None, ("useradd -N gives the built-in default group of the base's shadow version "
                      "(100 before 4.9, 1000 since): give -g")
    return table.group_gid(str(value))


def _usermod(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _USERMOD)
    if len(operands) != 1:
        return
    name = operands[0]
    account = table.existing(name)
    if account is None:
        why = f"usermod changes {name!r}, which comes from {table.what} (not checked)"
        account = Account(None, None, why, why)
        table.users[name] = account
    if "u" in options:
        account.uid = _number(options["u"])
        account.uid_why = None if account.uid is not None else f"usermod -u {options['u']!r} is not a number"
    if isinstance(options.get("g"), str):
        account.gid, account.gid_why = table.group_gid(str(options["g"]))
        account.group = None if _number(options["g"]) is not None else str(options["g"])
    if isinstance(options.get("l"), str):
        table.users[str(options["l"])] = table.users.pop(name)
        table.users[name] = None


def _groupadd(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _GROUPADD)
    if len(operands) != 1:
        return
    name = operands[0]
    gid = _number(options.get("g"))
    if gid is None:
        table.groups[name] = Group(None, f"groupadd picks the gid of {name!r} at build time (give -g/--gid)")
    elif options.get("f") and not options.get("o"):
        used = table.gid_used(gid)  # -f with a taken gid: another one is picked
        why = None if used is False else (
            f"groupadd -f picks another gid for {name!r} if {gid} is taken"
            + (f" ({table.what} was not checked)" if used is UNKNOWN else ", and it is"))
        table.groups[name] = Group(gid if why is None else None, why)
    else:
        table.groups[name] = Group(gid)


def _groupmod(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _GROUPMOD)
    if len(operands) != 1:
        return
    name = operands[0]
    old = table.group(name)
    if "g" in options:
        gid = _number(options["g"])
        group = Group(gid, None if gid is not None else f"groupmod -g {options['g']!r} is not a number")
        table.groups[name] = group
        old_gid = old.gid if isinstance(old, Group) else None
        for account in table.users.values():  # groupmod moves the users' primary group along
            moved = account is not None and (account.group == name or (old_gid is not None
                                                                         and account.gid == old_gid))
            if moved and account is not None:
                account.gid, account.gid_why = gid, group.why
    if isinstance(options.get("n"), str):
        new = str(options["n"])
        table.groups[new] = table.groups.pop(name, old if isinstance(old, Group) else Group(None, None))
        table.groups[name] = None
        for account in table.users.values():
            if account is not None and account.group == name:
                account.group = new


def _userdel(args: list[str], table: Table) -> None:
    _, operands = getopt.parse(args, _DELETE)
    for name in operands[:1]:
        table.users[name] = None


def _groupdel(args: list[str], table: Table) -> None:
    _, operands = getopt.parse(args, _DELETE)
    for name in operands[:1]:
        table.groups[name] = None


# --- busybox -----------------------------------------------------------------------------------

def _busybox_adduser(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _BUSYBOX_ADDUSER)
    if not operands or (not options and len(operands) == 2):
        return  # `adduser USER GROUP`: a member added, nothing created
    name = operands[0]
    uid = _number(options.get("u"))
    system = bool(options.get("S"))
    account = Account(uid, None, None if uid is not None else
                      f"busybox adduser picks the uid of {name!r} at build time, the first free one from "
                      f"{100 if system else 1000} (give -u)")
    group = options.get("G") if isinstance(options.get("G"), str) else ("nogroup" if system else None)
    if group is not None:
        account.gid, account.gid_why = table.group_gid(str(group))
        account.group = str(group)
        if group == "nogroup" and account.gid is None and table.group("nogroup") is UNKNOWN:
            account.gid_why = (f"busybox adduser -S puts {name!r} in group nogroup of {table.what} "
                               "(65533 on Alpine), which was not checked (--resolve-base reads it, "
                               "or give -G)")
    else:  # a group of its own, gid = uid (with -u, a taken gid fails the build)
        account.gid, account.group = uid, name
        account.gid_why = None if uid is not None else account.uid_why
        table.groups[name] = Group(uid, account.gid_why)
    table.users[name] = account


def _busybox_addgroup(args: list[str], table: Table) -> None:
    options, operands = getopt.parse(args, _BUSYBOX_ADDGROUP)
    if len(operands) != 1:
        return  # `addgroup USER GROUP`: a member added
    name = operands[0]
    gid = _number(options.get("g"))
    table.groups[name] = Group(gid, None if gid is not None else
                               f"busybox addgroup picks the gid of {name!r} at build time (give -g)")


# --- Debian's adduser --------------------------------------------------------------------------

def _debian_adduser(args: list[str], table: Table, *, addgroup: bool = False) -> None:
    options, operands = getopt.parse(args, _DEBIAN_ADDUSER)
    if len(operands) != 1:
        return  # two names: a member added
    name = operands[0]
    system = bool(options.get("system"))
    gid_option = _number(options.get("gid"))
    if addgroup or (options.get("group") and not system):
        table.groups[name] = Group(gid_option, None if gid_option is not None else
                                   f"addgroup picks the gid of {name!r} at build time (give --gid)")
        return
    uid = _number(options.get("uid"))
    account = Account(uid, None, None if uid is not None else
                      f"adduser picks the uid of {name!r} at build time (give --uid)")
    ingroup = options.get("ingroup")
    if gid_option is not None:
        account.gid = gid_option
    elif isinstance(ingroup, str):
        account.gid, account.gid_why = table.group_gid(ingroup)
        account.group = ingroup
    elif system and not options.get("group"):
        nogroup = table.group("nogroup")  # adduser: getgrnam("nogroup") || 65534
        account.gid, account.group = (nogroup.gid if isinstance(nogroup, Group) else 65534), "nogroup"
    elif system or _adduser_usergroups(table):
        why = None if uid is not None else f"adduser picks the ids of {name!r} and its group at build time " \
                                           "(give --uid)"
        account.gid, account.gid_why, account.group = uid, why, name
        table.groups[name] = Group(uid, why)
    else:
        account.gid, account.gid_why = _adduser_users_group(table)
    table.users[name] = account


def _adduser_usergroups(table: Table) -> bool:
    value = table.setting("/etc/adduser.conf", "USERGROUPS")
    return not isinstance(value, str) or value.lower() != "no"  # the shipped default is yes


def _adduser_users_group(table: Table) -> tuple[int | None, str | None]:
    users_gid = table.setting("/etc/adduser.conf", "USERS_GID")
    if isinstance(users_gid, str) and _number(users_gid) is not None:
        return _number(users_gid), None
    users_group = table.setting("/etc/adduser.conf", "USERS_GROUP")
    return table.group_gid(users_group) if isinstance(users_group, str) and users_group else (100, None)


def _debian_addgroup(args: list[str], table: Table) -> None:
    _debian_adduser(args, table, addgroup=True)


_HANDLERS: dict[str, Callable[[list[str], Table], None]] = {
    "useradd": _useradd, "usermod": _usermod, "userdel": _userdel, "groupadd": _groupadd,
    "groupmod": _groupmod, "groupdel": _groupdel,
    "busybox-adduser": _busybox_adduser, "busybox-addgroup": _busybox_addgroup,
    "busybox-deluser": _userdel, "busybox-delgroup": _groupdel,
    "debian-adduser": _debian_adduser, "debian-addgroup": _debian_addgroup,
    "debian-deluser": _userdel, "debian-delgroup": _groupdel,
}
