"""Compose per-layer catalogs into the packages of the squashed image.

Layers are applied bottom up, as an overlay filesystem would: a layer's
whiteouts and opaque directories hide what the layers below put there, then its
own files replace any lower file at the same path. After each layer the
package set of the view so far is compared with the one before, which gives
each package the layer that introduced it and the layer that last changed it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from packageurl import PackageURL

from patchline._model import Distro, Ecosystem, Package, Purl, Skipped
from patchline.catalog.interface import Found
from patchline.inventory._walk import OS_RELEASE_PATHS, CatalogedFile, LayerCatalog

_PackageKey = tuple[str, str, str, str]  # ecosystem, name, arch, scope


@dataclass(frozen=True, slots=True)
class Composed:
    packages: tuple[Package, ...]
    skipped: tuple[Skipped, ...]
    distro: Distro | None
    system_files: tuple[tuple[str, str], ...]  # (path, text), symlinks resolved


def _is_under(path: str, directory: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory + "/")


def _scope(found: Found, path: str) -> str:
    # OS packages live in one database per image; language packages are distinct
    # per install root (two venvs may hold two versions of the same name).
    if found.ecosystem.is_os:
        return ""
    if found.ecosystem is Ecosystem.MAVEN:
        return path  # every archive is its own install, nested ones too
    if found.ecosystem is Ecosystem.GOLANG:
        return path  # every binary embeds its own modules and toolchain
    if found.ecosystem is Ecosystem.CARGO:
        return f"{path}@{found.version}"  # a binary can link two semver-incompatible versions of a crate
    if found.ecosystem is Ecosystem.GEM:
        return path  # one GEM_HOME holds every version installed, one gemspec each
    if found.ecosystem is Ecosystem.GENERIC:
        return _install_prefix(path)  # /usr/local/bin/python3.11 and /usr/local/lib/libpython3.11.so: one python
    return posixpath.dirname(posixpath.dirname(path))


def _install_prefix(path: str) -> str:
    """``/opt/node/bin/node`` -> ``/opt/node``; a file in no bin/lib/include directory -> its directory."""
    for marker in ("/bin/", "/lib/", "/lib64/", "/include/"):
        at = path.find(marker)
        if at >= 0:
            return path[:at] or "/"
    return posixpath.dirname(path)


def _location(found: Found, path: str) -> str:
    return f"{path}!/{found.archive_path}" if found.archive_path else path


def _declaring_file(location: str) -> str:
    return location.partition("!/")[0]


def _is_ownership_only(found: Found) -> bool:
    return found.version == "" and bool(found.owned_paths)


def _view_packages(view: dict[str, tuple[int, CatalogedFile]]) -> dict[_PackageKey, tuple[Found, list[str], str]]:
    """Package key -> (record, declaring paths, cataloger) for the current view."""
    packages: dict[_PackageKey, tuple[Found, list[str], str]] = {}
    for path in sorted(view):
        _, cataloged = view[path]
        if cataloged.result is None:
            continue
        for found in cataloged.result.packages:
            if _is_ownership_only(found):
                continue
            location = _location(found, path)
            key = (found.ecosystem.value, found.name, found.arch or "", _scope(found, location))
            if key in packages:
                packages[key][1].append(location)
            else:
                packages[key] = (found, [location], cataloged.cataloger)
    return packages


def _resolve_link(view: dict[str, tuple[int, CatalogedFile]], path: str) -> CatalogedFile | None:
    for _ in range(8):
        entry = view.get(path)
        if entry is None:
            return None
        cataloged = entry[1]
        if cataloged.kind != "symlink" or not cataloged.link:
            return cataloged
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), cataloged.link))
    return None


def parse_os_release(text: str) -> Distro | None:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    if "ID" not in values:
        return None
    return Distro(
        id=values["ID"],
        version_id=values.get("VERSION_ID"),
        version_codename=values.get("VERSION_CODENAME"),
        pretty_name=values.get("PRETTY_NAME"),
        id_like=tuple(values.get("ID_LIKE", "").split()),
    )


def make_purl(found: Found, distro: Distro | None) -> Purl:
    qualifiers: dict[str, str] = {}
    namespace: str | None = None
    name = found.name
    version = found.version
    if found.ecosystem.is_os:
        namespace = distro.id if distro else None
        if found.arch:
            qualifiers["arch"] = found.arch
        if distro:
            qualifiers["distro"] = f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id
        if found.ecosystem is Ecosystem.RPM and ":" in version:
            epoch, _, version = version.partition(":")
            qualifiers["epoch"] = epoch
        if found.source_name and (found.source_name != found.name or
                                  (found.source_version and found.source_version != found.version)):
            upstream = found.source_name
            if found.source_version and found.source_version != found.version:
                upstream += f"@{found.source_version}"
            qualifiers["upstream"] = upstream
    elif found.ecosystem is Ecosystem.NPM and name.startswith("@") and "/" in name:
        namespace, _, name = name.partition("/")
    elif found.ecosystem is Ecosystem.PYPI:
        name = name.lower().replace("_", "-").replace(".", "-")
    elif found.ecosystem is Ecosystem.GOLANG and "/" in name:
        namespace, _, name = name.rpartition("/")  # github.com/foo/bar: namespace github.com/foo
    elif found.ecosystem is Ecosystem.MAVEN and ":" in name:
        namespace, _, name = name.partition(":")  # GROUP:ARTIFACT
    elif found.ecosystem is Ecosystem.GEM and found.arch:
        qualifiers["platform"] = found.arch  # nokogiri-1.15.4-x86_64-linux; purl's default is "ruby"
    purl = PackageURL(
        type=found.ecosystem.value,
        namespace=namespace,
        name=name,
        version=version or None,
        qualifiers=qualifiers or None,
    )
    return Purl(purl.to_string())


def compose(layers: Sequence[LayerCatalog]) -> Composed:
    view: dict[str, tuple[int, CatalogedFile]] = {}
    skipped: list[Skipped] = []
    introduced: dict[_PackageKey, int] = {}
    changed: dict[_PackageKey, int] = {}
    previous: dict[_PackageKey, Found] = {}
    for index, layer in enumerate(layers):
        for path, reason in layer.problems:
            skipped.append(Skipped(path=path, reason=reason, layer=index))
        hidden = [*layer.opaque_dirs, *layer.whiteouts]
        if hidden:
            for path in [p for p in view if any(_is_under(p, h) for h in hidden)]:
                del view[path]
        for cataloged in layer.files:
            if cataloged.kind in ("file", "hardlink", "symlink"):
                for path in [p for p in view if p.startswith(cataloged.path + "/")]:
                    del view[path]
            view[cataloged.path] = (index, cataloged)
        current = {key: value[0] for key, value in _view_packages(view).items()}
        for key, found in current.items():
            before = previous.get(key)
            if before is None:
                introduced[key] = index
                changed[key] = index
            elif before != found:
                changed[key] = index
        previous = current

    final = _view_packages(view)
    distro = None
    for candidate in OS_RELEASE_PATHS:
        release = _resolve_link(view, candidate)
        if release is not None and release.text is not None:
            distro = parse_os_release(release.text)
            if distro:
                break

    owned: set[str] = set()
    for _, cataloged in view.values():
        if cataloged.result is not None:
            for found in cataloged.result.packages:
                if found.ecosystem.is_os:
                    owned.update(found.owned_paths)

    packages: list[Package] = []
    for key, (found, paths, cataloger) in final.items():
        if not found.ecosystem.is_os and owned and any(
            f in owned or posixpath.dirname(f) in owned for f in map(_declaring_file, paths)
        ):
            continue
        packages.append(
            Package(
                ecosystem=found.ecosystem,
                name=found.name,
                version=found.version,
                purl=make_purl(found, distro),
                introduced_in=introduced[key],
                changed_in=changed[key],
                locations=tuple(paths),
                source_name=found.source_name,
                source_version=found.source_version,
                arch=found.arch,
                licenses=found.licenses,
                cataloger=cataloger,
            )
        )
    for path, (index, cataloged) in sorted(view.items()):
        if cataloged.error:
            skipped.append(Skipped(path=path, reason=cataloged.error, cataloger=cataloged.cataloger, layer=index))
        elif cataloged.result is not None:
            for reason in cataloged.result.skipped:
                skipped.append(Skipped(path=path, reason=reason, cataloger=cataloged.cataloger, layer=index))
    packages.sort(key=lambda p: (p.ecosystem.value, p.name, p.version, p.arch or "", p.locations))
    system_files = []
    for path in sorted(view):
        if view[path][1].text is not None or view[path][1].kind == "symlink":
            target = _resolve_link(view, path)
            if target is not None and target.text is not None:
                system_files.append((path, target.text))
    return Composed(tuple(packages), tuple(skipped), distro, tuple(system_files))
