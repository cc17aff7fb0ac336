"""Package catalogers: declare the files they want, parse their bytes (STYLE.md 3).

``DEFAULT_CATALOGERS`` is the one registry; ``catalogers_by_name`` picks from it.
A ``Found`` with ``version == ""`` is an ownership-only record (from dpkg's
``info/*.list``): it names no installed package, only the language-package
metadata paths that package owns.
"""

from __future__ import annotations

from patchline.catalog.apk import ApkCataloger
from patchline.catalog.dpkg import DpkgCataloger
from patchline.catalog.interface import Cataloger, CatalogError, FileResult, Found
from patchline.catalog.java import JavaCataloger
from patchline.catalog.list import DEFAULT_CATALOGERS, catalogers_by_name
from patchline.catalog.npm import NpmCataloger
from patchline.catalog.python import PythonCataloger
from patchline.catalog.rpm import RpmCataloger

__all__ = [
    "DEFAULT_CATALOGERS",
    "ApkCataloger",
    "CatalogError",
    "Cataloger",
    "DpkgCataloger",
    "FileResult",
    "Found",
    "JavaCataloger",
    "NpmCataloger",
    "PythonCataloger",
    "RpmCataloger",
    "catalogers_by_name",
]
