"""Which paths an OS package installed are language-package metadata.

OS catalogers (dpkg, apk, rpm) report these in ``Found.owned_paths`` so that the
core does not report a Python or npm package twice when the distribution
shipped it. The form is chosen so the core needs only an exact string match
against a language package's ``locations``:

* every path is absolute and normalised (``/usr/lib/x``, no ``//``, ``/./`` or
  trailing ``/``);
* a listed ``*.dist-info`` directory also yields ``*.dist-info/METADATA``, a
  listed ``*.egg-info`` (file or directory, the list does not say) also yields
  ``*.egg-info/PKG-INFO``: exactly the files the Python cataloger reads;
* ``node_modules/<name>/package.json`` and
  ``node_modules/@scope/<name>/package.json`` are kept as listed;
* Java archives (``*.jar``, ``*.war``, ... as the Java cataloger globs them) are
  kept as listed: Debian installs its jars under ``/usr/share/java``;
* the runtime files the runtime cataloger reads (``bin/python3.X``, ``bin/node``,
  ``libnode.so*``, a JDK's ``release``...) are kept as listed;
* gem specifications (``specifications/*.gemspec``, ``specifications/default/*.gemspec``)
  are kept as listed: Debian installs its ``ruby-*`` gems' under
  ``/usr/share/rubygems-integration``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from patchline.catalog.java import JAVA_ARCHIVE_SUFFIXES
from patchline.catalog.ruby import is_gemspec
from patchline.catalog.runtimes import is_runtime_file

__all__ = ["language_metadata_paths", "normalise_path"]


def normalise_path(path: str) -> str:
    """``./usr//lib/`` -> ``/usr/lib``; ``/.`` (dpkg's first list entry) -> ``/``."""
    norm = posixpath.normpath("/" + path.strip().lstrip("/"))
    # normpath keeps a leading "//" (POSIX allows it to mean something else); we do not.
    return "/" + norm.lstrip("/")


def _is_package_json(path: str) -> bool:
    parts = path.split("/")
    if len(parts) < 4 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return True
    return (
        len(parts) >= 5 and parts[-4] == "node_modules" and parts[-3].startswith("@") and not parts[-2].startswith("@")
    )


def language_metadata_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """The language-package metadata among ``paths``, in the form described above, sorted."""
    owned: set[str] = set()
    for raw in paths:
        path = normalise_path(raw)
        base = posixpath.basename(path)
        parent = posixpath.basename(posixpath.dirname(path))
        if base.endswith(".dist-info"):
            owned.update((path, path + "/METADATA"))
        elif base.endswith(".egg-info"):
            owned.update((path, path + "/PKG-INFO"))
        elif (
            (base == "METADATA" and parent.endswith(".dist-info"))
            or (base == "PKG-INFO" and parent.endswith(".egg-info"))
            or _is_package_json(path)
            or base.endswith(JAVA_ARCHIVE_SUFFIXES)
            or is_runtime_file(path)
            or is_gemspec(path)
        ):
            owned.add(path)
    return tuple(sorted(owned))
