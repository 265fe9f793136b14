"""Dockerfiles written for the tests: expected findings (rule, line) and expected numeric patch.

`patched` is the exact expected output of `imagefix patch` (numeric mode); None means
"unchanged"; PATCH_ERROR means the patch must refuse (exit 2) because ids are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WHY = "kata-qemu-tdx cannot look up user names on the host under guest pull"
WHY_GROUP = ("under guest pull kata-qemu-tdx cannot read the image's /etc/passwd on the host, so a uid "
             "without a group gets gid 0")
PATCH_ERROR = "patch-error"


def note(old: str, new: str, nl: str = "\n", indent: str = "", why: str = WHY) -> str:
    return f"{indent}# imagefix: USER {old} -> {new} ({why}){nl}"


@dataclass
class Case:
    name: str
    dockerfile: str
    findings: list[tuple[str, int]]
    patched: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None


def replaced(text: str, old_line: str, user: str, numeric: str, nl: str = "\n", indent: str = "",
             keyword: str = "USER") -> str:
    assert old_line in text, old_line
    return text.replace(old_line, note(user, numeric, nl, indent) + f"{indent}{keyword} {numeric}", 1)


SPARK = """\
# Like apache/spark-docker 3.5.3 (trimmed)
ARG java_image_tag=17-jre
FROM eclipse-temurin:${java_image_tag}

ARG spark_uid=185

RUN groupadd --system --gid=${spark_uid} spark && \\
    useradd --system --uid=${spark_uid} --gid=spark spark

RUN set -ex; \\
    apt-get update; \\
    mkdir -p /opt/spark/work-dir

ENV SPARK_HOME /opt/spark
WORKDIR /opt/spark/work-dir
USER spark
ENTRYPOINT [ "/opt/entrypoint.sh" ]
"""

MYSQL = """\
# Like docker-library/mysql 8.4 (trimmed): no USER, gosu drops to 999 at run time
FROM oraclelinux:9-slim
RUN set -eux; \\
    groupadd --system --gid 999 mysql; \\
    useradd --system --uid 999 --gid 999 --home-dir /var/lib/mysql --no-create-home mysql
ENV GOSU_VERSION 1.17
COPY docker-entrypoint.sh /usr/local/bin/
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["mysqld"]
"""


def cases() -> list[Case]:
    c: list[Case] = []

    def add(name, text, findings, patched=None, **kw):
        c.append(Case(name, text, findings, patched, **kw))

    add("spark-upstream", SPARK, [("KIF101", 16)], replaced(SPARK, "USER spark", "spark", "185:185"))
    add("mysql-upstream", MYSQL, [])
    t = "FROM alpine:3.20\nRUN addgroup -S -g 1000 app && adduser -S -u 1000 -G app app\nUSER app\n"
    add("busybox-adduser-group", t, [("KIF101", 3)], replaced(t, "USER app", "app", "1000:1000"))
    t = "FROM busybox\nRUN adduser -D -u 2000 web\nUSER web\nCMD [\"httpd\", \"-f\"]\n"
    add("busybox-adduser-own-group", t, [("KIF101", 3)], replaced(t, "USER web", "web", "2000:2000"))
    add("useradd-without-uid", "FROM debian:12\nRUN useradd app\nUSER app\n",
        [("KIF101", 3), ("KIF104", 3)], PATCH_ERROR)
    add("useradd-uid-without-group", "FROM debian:12\nRUN useradd -u 1001 app\nUSER app\n",
        [("KIF101", 3), ("KIF104", 3)], PATCH_ERROR)
    t = "FROM debian:12\nRUN useradd -u 1001 -g 0 app\nUSER app\n"
    add("useradd-root-group", t, [("KIF101", 3)], replaced(t, "USER app", "app", "1001:0"))
    add("numeric-with-group", "FROM debian:12\nUSER 1000:1000\n", [])
    t = "FROM debian:12\nRUN groupadd -g 1000 app && useradd -u 1000 -g 1000 app\nUSER 1000\n"
    # a numeric user's comment speaks of its group, not of names (issue #27, point 7)
    add("numeric-without-group", t, [("KIF102", 3)],
        t.replace("USER 1000", note("1000", "1000:1000", why=WHY_GROUP) + "USER 1000:1000"))
    # The base decides the group of a uid the Dockerfile does not create: an info, nothing to patch.
    add("numeric-without-group-unknown", "FROM debian:12\nUSER 4242\n", [("KIF102", 2)])
    t = "FROM debian:12\nRUN useradd -u 1001 -g 0 app\nUSER 1001\n"
    add("numeric-without-group-root-group", t, [])  # bitnami/sclorg: 1001 meant as 1001:0
    t = "FROM debian:12\nUSER root\n"
    add("root-by-name", t, [("KIF101", 2)], replaced(t, "USER root", "root", "0:0"))
    t = "FROM debian:12\nUSER root:root\n"
    # root and its group root are 0 by definition: a fix, not an unknown id (issue #27, point 7)
    add("root-by-name-and-group", t, [("KIF101", 2)], replaced(t, "USER root:root", "root:root", "0:0"))
    add("uid-empty-group-given", "FROM debian:12\nUSER :185\n", [("KIF103", 2)])
    add("gid-empty", "FROM debian:12\nUSER 185:\n", [])
    add("name-with-empty-group", "FROM debian:12\nUSER spark:\n", [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    add("plus-sign-is-numeric", "FROM debian:12\nUSER +185:185\n", [])
    add("fullwidth-digits-are-a-name", "FROM debian:12\nUSER \uff11\uff18\uff15\n",
        [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    add("superscript-group-is-a-name", "FROM debian:12\nUSER 185:\u00b2\n",
        [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    add("negative-uid", "FROM debian:12\nUSER -1\n", [("KIF105", 2)], PATCH_ERROR)
    add("uid-wraps-to-root", "FROM debian:12\nUSER 4294967296:0\n", [("KIF105", 2)], PATCH_ERROR)
    add("uid-beyond-int64", "FROM debian:12\nUSER 99999999999999999999\n", [("KIF105", 2)], PATCH_ERROR)
    add("two-colons", "FROM debian:12\nUSER a:b:c\n", [("KIF105", 2)], PATCH_ERROR)
    add("variable-from-base-env", "FROM jupyter/base-notebook\nUSER ${NB_UID}\n", [("KIF106", 2)])
    add("declared-arg-without-value", "FROM debian:12\nARG APP_UID\nUSER ${APP_UID}\n", [("KIF106", 3)])
    add("nested-defaults", "FROM debian:12\nUSER ${X:-${Y:-185:185}}\n", [])
    add("quoted-heredoc-marker-is-not-a-heredoc",
        'FROM debian:12\nRUN echo "a <<EOF"\nUSER 1000:1000\n', [])
    add("windows-escape", "# escape=`\nARG BASE=example.com/app-base\nFROM ${BASE}\n"
        "RUN powershell -Command `\n    New-Item -Path C:\\app\nUSER ContainerUser\n", [])
    add("windows-servercore", "FROM mcr.microsoft.com/windows/servercore:ltsc2022\nUSER ContainerUser\n", [])
    add("windows-base", "FROM mcr.microsoft.com/dotnet/runtime:8.0-nanoserver-ltsc2022\nUSER app\n", [])
    t = 'FROM debian:12\nRUN useradd -u 33 -g 33 www\nUSER "www"\n'
    add("quoted-user", t, [("KIF101", 3)], replaced(t, 'USER "www"', '"www" (www)', "33:33"))
    add("root-by-number", "FROM debian:12\nUSER 0\n", [("KIF103", 2)])
    add("root-quoted-empty", 'FROM debian:12\nUSER ""\n', [("KIF103", 2)])
    add("scratch", "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n", [])
    add("user-only-in-builder", "FROM golang:1.23 AS build\nRUN useradd -u 10 b\nUSER b\n"
        "RUN go build -o /app\nFROM alpine:3.20\nCOPY --from=build /app /app\n", [])
    t = ("FROM golang:1.23 AS build\nRUN go build -o /app\n\nFROM debian:12-slim\n"
         "RUN groupadd -g 10001 app && useradd -u 10001 -g app app\nCOPY --from=build /app /app\nUSER app\n")
    add("multistage-final-named", t, [("KIF101", 7)], replaced(t, "USER app", "app", "10001:10001"))
    t = ("FROM debian:12 AS app\nRUN groupadd -g 185 spark && useradd -u 185 -g spark spark\nUSER spark\n"
         "\nFROM app AS final\nCOPY job.py /opt/job.py\n")
    add("inherited-from-stage", t, [("KIF101", 3)], t + note("spark", "185:185") + "USER 185:185\n")
    t = ("FROM debian:12 AS builder\nRUN useradd -u 7 -g 7 b\nUSER b\nRUN make\n"
         "FROM debian:12\nCOPY --from=builder /out /out\n")
    add("target-builder-stage", t, [("KIF101", 3)], replaced(t, "USER b", "b", "7:7"), target="builder")
    t = ("FROM debian:12\nARG APP_USER=app\nARG APP_UID=1500\n"
         "RUN groupadd -g ${APP_UID} ${APP_USER} && useradd -u ${APP_UID} -g ${APP_USER} ${APP_USER}\n"
         "USER ${APP_USER}\n")
    add("arg-driven-user", t, [("KIF101", 5)],
        replaced(t, "USER ${APP_USER}", "${APP_USER} (app)", "1500:1500"))
    add("arg-default-syntax", "FROM debian:12\nUSER ${APP_USER:-nobody}\n",
        [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    add("build-arg-override", "FROM debian:12\nARG APP_UID=1000\nUSER ${APP_UID}:${APP_UID}\n", [],
        build_args={"APP_UID": "5000"})
    t = "FROM debian:12\nARG APP_USER=nobody\nRUN useradd -u 33 -g 33 www\nUSER ${APP_USER}\n"
    add("build-arg-named", t, [("KIF101", 4)], replaced(t, "USER ${APP_USER}", "${APP_USER} (www)", "33:33"),
        build_args={"APP_USER": "www"})
    add("arg-alternative-syntax", "FROM debian:12\nARG WITH_GROUP=1\nUSER 185${WITH_GROUP:+:185}\n", [])
    add("global-arg-in-from", "ARG BASE=alpine:3.20\nFROM ${BASE}\nRUN true\n", [])
    t = ("ARG uid=185\nFROM debian:12\nARG uid\n"
         "RUN groupadd -g ${uid} spark && useradd -u ${uid} -g spark spark\nUSER spark\n")
    add("global-arg-redeclared", t, [("KIF101", 5)], replaced(t, "USER spark", "spark", "185:185"))
    add("global-arg-not-redeclared",
        "ARG uid=185\nFROM debian:12\nRUN useradd -u ${uid} spark\nUSER spark\n",
        [("KIF101", 4), ("KIF104", 4)], PATCH_ERROR)
    t = "FROM debian:12\nENV APP_USER=www\nRUN useradd --uid 33 --gid 33 www\nUSER $APP_USER\n"
    add("env-driven-user", t, [("KIF101", 4)], replaced(t, "USER $APP_USER", "$APP_USER (www)", "33:33"))
    t = ("FROM debian:12\nRUN <<EOF\nset -e\nUSER nobody\nuseradd -u 900 -g 0 svc\nEOF\n"
         "USER svc\n")
    add("heredoc-run", t, [("KIF101", 7)], replaced(t, "USER svc", "svc", "900:0"))
    t = ("FROM debian:12\nCOPY <<EOF /etc/passwd\nroot:x:0:0::/root:/bin/sh\napp:x:1234:1234::/app:/bin/sh\n"
         "EOF\nUSER app\n")
    add("heredoc-copy-passwd", t, [("KIF101", 6)], replaced(t, "USER app", "app", "1234:1234"))
    t = SPARK.replace("\n", "\r\n")
    add("crlf", t, [("KIF101", 16)], replaced(t, "USER spark", "spark", "185:185", nl="\r\n"))
    t = "\ufeffFROM debian:12\nRUN useradd -u 1 -g 1 a\nUSER a\n"
    add("bom", t, [("KIF101", 3)], replaced(t, "USER a", "a", "1:1"))
    t = "FROM debian:12\nRUN useradd -u 1 -g 1 a\nUSER a"
    add("no-trailing-newline", t, [("KIF101", 3)], replaced(t, "USER a", "a", "1:1"))
    t = "from debian:12\nrun useradd -u 1000 -g 1000 app\nuser app\n"
    add("lowercase", t, [("KIF101", 3)], replaced(t, "user app", "app", "1000:1000", keyword="user"))
    t = "FROM debian:12\nRUN useradd -u 5 -g 5 cont\nUSER \\\n    cont\nCMD [\"x\"]\n"
    add("user-continued", t, [("KIF101", 3)],
        t.replace("USER \\\n    cont", note("cont", "5:5").rstrip("\n") + "\nUSER 5:5"))
    t = "FROM debian:12\nRUN useradd -u 5 -g 5 ind\n  USER ind\n"
    add("indented", t, [("KIF101", 3)], replaced(t, "  USER ind", "ind", "5:5", indent="  "))
    add("pragma-ignore", "FROM debian:12\nRUN useradd -u 1 -g 1 a\n# imagefix ignore=KIF101\nUSER a\n", [])
    add("pragma-global", "# imagefix global ignore=KIF101,KIF104\nFROM debian:12\nUSER nobody\n", [])
    add("pragma-over-comments",
        "FROM debian:12\n# imagefix ignore=KIF101, KIF104\n# the service account\nUSER nobody\n", [])
    add("pragma-other-rule", "FROM debian:12\n# imagefix ignore=KIF201\nUSER nobody\n",
        [("KIF101", 3), ("KIF104", 3)], PATCH_ERROR)
    t = "# escape=`\nFROM debian:12\nRUN useradd -u 8 -g 8 `\n    tick\nUSER tick\n"
    add("escape-directive", t, [("KIF101", 5)], replaced(t, "USER tick", "tick", "8:8"))
    add("from-platform-distroless",
        "FROM --platform=$BUILDPLATFORM golang:1.23 AS build\nRUN go build -o /app\n"
        "FROM gcr.io/distroless/static-debian13:nonroot\nCOPY --from=build /app /\n", [])
    t = "FROM debian:12\nRUN groupadd -g 50 staff && useradd -u 1000 -g 100 app\nUSER app:staff\n"
    add("named-user-named-group", t, [("KIF101", 3)], replaced(t, "USER app:staff", "app:staff", "1000:50"))
    add("numeric-user-named-group", "FROM debian:12\nUSER 1000:docker\n",
        [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    add("last-user-wins", "FROM debian:12\nUSER nobody\nRUN true\nUSER 1000:1000\n", [])
    t = ("FROM debian:12\nRUN echo 'svc:x:999:999::/:/sbin/nologin' >> /etc/passwd && \\\n"
         "    echo 'svc:x:999:' >> /etc/group\nUSER svc\n")
    add("passwd-echo", t, [("KIF101", 4)], replaced(t, "USER svc", "svc", "999:999"))
    add("nobody-no-lookup", "FROM debian:12\nUSER nobody\n", [("KIF101", 2), ("KIF104", 2)], PATCH_ERROR)
    t = ("FROM debian:12 AS base\nRUN groupadd -g 70 pg && useradd -u 70 -g 70 pg\n"
         "FROM base AS mid\nUSER pg\nFROM mid\nRUN echo hi")
    add("inherited-two-levels-no-newline", t, [("KIF101", 4)],
        t + "\n" + note("pg", "70:70") + "USER 70:70")
    return c
