"""Runtimes installed by hand (official python, node, openjdk, golang images): found by their files.

No package database records a CPython built into ``/usr/local`` or a ``node``
unpacked from a tarball; the version is read from the files themselves, as
Syft's binary classifiers do:

* CPython: ``bin/python3.X`` or ``libpython3.X.so*`` holds ``PY_VERSION`` as a
  NUL-terminated string (``3.11.7``), the minor version from the file name;
  ``pkg:generic/python@3.11.7``;
* Node.js: the ``node`` binary, or ``libnode.so*`` beside a small one (Debian's
  split build), holds ``node.js/v18.19.0``; ``pkg:generic/node@18.19.0``;
* a JDK or JRE: its ``release`` file, ``JAVA_VERSION="17.0.9"``;
  ``pkg:generic/openjdk@17.0.9``;
* the Go toolchain: ``go/VERSION`` (``go1.21.5``) is the standard library it
  compiles into programs, ``pkg:golang/stdlib@1.21.5``.

The same files installed by a dpkg, rpm or apk package are that package's:
:func:`is_runtime_file` lets the OS catalogers claim them (``_ownership``).
"""

from __future__ import annotations

import posixpath
import re

from patchline._model import Ecosystem
from patchline.catalog.golang import stdlib_version
from patchline.catalog.interface import FileResult, Found

__all__ = ["RuntimeCataloger", "is_runtime_file"]

# The globs' file names, as regexes over the base name (the minor version captured where there is one).
_PYTHON_BIN = re.compile(r"python3\.[^/]{1,2}")
_PYTHON_LIB = re.compile(r"libpython3\..*\.so.*")
_PYTHON_MINOR = re.compile(r"(?:lib)?python(3\.\d{1,2})(?:\.so|$)")
_NODE_VERSION = re.compile(rb"node\.js/v(\d+\.\d+\.\d+)")
_JAVA_VERSION = re.compile(rb'^JAVA_VERSION="([^"\n]+)"', re.MULTILINE)
_RELEASE_MAX = 64 * 1024  # a JDK's release file is a few hundred bytes; other files named "release" are not read


def _python_version(minor: str, data: bytes) -> str | None:
    m = re.search(rb"\x00(" + re.escape(minor.encode()) + rb"\.\d+(?:(?:a|b|rc)\d+)?\+?)\x00", data)
    return m.group(1).decode() if m else None


def is_runtime_file(path: str) -> bool:
    """Whether the runtime cataloger reads this absolute path (exactly what its globs match)."""
    base = posixpath.basename(path)
    parent = posixpath.basename(posixpath.dirname(path))
    if parent == "bin" and (_PYTHON_BIN.fullmatch(base) or base == "node"):
        return True
    if _PYTHON_LIB.fullmatch(base) or base.startswith("libnode.so"):
        return True
    return base == "release" or (base == "VERSION" and parent == "go")


class RuntimeCataloger:
    """CPython, Node.js, JDK/JRE and Go toolchains installed outside a package manager."""

    name = "runtime-binary-cataloger"
    version = "1"
    globs = (
        "**/bin/python3.?",
        "**/bin/python3.??",
        "**/libpython3.*.so*",
        "**/bin/node",
        "**/libnode.so*",
        "**/release",
        "**/go/VERSION",
    )
    max_file_size = 256 << 20  # a static node binary is ~100 MB

    def parse(self, path: str, data: bytes) -> FileResult:
        base = posixpath.basename(path)
        if base == "release":
            return _java(data)
        if base == "VERSION":
            line = data[:256].split(b"\n", 1)[0].decode("ascii", "replace").strip()
            version = stdlib_version(line)
            if version is None:
                return FileResult(skipped=(f"Go toolchain version {line!r} is not a release",))
            return FileResult((Found(Ecosystem.GOLANG, "stdlib", version),))
        if base.startswith(("python", "libpython")):
            minor = _PYTHON_MINOR.match(base)
            found = _python_version(minor.group(1), data) if minor else None
            if found is None:
                # A python3.X that is a shell wrapper or a stub: nothing to say, and nothing wrong.
                return FileResult()
            return FileResult((Found(Ecosystem.GENERIC, "python", found),))
        m = _NODE_VERSION.search(data)
        if m is None:
            return FileResult()  # Debian's small node binary: the version is in libnode.so beside it
        return FileResult((Found(Ecosystem.GENERIC, "node", m.group(1).decode()),))


def _java(data: bytes) -> FileResult:
    if len(data) > _RELEASE_MAX:
        return FileResult()
    m = _JAVA_VERSION.search(data)
    if m is None:
        return FileResult()
    return FileResult((Found(Ecosystem.GENERIC, "openjdk", m.group(1).decode("utf-8", "replace")),))
