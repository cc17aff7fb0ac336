"""Read a Containerfile (Dockerfile) the way buildah and BuildKit do, to find what a build pulls.

:func:`parse_containerfile` finds the stages, what each is based on and which images it uses
(``FROM``, ``COPY --from``, ``RUN --mount=...,from=``) after ARG substitution, honouring parser
directives, line continuations, comments and heredocs. :func:`pin_references` rewrites those
references to pinned ones without moving any instruction to another line.
"""

from __future__ import annotations

import contextlib
import json
import platform as _host
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from patchline.errors import ContainerfileError

__all__ = ["Containerfile", "Stage", "parse_containerfile", "pin_references"]

_INSTRUCTIONS = frozenset({"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                           "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"})
_DIRECTIVE = re.compile(r"#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*")
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")
_HEREDOC = re.compile(r"\d*<<(-?)([^<]+)")
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z0-9_]+)(\}|:?[-+?])?")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm/v7", "armv6l": "arm/v6", "i386": "386", "i686": "386"}
_PLATFORM_ARGS = frozenset(f"{w}{p}" for w in ("BUILD", "TARGET") for p in ("PLATFORM", "OS", "ARCH", "VARIANT"))


class _Bad(Exception):
    """What is wrong with one instruction; the caller prefixes ``path:line:``."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One ``FROM`` and the instructions up to the next one."""

    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: str | None
    line: int
    copy_from: tuple[str, ...]
    stage_deps: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Containerfile:
    """A parsed Containerfile: its stages, global ARGs and the stage that is built."""

    path: str
    stages: tuple[Stage, ...]
    global_args: tuple[tuple[str, str | None], ...]
    target: int

    def external_images(self) -> tuple[str, ...]:
        """Every image the build of `target` pulls: the FROM bases that are not stages nor `scratch`, and
        COPY --from / RUN --mount from= images, of the target stage and of every stage it depends on
        (transitively), in order of first use, deduplicated. Stages the target does not need are ignored,
        as buildah skips them."""
        needed = {self.target}
        for stage in reversed(self.stages[: self.target + 1]):  # a stage only ever depends on earlier ones
            if stage.index in needed:
                needed.update(stage.stage_deps)
        images: dict[str, None] = {}
        for stage in self.stages:
            if stage.index in needed:
                if stage.base_stage is None and stage.base.lower() != "scratch":
                    images[stage.base] = None
                images.update(dict.fromkeys(stage.copy_from))
        return tuple(images)


@dataclass(frozen=True, slots=True)
class _Instr:
    name: str  # upper-cased
    word: str  # the name as written
    args: str  # the rest, continuation lines joined as BuildKit joins them
    line: int  # first physical line, 1-based
    end: int  # last physical line of the instruction itself (heredoc bodies follow it)


def _word_pattern(escape: str) -> re.Pattern[str]:
    """A word: up to unquoted, unescaped whitespace; an unterminated quote runs to the end."""
    e = re.escape(escape)
    return re.compile(rf"""(?:[^\s'"{e}]|{e}.|'[^']*'?|"(?:[^"{e}]|{e}.)*"?|{e}$)+""", re.S)


_WORD = {escape: _word_pattern(escape) for escape in ("\\", "`")}


def _words(text: str, escape: str) -> list[str]:
    return [m[0] for m in _WORD[escape].finditer(text)]


def _split_flags(args: str, escape: str) -> tuple[list[str], str]:
    """The leading ``--flag`` words as written, and the rest of the arguments."""
    flags: list[str] = []
    for m in _WORD[escape].finditer(args):
        if not m[0].startswith("--") or m[0] == "--":
            return flags, args[m.end() if m[0] == "--" else m.start() :].strip()
        flags.append(m[0])
    return flags, ""


class _Expander:
    """Shell-like processing of one word: quotes, the escape character and, given an env, $VAR and ${VAR...}."""

    def __init__(self, text: str, env: Mapping[str, str | None] | None, escape: str) -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0
        self.missing: list[str] = []  # variables that substituted as empty

    def word(self, stop: str = "") -> str:
        """Up to `stop` (left for the caller) or the end; with `stop` '"' this is the inside of double quotes."""
        out: list[str] = []
        text, quoted = self.text, stop == '"'
        while self.pos < len(text) and text[self.pos] != stop:
            ch, nxt = text[self.pos], text[self.pos + 1 : self.pos + 2]
            self.pos += 1
            if ch == self.escape and nxt and (not quoted or nxt in ('"', "$", self.escape)):
                out.append(nxt)
                self.pos += 1
            elif ch == "'" and not quoted:
                end = text.find("'", self.pos)
                if end < 0:
                    raise _Bad(f"unterminated single quote in {text!r}")
                out.append(text[self.pos : end])
                self.pos = end + 1
            elif ch == '"':
                out.append(self.word('"'))
                self.pos += 1
            elif ch == "$" and self.env is not None:
                out.append(self._variable(self.env))
            else:
                out.append(ch)
        if stop and self.pos >= len(text):
            raise _Bad(f"missing {stop} in {text!r}")
        return "".join(out)

    def _variable(self, env: Mapping[str, str | None]) -> str:
        m = _VAR.match(self.text, self.pos)
        if m is None or (m[2] and not m[3]):
            if self.text.startswith("{", self.pos):
                raise _Bad(f"bad substitution in {self.text!r}: use ${{NAME}}, ${{NAME:-default}}, ${{NAME:+other}}")
            return "$"
        self.pos = m.end()
        name, op = m[1] or m[2], m[3] or "}"
        value, mark = env.get(name), len(self.missing)
        if op == "}":
            if not value:
                self.missing.append(name)
            return value or ""
        word = self.word("}")
        self.pos += 1
        is_set = bool(value) if op.startswith(":") else value is not None
        if op.endswith("+"):
            if not is_set:
                del self.missing[mark:]
            return word if is_set else ""
        if is_set:
            del self.missing[mark:]
            return value or ""
        if op.endswith("?"):
            raise _Bad(f"{name}: {word or 'no value'}")
        if not word:
            self.missing.insert(mark, name)
        return word


def _expand(word: str, env: Mapping[str, str | None] | None, escape: str) -> tuple[str, list[str]]:
    """`word` with quotes removed and, given an env, variables substituted; and the variables that had no value."""
    expander = _Expander(word, env, escape)
    return expander.word(), expander.missing


def _no_value(what: str, missing: Sequence[str]) -> str:
    names = list(dict.fromkeys(missing))
    if not names:
        return f"{what} is empty"
    one = len(names) == 1
    hint = " ".join(f"--build-arg {n}=..." for n in names) + f" or give {'it' if one else 'them'} a default"
    return f"{what}: {', '.join(names)} {'has' if one else 'have'} no value; pass {hint}"


def _trim(line: str, escape: str) -> tuple[str, bool]:
    """Drop a trailing continuation escape (not itself escaped); True when the instruction goes on."""
    body = line.rstrip(" \t")
    if body.endswith(escape) and (len(body) == 1 or body[-2] != escape):
        return body[:-1], True
    return line, False


def _heredocs(ins: _Instr) -> list[tuple[str, bool]]:
    """The heredoc delimiters an instruction opens, each with whether ``<<-`` strips leading tabs."""
    name, args = ins.name, ins.args
    if name == "ONBUILD":
        inner, _, args = args.partition(" ")
        name = inner.upper()
    if name not in ("RUN", "COPY", "ADD") or "<<" not in args:
        return []
    with contextlib.suppress(ValueError):  # the JSON form has no heredocs
        if isinstance(json.loads(_split_flags(args, "\\")[1]), list):
            return []
    matches = (_HEREDOC.fullmatch(w) for w in _words(args, "\\"))  # a backslash escape here, whatever the directive
    return [(delimiter, m[1] == "-") for m in matches if m and (delimiter := _expand(m[2], None, "\\")[0])]


def _read(lines: list[str], path: str) -> tuple[list[_Instr], str]:
    escape, i = "\\", 0
    seen: set[str] = set()
    while i < len(lines) and (m := _DIRECTIVE.fullmatch(lines[i].strip())) and m[1].lower() in _DIRECTIVES:
        key = m[1].lower()
        if key in seen:
            raise ContainerfileError(f"{path}:{i + 1}: only one {key} parser directive is allowed")
        if key == "escape" and m[2] not in ("\\", "`"):
            raise ContainerfileError(f"{path}:{i + 1}: invalid escape directive {m[2]!r}: use \\ or `")
        seen.add(key)
        escape = m[2] if key == "escape" else escape
        i += 1
    instrs: list[_Instr] = []
    while i < len(lines):
        start, raw = i, lines[i].lstrip()
        i += 1
        if raw.startswith("#"):
            continue
        text, more = _trim(raw, escape)
        while more and i < len(lines):
            raw = lines[i]
            i += 1
            if raw.strip() and not raw.lstrip().startswith("#"):  # comments and blank lines inside are skipped
                piece, more = _trim(raw, escape)
                text += piece
        parts = text.split(None, 1)
        if not parts:
            continue
        ins = _Instr(parts[0].upper(), parts[0], parts[1].strip() if len(parts) > 1 else "", start + 1, i)
        for delimiter, chomp in _heredocs(ins):  # their bodies are not instructions
            while i < len(lines) and (lines[i].lstrip("\t") if chomp else lines[i]) != delimiter:
                i += 1
            if i == len(lines):
                raise ContainerfileError(f"{path}:{ins.line}: heredoc <<{delimiter} is not terminated")
            i += 1
        instrs.append(ins)
    return instrs, escape


def _platform_args(platform: str | None, path: str) -> dict[str, str | None]:
    """The predefined BUILD* (this host) and TARGET* (`platform`, default this host) ARGs."""
    host = "linux/" + _ARCH.get(_host.machine().lower(), _host.machine().lower())
    out: dict[str, str | None] = {}
    for prefix, value in (("BUILD", host), ("TARGET", platform or host)):
        parts = value.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ContainerfileError(f"{path}: invalid platform {value!r}: expected OS/ARCH[/VARIANT]")
        for key, part in zip(("PLATFORM", "OS", "ARCH", "VARIANT"), (value, *parts, ""), strict=False):
            out[prefix + key] = part
    return out


class _Analysis:
    """Walks the instructions once: global ARGs, then each stage with its references."""

    def __init__(self, text: str, path: str, build_args: Mapping[str, str] | None, platform: str | None) -> None:
        self.lines = text.removeprefix("\ufeff").split("\n")
        self.instrs, self.escape = _read([line.removesuffix("\r") for line in self.lines], path)
        self.build_args = dict(build_args or {})
        self.genv = _platform_args(platform, path) | {k: v for k, v in self.build_args.items() if k in _PLATFORM_ARGS}
        self.global_args: dict[str, str | None] = {}
        self.stages: list[Stage] = []
        self.envs: list[dict[str, str | None]] = []  # per stage: what COPY --from and RUN --mount from= see
        self.uses: list[tuple[dict[str, None], dict[int, None]]] = []  # per stage: images and stages it uses
        self.refs: dict[tuple[int, int], str] = {}  # (instruction, flag index or -1 for FROM) -> image reference
        self.from_lines = [ins.line for ins in self.instrs if ins.name == "FROM"]
        self.names: dict[str, int] = {}  # every stage's name, to tell a later stage from an image
        for index, args in enumerate(ins.args for ins in self.instrs if ins.name == "FROM"):
            words = _words(_split_flags(args, self.escape)[1], self.escape)
            if len(words) == 3:
                self.names.setdefault(words[2].lower(), index)
        for n, ins in enumerate(self.instrs):
            try:
                self._instruction(n, ins)
            except _Bad as exc:
                raise ContainerfileError(f"{path}:{ins.line}: {exc}") from None
        if not self.stages:
            raise ContainerfileError(f"{path}: no FROM instruction; a Containerfile needs at least one stage")

    def _instruction(self, n: int, ins: _Instr) -> None:
        if ins.name not in _INSTRUCTIONS:
            raise _Bad(f"unknown instruction {ins.word}")
        if ins.name == "FROM":
            self._from(n, ins)
        elif not self.stages:
            if ins.name != "ARG":
                raise _Bad(f"{ins.name} before the first FROM; only ARG may come before it")
            self._arg(ins, self.genv, self.global_args)
        elif ins.name == "ARG":
            self._arg(ins, self.envs[-1], {})
        elif ins.name in ("COPY", "ADD", "RUN"):
            self._flags(n, ins)

    def _arg(self, ins: _Instr, env: dict[str, str | None], declared: dict[str, str | None]) -> None:
        for word in _words(ins.args, self.escape) or [""]:
            name, eq, default = word.partition("=")
            if not name:
                raise _Bad(f"ARG {word}: a name is needed (ARG NAME or ARG NAME=default)")
            if name in self.build_args:
                env[name] = self.build_args[name]
            else:
                env[name] = _expand(default, env, self.escape)[0] if eq else env.get(name)
            declared[name] = env[name]

    def _from(self, n: int, ins: _Instr) -> None:
        flags, rest = _split_flags(ins.args, self.escape)
        platform: str | None = None
        for flag in flags:
            key, _, raw = _expand(flag, None, self.escape)[0][2:].partition("=")
            if key != "platform":
                raise _Bad(f"FROM does not take --{key}; only --platform=VALUE")
            platform, missing = _expand(raw, self.genv, self.escape)
            if not platform:
                raise _Bad(_no_value(f"FROM --platform={raw}", missing) if raw else "FROM --platform needs a value")
        words = _words(rest, self.escape)
        if not words:
            raise _Bad("FROM needs an image: FROM [--platform=PLATFORM] IMAGE [AS NAME]")
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise _Bad(f"FROM {rest}: expected FROM [--platform=PLATFORM] IMAGE [AS NAME]")
        name = words[2].lower() if len(words) == 3 else None
        if name is not None and not _STAGE_NAME.fullmatch(name):
            raise _Bad(f"invalid stage name {words[2]!r}: a letter, then letters, digits, '-', '_' or '.'")
        if name is not None and (same := [s.line for s in self.stages if s.name == name]):
            raise _Bad(f"duplicate stage name {name!r}, already used at line {same[0]}")
        base, missing = _expand(words[0], self.genv, self.escape)
        if not base:
            raise _Bad(_no_value(f"FROM {words[0]}", missing))
        index = len(self.stages)
        base_stage = self._stage(f"FROM {words[0]}", base, index, numeric=False)
        if base_stage is None and base.lower() != "scratch":
            self.refs[(n, -1)] = base
        self.stages.append(Stage(index, name, base, base_stage, platform, ins.line, (), ()))
        self.envs.append(dict(self.genv))
        self.uses.append(({}, {} if base_stage is None else {base_stage: None}))

    def _flags(self, n: int, ins: _Instr) -> None:
        images, deps = self.uses[-1]
        for i, flag in enumerate(_split_flags(ins.args, self.escape)[0]):
            key, eq, value = _expand(flag, None, self.escape)[0][2:].partition("=")
            if key == "from" and ins.name != "RUN":
                if ins.name == "ADD" or not eq:
                    raise _Bad("ADD does not take --from; use COPY --from=..." if ins.name == "ADD"
                               else "COPY --from needs a value: --from=STAGE or --from=IMAGE")
                what = f"COPY --from={value}"
            elif key == "mount" and ins.name == "RUN":
                fields = {k.strip().lower(): v for k, _, v in (f.partition("=") for f in value.split(","))}
                if "from" not in fields or fields.get("type", "bind") not in ("bind", "cache"):
                    continue
                value, what = fields["from"], f"RUN --mount from={fields['from']}"
            else:
                continue
            ref, missing = _expand(value, self.envs[-1], self.escape)
            if not ref:
                raise _Bad(_no_value(what, missing))
            stage = self._stage(what, ref, len(self.stages) - 1, numeric=True)
            if stage is not None:
                deps[stage] = None
            elif ref.lower() != "scratch":
                images[ref] = None
                self.refs[(n, i)] = ref

    def _stage(self, what: str, ref: str, current: int, *, numeric: bool) -> int | None:
        """The index of the stage `ref` names, None when it is an image; an error when not an earlier stage."""
        index = int(ref) if numeric and ref.isascii() and ref.isdigit() else self.names.get(ref.lower())
        if index is None or index < current:
            return index
        if index == current:
            raise _Bad(f"{what} refers to its own stage; only earlier stages can be used")
        if index >= len(self.from_lines):
            raise _Bad(f"{what}: there is no stage {index} (stages are numbered from 0)")
        raise _Bad(f"{what} refers to a later stage (line {self.from_lines[index]}); only earlier ones can be used")


def parse_containerfile(text: str, *, path: str = "Containerfile", build_args: Mapping[str, str] | None = None,
                        target: str | None = None, platform: str | None = None) -> Containerfile:
    """Parse `text`; `build_args` are --build-arg values, `platform` the target platform (default: the host's)."""
    analysis = _Analysis(text, path, build_args, platform)
    index = len(analysis.stages) - 1
    if target is not None:
        named = {s.name: s.index for s in analysis.stages if s.name is not None}
        if target.lower() not in named:
            raise ContainerfileError(f"{path}: no stage named {target!r} to build (stages: {', '.join(named) or '-'})")
        index = named[target.lower()]
    stages = tuple(replace(s, copy_from=tuple(images), stage_deps=tuple(deps))
                   for s, (images, deps) in zip(analysis.stages, analysis.uses, strict=True))
    return Containerfile(path, stages, tuple(analysis.global_args.items()), index)


def _rewrite(n: int, ins: _Instr, analysis: _Analysis, pins: Mapping[str, str]) -> str | None:
    """The instruction on one line with its references pinned, None when it has none to pin."""
    flags, rest = _split_flags(ins.args, analysis.escape)
    if ins.name == "FROM":
        image = analysis.refs.get((n, -1))
        if image is None or image not in pins:
            return None
        return " ".join([ins.word, *flags, pins[image], *_words(rest, analysis.escape)[1:]])
    pinned = {i: pins[ref] for i in range(len(flags)) if (ref := analysis.refs.get((n, i))) is not None and ref in pins}
    for i, pin in pinned.items():
        key, _, value = _expand(flags[i], None, analysis.escape)[0][2:].partition("=")
        fields = [f"{f.partition('=')[0]}={pin}" if f.partition("=")[0].strip().lower() == "from" else f
                  for f in value.split(",")]  # a RUN --mount's other fields stay as they are
        flags[i] = f"--from={pin}" if key == "from" else "--mount=" + ",".join(fields)
    return " ".join([ins.word, *flags, *([rest] if rest else [])]) if pinned else None


def pin_references(text: str, pins: Mapping[str, str], *, build_args: Mapping[str, str] | None = None,
                   path: str = "Containerfile", platform: str | None = None) -> str:
    """Return the Containerfile with every FROM whose substituted reference is a key of `pins` rewritten to
    `FROM [--platform=P] PINNED [AS name]` (PINNED literal; the --platform flag and the name as written), and
    every `COPY --from=REF` and `RUN --mount=...,from=REF` whose REF is a key rewritten to PINNED. Other lines
    are kept byte for byte and no line moves: a rewritten instruction that spanned several physical lines
    becomes one line followed by empty ones, so build errors still point at the user's line numbers.
    `build_args` and `platform` substitute as in :func:`parse_containerfile`."""
    analysis = _Analysis(text, path, build_args, platform)
    lines = analysis.lines
    for n, ins in enumerate(analysis.instrs):
        new = _rewrite(n, ins, analysis, pins)
        if new is None:
            continue
        first = lines[ins.line - 1]
        indent = first[: len(first) - len(first.lstrip())]
        for k in range(ins.line - 1, ins.end):
            lines[k] = (indent + new if k == ins.line - 1 else "") + ("\r" if lines[k].endswith("\r") else "")
    return ("\ufeff" if text.startswith("\ufeff") else "") + "\n".join(lines)
