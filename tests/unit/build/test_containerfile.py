"""The Containerfile parser: stages, ARG substitution, what a build pulls, errors, and pinning."""

from __future__ import annotations

import platform as host_platform
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchline.build._containerfile import Containerfile, Stage, parse_containerfile, pin_references
from patchline.errors import BuildError, ContainerfileError

DIGEST = "@sha256:" + "a" * 64


@pytest.fixture(autouse=True)
def _amd64_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """BUILDPLATFORM and the default TARGETPLATFORM come from the host; make them the same everywhere."""
    monkeypatch.setattr(host_platform, "machine", lambda: "x86_64")


def parse(text: str, **kwargs: Any) -> Containerfile:
    return parse_containerfile(text, **kwargs)


def bases(text: str, **kwargs: Any) -> list[str]:
    return [s.base for s in parse(text, **kwargs).stages]


# -- stages --------------------------------------------------------------------------------------------------


def test_single_stage() -> None:
    cf = parse("FROM debian:bookworm\nRUN apt-get update\nCMD [\"bash\"]\n", path="app/Containerfile")
    assert cf == Containerfile(
        path="app/Containerfile",
        stages=(Stage(0, None, "debian:bookworm", None, None, 1, (), ()),),
        global_args=(),
        target=0,
    )
    assert cf.external_images() == ("debian:bookworm",)


def test_multi_stage_with_names_and_indexes() -> None:
    text = """\
FROM golang:1.22 AS Build
RUN go build -o /app .

from debian:bookworm-slim as runtime
COPY --from=build /app /usr/bin/app
COPY --from=0 /etc/ssl /etc/ssl

FROM runtime
COPY --from=RUNTIME /usr/bin/app /app
"""
    cf = parse(text)
    assert [(s.index, s.name, s.base, s.base_stage, s.line) for s in cf.stages] == [
        (0, "build", "golang:1.22", None, 1),
        (1, "runtime", "debian:bookworm-slim", None, 4),
        (2, None, "runtime", 1, 8),
    ]
    assert [s.stage_deps for s in cf.stages] == [(), (0,), (1,)]
    assert all(s.copy_from == () for s in cf.stages)
    assert cf.target == 2
    assert cf.external_images() == ("golang:1.22", "debian:bookworm-slim")


def test_scratch_is_never_an_image() -> None:
    cf = parse("FROM busybox AS tools\nFROM SCRATCH\nCOPY --from=tools /bin/busybox /busybox\n")
    assert cf.stages[1].base == "SCRATCH" and cf.stages[1].base_stage is None
    assert cf.external_images() == ("busybox",)
    assert parse("FROM scratch\nCOPY --from=scratch /x /y\n").external_images() == ()


def test_copy_from_an_external_image() -> None:
    text = """\
FROM debian:bookworm
COPY --from=docker.io/library/busybox:1.36 /bin/busybox /bin/
COPY --chown=0:0 --from=127.0.0.1:5000/tools/jq:1 /jq /usr/bin/jq
COPY --from=docker.io/library/busybox:1.36 /bin/sh /bin/
"""
    cf = parse(text)
    assert cf.stages[0].copy_from == ("docker.io/library/busybox:1.36", "127.0.0.1:5000/tools/jq:1")
    assert cf.external_images() == ("debian:bookworm", "docker.io/library/busybox:1.36", "127.0.0.1:5000/tools/jq:1")


@pytest.mark.parametrize(
    "line",
    [
        'COPY --from="busybox:1" /a /b',
        'COPY --chown="1 2" --from=busybox:1 /a /b',
        "COPY --chmod=755 \\\n  --link \\\n  --from=busybox:1 /a /b",
        "COPY --from=${TOOLS} /a /b",
        "COPY --from=busybox:1 --from=busybox:1 /a /b",
        "COPY --from=busybox:1 /a --from=not-a-flag /b",
    ],
)
def test_copy_from_flag_forms(line: str) -> None:
    cf = parse(f"ARG TOOLS=busybox:1\nFROM debian\nARG TOOLS\n{line}\n")
    assert cf.stages[0].copy_from == ("busybox:1",)


def test_run_mount_from() -> None:
    text = """\
FROM golang:1.22 AS deps
FROM debian:bookworm
RUN --mount=type=bind,from=deps,source=/go,target=/go \\
    --mount=type=cache,from=registry.example/cache:1,target=/root/.cache \\
    --mount=from=tools:2,target=/tools \\
    --mount=type=secret,id=token \\
    --mount=type=tmpfs,target=/tmp \\
    make
"""
    stage = parse(text).stages[1]
    assert stage.copy_from == ("registry.example/cache:1", "tools:2")
    assert stage.stage_deps == (0,)
    assert parse(text).external_images() == ("golang:1.22", "debian:bookworm", "registry.example/cache:1", "tools:2")


def test_stages_the_target_does_not_need_are_ignored() -> None:
    text = """\
FROM golang:1.22 AS build
FROM python:3.12 AS docs
COPY --from=sphinx:7 / /
FROM alpine:3 AS unrelated
FROM debian:bookworm AS final
COPY --from=build /app /app
RUN --mount=from=busybox:1,target=/b true
FROM final AS test
COPY --from=docs /html /html
"""
    assert parse(text).external_images() == ("golang:1.22", "python:3.12", "sphinx:7", "debian:bookworm", "busybox:1")
    cf = parse(text, target="final")
    assert cf.target == 3
    assert cf.external_images() == ("golang:1.22", "debian:bookworm", "busybox:1")


@pytest.mark.parametrize(
    ("target", "index", "images"),
    [
        (None, 2, ("debian:bookworm", "alpine:3")),
        ("base", 0, ("debian:bookworm",)),
        ("BASE", 0, ("debian:bookworm",)),
        ("extra", 1, ("alpine:3",)),
    ],
)
def test_target_selection(target: str | None, index: int, images: tuple[str, ...]) -> None:
    text = "FROM debian:bookworm AS base\nFROM alpine:3 AS extra\nFROM base\nCOPY --from=extra /x /x\n"
    cf = parse(text, target=target)
    assert cf.target == index
    assert cf.external_images() == images


# -- ARG substitution ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "build_args", "base"),
    [
        ("ARG BASE=debian:bookworm\nFROM $BASE", {}, "debian:bookworm"),
        ("ARG BASE=debian:bookworm\nFROM ${BASE}", {"BASE": "debian:trixie"}, "debian:trixie"),
        ("ARG BASE\nFROM ${BASE}", {"BASE": "alpine:3"}, "alpine:3"),
        ("ARG REG=127.0.0.1:5000\nARG IMG=${REG}/x/base:1\nFROM ${IMG}", {}, "127.0.0.1:5000/x/base:1"),
        ("ARG REG=127.0.0.1:5000\nARG IMG=${REG}/x/base:1\nFROM ${IMG}", {"REG": "r.example"}, "r.example/x/base:1"),
        ("ARG A=debian B=bookworm\nFROM $A:$B", {}, "debian:bookworm"),
        ("ARG A=debian B=${A}:12\nFROM $B", {}, "debian:12"),
        ('ARG X="debian:bookworm"\nFROM $X', {}, "debian:bookworm"),
        ("ARG X='debian:book'worm\nFROM $X", {}, "debian:bookworm"),
        ("ARG TAG\nFROM debian:${TAG:-bookworm}", {}, "debian:bookworm"),
        ("ARG TAG=\nFROM debian:${TAG:-bookworm}", {}, "debian:bookworm"),
        ("ARG TAG=trixie\nFROM debian:${TAG:-bookworm}", {}, "debian:trixie"),
        ("ARG TAG\nFROM debian:${TAG-bookworm}", {}, "debian:bookworm"),
        ("ARG TAG=\nFROM debian${TAG-:bookworm}", {}, "debian"),
        ("ARG V=slim\nFROM debian:bookworm${V:+-$V}", {}, "debian:bookworm-slim"),
        ("ARG V=\nFROM debian:bookworm${V:+-slim}", {}, "debian:bookworm"),
        ("ARG V=\nFROM debian:bookworm${V+-slim}", {}, "debian:bookworm-slim"),
        ("ARG V\nFROM debian:bookworm${V+-slim}", {}, "debian:bookworm"),
        ("ARG A\nARG B=bookworm\nFROM debian:${A:-${B}}", {}, "debian:bookworm"),
        ("FROM ${BASE:-debian}", {"BASE": "not-declared-so-unused"}, "debian"),
        ("ARG X=x\nFROM img:\\$X", {}, "img:$X"),
        ('ARG X=x\nFROM "img:$X"', {}, "img:x"),
        ("ARG X=x\nFROM 'img:$X'", {}, "img:$X"),
        ("ARG X=x\nFROM img:$", {}, "img:$"),
    ],
)
def test_arg_substitution_in_from(text: str, build_args: dict[str, str], base: str) -> None:
    assert bases(text, build_args=build_args) == [base]


def test_global_args_hold_effective_values() -> None:
    text = "ARG A=1\nARG B\nARG C=${A}2 D\nFROM scratch\nARG E=5\n"
    cf = parse(text, build_args={"A": "9", "D": "4", "E": "x"})
    assert cf.global_args == (("A", "9"), ("B", None), ("C", "92"), ("D", "4"))


def test_stage_args_substitute_copy_from() -> None:
    text = """\
ARG TOOLS=busybox:1
ARG OTHER=alpine:3
FROM debian:bookworm AS one
ARG TOOLS
COPY --from=$TOOLS /x /x
ARG OTHER=jq:1.7
COPY --from=${OTHER} /y /y
FROM debian:bookworm
ARG PICK=one
COPY --from=$PICK /x /x
"""
    cf = parse(text)
    assert cf.stages[0].copy_from == ("busybox:1", "jq:1.7")
    assert cf.stages[1].stage_deps == (0,)
    assert parse(text, build_args={"TOOLS": "toolbox:2"}).stages[0].copy_from == ("toolbox:2", "jq:1.7")


@pytest.mark.parametrize(
    ("text", "platform", "build_args", "base", "stage_platform"),
    [
        ("FROM --platform=$BUILDPLATFORM golang:1.22", None, {}, "golang:1.22", "linux/amd64"),
        ("FROM --platform=$BUILDPLATFORM golang:1.22", "linux/arm64", {}, "golang:1.22", "linux/amd64"),
        ("FROM --platform=${TARGETPLATFORM} img", "linux/arm/v7", {}, "img", "linux/arm/v7"),
        ("FROM img-$TARGETOS-$TARGETARCH$TARGETVARIANT", "linux/arm/v7", {}, "img-linux-armv7", None),
        ("FROM img-$TARGETARCH", None, {}, "img-amd64", None),
        ("FROM img-$BUILDARCH-$BUILDOS", "linux/s390x", {}, "img-amd64-linux", None),
        ("FROM img-$TARGETARCH", None, {"TARGETARCH": "riscv64"}, "img-riscv64", None),
        ("ARG TARGETARCH\nFROM img-$TARGETARCH", "linux/ppc64le", {}, "img-ppc64le", None),
        ("FROM --platform=linux/arm64 img", None, {}, "img", "linux/arm64"),
    ],
)
def test_platform_args(
    text: str, platform: str | None, build_args: dict[str, str], base: str, stage_platform: str | None
) -> None:
    stage = parse(text, platform=platform, build_args=build_args).stages[0]
    assert (stage.base, stage.platform) == (base, stage_platform)


def test_host_architecture_is_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_platform, "machine", lambda: "aarch64")
    assert bases("FROM img-$BUILDPLATFORM-$TARGETARCH") == ["img-linux/arm64-arm64"]


# -- lexical structure ---------------------------------------------------------------------------------------


def test_escape_directive_with_backtick_continuation() -> None:
    text = """\
# escape=`
# syntax=docker/dockerfile:1

FROM mcr.microsoft.com/windows/servercore:ltsc2022 `
    AS base
RUN dir C:\\
FROM base
COPY --from=base C:\\app C:\\app
"""
    cf = parse(text)
    assert [(s.name, s.base, s.line) for s in cf.stages] == [
        ("base", "mcr.microsoft.com/windows/servercore:ltsc2022", 4),
        (None, "base", 7),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Escape = `\nFROM a `\n  AS b\n", ["a"]),
        ("\n# escape=`\nFROM a\nRUN x `\nFROM b\n", ["a", "b"]),  # a blank line ends the directives
        ("# a comment\n# escape=`\nFROM a\nRUN x `\nFROM b\n", ["a", "b"]),
        ("# unknown=1\n# escape=`\nFROM a\nRUN x `\nFROM b\n", ["a", "b"]),
        ("FROM a\n# escape=`\nRUN x `\nFROM b\n", ["a", "b"]),
        ("\ufeff# escape=`\nFROM a\nRUN x `\nFROM b\n", ["a"]),
    ],
)
def test_directives_only_at_the_very_top(text: str, expected: list[str]) -> None:
    assert bases(text) == expected


def test_comments_and_blank_lines_inside_continuations_are_skipped() -> None:
    text = """\
  from debian:bookworm
RUN apt-get update && \\
# FROM evil:1 in a comment
    apt-get install -y curl \\

    && true
    # an indented comment
COPY \\
  # FROM evil:2
  --from=busybox:1 /x /x
RUN echo a\\\\
FROM alpine:3\r
"""
    cf = parse(text)
    assert [s.base for s in cf.stages] == ["debian:bookworm", "alpine:3"]
    assert cf.stages[0].copy_from == ("busybox:1",)
    assert cf.stages[1].line == 12


@pytest.mark.parametrize(
    "body",
    [
        "RUN <<EOF\nFROM evil:1\nCOPY --from=evil:2 / /\nEOF\n",
        "RUN <<-EOF\n\tFROM evil:1\n\t\tEOF\n",
        'RUN <<"EOF"\nFROM evil:1 $X\nEOF\n',
        "RUN python3 <<'PY' && echo done\nFROM evil:1\nPY\n",
        "COPY <<EOF /etc/motd\nFROM evil:1\nEOF\n",
        "COPY --chmod=755 <<one <<two /usr/local/bin/\nFROM evil:1\none\nFROM evil:2\ntwo\n",
        "RUN <<A cat > /a && 3<<-B cat > /b\nFROM evil:1\nA\nFROM evil:2\n\tB\n",
        "RUN \\\n  <<EOF\nFROM evil:1\nEOF\n",
        "ONBUILD RUN <<EOF\nFROM evil:1\nEOF\n",
        "ADD <<EOF /x\n# comment\n\nFROM evil:1\nEOF\n",
    ],
)
def test_heredoc_bodies_are_not_instructions(body: str) -> None:
    cf = parse(f"FROM debian:bookworm\n{body}FROM alpine:3\n")
    assert [s.base for s in cf.stages] == ["debian:bookworm", "alpine:3"]
    assert cf.stages[1].line == 2 + body.count("\n")
    assert [s.copy_from for s in cf.stages] == [(), ()]


@pytest.mark.parametrize(
    "line",
    [
        'RUN ["sh", "-c", "cat <<EOF"]',  # JSON form: no heredoc
        'RUN echo "<<EOF"',  # quoted: a word that does not start with <<
        "CMD cat <<EOF",  # only RUN, COPY and ADD take heredocs
        "RUN echo a <<",
    ],
)
def test_not_heredocs(line: str) -> None:
    assert bases(f"FROM debian:bookworm\n{line}\nFROM alpine:3\n") == ["debian:bookworm", "alpine:3"]


def test_instructions_are_case_insensitive() -> None:
    cf = parse("arg B=debian\nfrom $B As Base\ncopy --from=busybox:1 /x /x\nFrom base\n")
    assert [(s.name, s.base) for s in cf.stages] == [("base", "debian"), (None, "base")]
    assert cf.external_images() == ("debian", "busybox:1")


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kwargs", "line", "fragment"),
    [
        ("FROM debian\nFOO bar\n", {}, 2, "unknown instruction FOO"),
        ("FROM debian\nRUNN true\n", {}, 2, "unknown instruction RUNN"),
        ("# c\nRUN true\nFROM debian\n", {}, 2, "RUN before the first FROM"),
        ("ARG A=1\nENV X=1\nFROM debian\n", {}, 2, "ENV before the first FROM"),
        ("ARG A=1\n", {}, None, "no FROM instruction"),
        ("", {}, None, "no FROM instruction"),
        ("# just a comment\n\n", {}, None, "no FROM instruction"),
        ("FROM --pull=always debian\n", {}, 1, "FROM does not take --pull"),
        ("FROM --platform debian\n", {}, 1, "FROM --platform needs a value"),
        ("FROM\n", {}, 1, "FROM needs an image"),
        ("FROM --platform=linux/amd64\n", {}, 1, "FROM needs an image"),
        ("FROM debian bookworm\n", {}, 1, "expected FROM [--platform=PLATFORM] IMAGE [AS NAME]"),
        ("FROM debian AS\n", {}, 1, "expected FROM"),
        ("FROM debian AS a b\n", {}, 1, "expected FROM"),
        ("FROM debian FOR a\n", {}, 1, "expected FROM"),
        ("FROM debian AS 1st\n", {}, 1, "invalid stage name '1st'"),
        ("FROM debian AS my_stage!\n", {}, 1, "invalid stage name 'my_stage!'"),
        ("FROM debian AS build\nRUN true\nFROM alpine AS Build\n", {}, 3,
         "duplicate stage name 'build', already used at line 1"),
        ("ARG BASE\nFROM ${BASE}\n", {}, 2,
         "FROM ${BASE}: BASE has no value; pass --build-arg BASE=... or give it a default"),
        ("ARG BASE=\nFROM $BASE\n", {}, 2, "FROM $BASE: BASE has no value"),
        ("FROM ${BASE}\n", {"build_args": {"BASE": "x"}}, 1, "BASE has no value"),  # never declared
        ("ARG R\nARG T\nFROM $R$T\n", {}, 3,
         "FROM $R$T: R, T have no value; pass --build-arg R=... --build-arg T=... or give them a default"),
        ("ARG B\nFROM ${B:-$C}\n", {}, 2, "B, C have no value"),
        ('FROM ""\n', {}, 1, 'FROM "" is empty'),
        ("ARG P\nFROM --platform=$P debian\n", {}, 2, "FROM --platform=$P: P has no value"),
        ("FROM ${X\n", {}, 1, "bad substitution"),
        ("FROM ${X:-a\n", {}, 1, "missing }"),
        ('FROM "a\n', {}, 1, "missing \""),
        ("FROM ${X%%y}\n", {}, 1, "bad substitution"),
        ("FROM ${X:?unset}\n", {}, 1, "X: unset"),
        ("FROM ${X?}\n", {}, 1, "X: no value"),
        ("FROM 'debian\n", {}, 1, "unterminated single quote"),
        ("FROM debian AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n", {}, 2,
         "COPY --from=b refers to a later stage (line 3)"),
        ("FROM debian AS a\nCOPY --from=A /x /x\n", {}, 2, "COPY --from=A refers to its own stage"),
        ("FROM debian\nFROM alpine\nCOPY --from=1 /x /x\n", {}, 3, "COPY --from=1 refers to its own stage"),
        ("FROM debian\nCOPY --from=1 /x /x\nFROM alpine\n", {}, 2, "refers to a later stage (line 3)"),
        ("FROM debian\nCOPY --from=5 /x /x\n", {}, 2, "COPY --from=5: there is no stage 5"),
        ("FROM debian\nCOPY --from busybox /x /x\n", {}, 2, "COPY --from needs a value"),
        ("FROM debian\nCOPY --from= /x /x\n", {}, 2, "COPY --from= is empty"),
        ("FROM debian\nARG T\nCOPY --from=$T /x /x\n", {}, 3, "COPY --from=$T: T has no value"),
        ("FROM debian\nADD --from=busybox /x /x\n", {}, 2, "ADD does not take --from"),
        ("FROM debian\nRUN --mount=type=bind,from=later,target=/x true\nFROM alpine AS later\n", {}, 2,
         "RUN --mount from=later refers to a later stage (line 3)"),
        ("FROM later\nFROM alpine AS later\n", {}, 1, "FROM later refers to a later stage (line 2)"),
        ("FROM debian AS debian\n", {}, 1, "FROM debian refers to its own stage"),
        ("FROM debian\nARG =x\n", {}, 2, "a name is needed"),
        ("FROM debian\nARG\n", {}, 2, "a name is needed"),
        ("FROM debian AS a\n", {"target": "nope"}, None, "no stage named 'nope' to build (stages: a)"),
        ("FROM debian\n", {"platform": "amd64"}, None, "invalid platform 'amd64'"),
        ("# escape=x\nFROM debian\n", {}, 1, "invalid escape directive 'x'"),
        ("# escape=`\n# Escape=\\\nFROM debian\n", {}, 2, "only one escape parser directive is allowed"),
        ("FROM debian\n\nRUN <<EOF\nFROM alpine\n", {}, 3, "heredoc <<EOF is not terminated"),
        ("FROM debian\nRUN <<-EOF\n  EOF\n", {}, 2, "heredoc <<EOF is not terminated"),
        ("FROM debian\nRUN true \\\n  && \\\n  false\nBAD\n", {}, 5, "unknown instruction BAD"),
    ],
)
def test_errors(text: str, kwargs: dict[str, Any], line: int | None, fragment: str) -> None:
    path = "fleet/app/Containerfile"
    with pytest.raises(ContainerfileError) as info:
        parse(text, path=path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: " if line is not None else f"{path}: "), message
    assert fragment in message
    assert isinstance(info.value, BuildError)


def test_the_first_error_in_file_order_is_reported() -> None:
    with pytest.raises(ContainerfileError, match=r"^Containerfile:2: unknown instruction"):
        parse("FROM a\nNOPE\nFROM b AS 9\n")


# -- pinning -------------------------------------------------------------------------------------------------

PINNED = {
    "golang:1.22": "docker.io/library/golang" + DIGEST,
    "debian:bookworm": "docker.io/library/debian" + DIGEST,
    "busybox:1": "docker.io/library/busybox" + DIGEST,
    "127.0.0.1:5000/x/base:1": "127.0.0.1:5000/x/base" + DIGEST,
}


def test_pin_rewrites_from_and_copy_from_keeping_everything_else() -> None:
    text = """\
# syntax=docker/dockerfile:1
ARG GO=1.22
FROM --platform=$BUILDPLATFORM golang:${GO} AS Build
RUN go build -o /app .   # not a comment: kept as is

FROM debian:bookworm
COPY --chown=1:1 --from=busybox:1 /bin/busybox /bin/
COPY --from=build /app /app
COPY --from=alpine:3 /x /x
CMD ["/app"]"""
    out = pin_references(text, PINNED)
    old_lines, new_lines = text.split("\n"), out.split("\n")
    assert len(new_lines) == len(old_lines)
    changed = {i + 1: new for i, (old, new) in enumerate(zip(old_lines, new_lines, strict=True)) if old != new}
    assert changed == {
        3: f"FROM --platform=$BUILDPLATFORM {PINNED['golang:1.22']} AS Build",
        6: f"FROM {PINNED['debian:bookworm']}",
        7: f"COPY --chown=1:1 --from={PINNED['busybox:1']} /bin/busybox /bin/",
    }
    assert not out.endswith("\n")


def test_pin_a_from_continued_over_lines_and_built_from_args() -> None:
    text = """\
ARG REG=127.0.0.1:5000
ARG IMG=${REG}/x/base:1
FROM \\
    ${IMG} \\
    AS base
  COPY \\
    --from=busybox:1 \\
    # a comment inside
    / /
FROM base
RUN true
"""
    out = pin_references(text, PINNED)
    assert out.split("\n") == [
        "ARG REG=127.0.0.1:5000",
        "ARG IMG=${REG}/x/base:1",
        f"FROM {PINNED['127.0.0.1:5000/x/base:1']} AS base",
        "",
        "",
        f"  COPY --from={PINNED['busybox:1']} / /",
        "",
        "",
        "",
        "FROM base",
        "RUN true",
        "",
    ]
    assert parse(out).stages[1].line == 10


def test_pin_uses_build_args_and_leaves_stages_alone() -> None:
    text = "ARG TAG=bookworm\nFROM debian:$TAG AS debian-stage\nFROM debian-stage\nCOPY --from=0 / /\n"
    pins = {"debian:trixie": "debian" + DIGEST, "debian-stage": "nope", "0": "nope"}
    out = pin_references(text, pins, build_args={"TAG": "trixie"})
    assert out == f"ARG TAG=bookworm\nFROM debian{DIGEST} AS debian-stage\nFROM debian-stage\nCOPY --from=0 / /\n"
    assert pin_references(text, pins) == text


def test_pin_substitutes_with_the_same_platform_as_parse() -> None:
    text = "FROM --platform=$TARGETPLATFORM img:$TARGETARCH AS a\n"
    assert pin_references(text, {"img:arm64": "img" + DIGEST}, platform="linux/arm64") == (
        f"FROM --platform=$TARGETPLATFORM img{DIGEST} AS a\n"
    )
    assert pin_references(text, {"img:arm64": "img" + DIGEST}) == text  # the host is amd64


def test_pin_run_mount_from_keeps_other_fields() -> None:
    text = "FROM debian:bookworm\nRUN --network=none --mount=type=bind,From=busybox:1,target=/b make\n"
    out = pin_references(text, PINNED)
    assert out.split("\n")[1] == f"RUN --network=none --mount=type=bind,From={PINNED['busybox:1']},target=/b make"


def test_pin_keeps_crlf_bom_heredocs_and_indentation() -> None:
    text = "\ufeffFROM debian:bookworm\r\nRUN <<EOF\r\nFROM golang:1.22\r\nEOF\r\n\tFROM busybox:1 \\\r\n AS b\r\n"
    out = pin_references(text, PINNED)
    assert out == (
        f"\ufeffFROM {PINNED['debian:bookworm']}\r\nRUN <<EOF\r\nFROM golang:1.22\r\nEOF\r\n"
        f"\tFROM {PINNED['busybox:1']} AS b\r\n\r\n"
    )


def test_pin_errors_like_parse() -> None:
    with pytest.raises(ContainerfileError, match=r"^dir/Containerfile:1: FROM \$X: X has no value"):
        pin_references("FROM $X\n", PINNED, path="dir/Containerfile")


ROUND_TRIP = [
    "FROM debian:bookworm\n",
    "ARG B=debian:bookworm\nFROM --platform=$BUILDPLATFORM ${B} AS b\nFROM scratch\nCOPY --from=b / /\n",
    "FROM golang:1.22 AS build\nFROM debian:bookworm\nCOPY --from=build /a /a\nCOPY --from=busybox:1 /b /b\n"
    "RUN --mount=type=cache,from=127.0.0.1:5000/x/base:1,target=/c true\n",
    "FROM \\\n  golang:1.22 \\\n  AS a\nFROM a\nCOPY \\\n --from=busybox:1 \\\n / /\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_pins_every_external_image(text: str) -> None:
    images = parse(text).external_images()
    pins = {image: f"pinned.example/{i}{DIGEST}" for i, image in enumerate(images)}
    out = pin_references(text, pins)
    assert parse(out).external_images() == tuple(pins[i] for i in images)
    assert out.count("\n") == text.count("\n")


IMAGES = st.sampled_from(["debian:bookworm", "alpine:3", "busybox:1", "127.0.0.1:5000/x/base:1", "golang:1.22"])


@st.composite
def containerfiles(draw: st.DrawFn) -> str:
    """A multi-stage Containerfile mixing images, stage references, ARGs, flags and continuations."""
    lines = ["# syntax=docker/dockerfile:1"]
    for n in range(draw(st.integers(1, 4))):
        if n and draw(st.booleans()):
            base = draw(st.sampled_from([f"s{k}" for k in range(n)]))
        elif draw(st.booleans()):
            lines.insert(1, f"ARG IMG{n}={draw(IMAGES)}")
            base = f"${{IMG{n}}}"
        else:
            base = draw(IMAGES)
        platform = "--platform=$BUILDPLATFORM " if draw(st.booleans()) else ""
        joiner = " \\\n    " if draw(st.booleans()) else " "
        lines.append(f"FROM {platform}{base}{joiner}AS s{n}")
        for _ in range(draw(st.integers(0, 3))):
            ref = draw(st.one_of(IMAGES, st.sampled_from([f"s{k}" for k in range(n)] or ["busybox:1"])))
            if draw(st.booleans()):
                lines.append(f"COPY --from={ref} \\\n  # comment\n  /src /dst")
            else:
                lines.append(f"RUN --mount=type=bind,from={ref},target=/m \\\n    true")
        lines.append("RUN <<EOF\nFROM evil:1\nEOF")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None)
@given(containerfiles())
def test_round_trip_property(text: str) -> None:
    images = parse(text).external_images()
    pins = {image: f"pinned.example/{i}{DIGEST}" for i, image in enumerate(images)}
    out = pin_references(text, pins)
    assert parse(out).external_images() == tuple(pins[i] for i in images)
    assert out.count("\n") == text.count("\n")
    assert [s.line for s in parse(out).stages] == [s.line for s in parse(text).stages]
