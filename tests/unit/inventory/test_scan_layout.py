"""The inventory core on real OCI layouts with synthetic layers.

Each scenario writes a layout whose layers add, upgrade, delete and hide
package metadata, then checks the squashed package set and the layers that
introduced and last changed each package.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from patchline import Ecosystem, Inventory
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.errors import BlobError, DigestMismatch, LayerError, ManifestError
from patchline.inventory import LayerCache, scan_image
from patchline.oci._layout import LayoutSource
from tests.support.ocibuild import (
    Entry,
    directory,
    file,
    hardlink,
    make_tar,
    opaque,
    symlink,
    whiteout,
    write_layout,
)

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def stanza(name: str, version: str, *, status: str = "install ok installed", source: str | None = None) -> str:
    lines = [f"Package: {name}", f"Status: {status}", "Architecture: amd64", f"Version: {version}"]
    if source:
        lines.append(f"Source: {source}")
    lines.append("Description: test package\n a package for a test")
    return "\n".join(lines) + "\n"


def status(*stanzas: str) -> Entry:
    return file("var/lib/dpkg/status", "\n".join(stanzas))


def metadata(site: str, name: str, version: str) -> Entry:
    return file(f"{site}/{name}-{version}.dist-info/METADATA",
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n\n")


SITE = "opt/app/lib/python3.11/site-packages"


def scan(path: Path, cache: LayerCache | None = None) -> Inventory:
    with LayoutSource(path) as source:
        return scan_image(source, cache=cache)


def by_name(inv: Inventory) -> dict[str, tuple[str, int, int]]:
    return {p.name: (p.version, p.introduced_in, p.changed_in) for p in inv.packages}


def test_introduced_and_changed_layers(tmp_path: Path) -> None:
    write_layout(tmp_path, [
        [file("usr/lib/os-release", OS_RELEASE), symlink("etc/os-release", "../usr/lib/os-release"),
         status(stanza("libc6", "2.36-9"), stanza("liblzma5", "5.4.1-0.2", source="xz-utils"))],
        [status(stanza("libc6", "2.36-9"), stanza("liblzma5", "5.4.1-1", source="xz-utils"),
                stanza("python3", "3.11.2-1"))],
        [metadata(SITE, "urllib3", "1.26.5"), metadata(SITE, "six", "1.16.0")],
        [whiteout(f"{SITE}/urllib3-1.26.5.dist-info"), metadata(SITE, "urllib3", "1.26.6"),
         whiteout(f"{SITE}/six-1.16.0.dist-info")],
    ])
    inv = scan(tmp_path)
    assert by_name(inv) == {
        "libc6": ("2.36-9", 0, 0),
        "liblzma5": ("5.4.1-1", 0, 1),
        "python3": ("3.11.2-1", 1, 1),
        "urllib3": ("1.26.6", 2, 3),
    }
    assert inv.distro is not None and inv.distro.version_codename == "bookworm"
    lzma = next(p for p in inv.packages if p.name == "liblzma5")
    assert lzma.source_name == "xz-utils"
    assert lzma.purl == "pkg:deb/debian/liblzma5@5.4.1-1?arch=amd64&distro=debian-12&upstream=xz-utils"
    urllib3 = next(p for p in inv.packages if p.name == "urllib3")
    assert urllib3.ecosystem is Ecosystem.PYPI
    assert urllib3.locations == (f"/{SITE}/urllib3-1.26.6.dist-info/METADATA",)
    assert [layer.created_by for layer in inv.layers] == ["layer 0", "layer 1", "layer 2", "layer 3"]


def test_removed_deb_is_gone_and_reinstall_is_introduced_again(tmp_path: Path) -> None:
    write_layout(tmp_path, [
        [status(stanza("a", "1"), stanza("b", "1"))],
        [status(stanza("a", "1"), stanza("b", "1", status="deinstall ok config-files"))],
        [status(stanza("a", "1"), stanza("b", "1"))],
    ])
    assert by_name(scan(tmp_path)) == {"a": ("1", 0, 0), "b": ("1", 2, 2)}


def test_opaque_directory_hides_lower_layers_only(tmp_path: Path) -> None:
    write_layout(tmp_path, [
        [metadata(SITE, "old", "1.0"), metadata(SITE, "kept", "1.0")],
        [opaque(SITE), metadata(SITE, "new", "2.0")],
    ])
    assert by_name(scan(tmp_path)) == {"new": ("2.0", 1, 1)}


def test_whiteout_of_a_parent_directory_removes_everything_below(tmp_path: Path) -> None:
    write_layout(tmp_path, [
        [metadata(SITE, "gone", "1.0"), file("srv/node_modules/left-pad/package.json",
                                             '{"name": "left-pad", "version": "1.3.0"}')],
        [whiteout("opt/app")],
    ])
    assert by_name(scan(tmp_path)) == {"left-pad": ("1.3.0", 0, 0)}


def test_python_package_owned_by_a_deb_is_reported_once(tmp_path: Path) -> None:
    dist = "usr/lib/python3/dist-packages"
    write_layout(tmp_path, [[
        status(stanza("python3-six", "1.16.0-4", source="six")),
        file("var/lib/dpkg/info/python3-six.list",
             f"/.\n/usr\n/{dist}\n/{dist}/six-1.16.0.dist-info\n/{dist}/six-1.16.0.dist-info/METADATA\n/{dist}/six.py\n"),
        metadata(dist, "six", "1.16.0"),
        metadata(SITE, "six", "1.16.0"),  # pip-installed in a venv: not owned, reported
    ]])
    inv = scan(tmp_path)
    assert sorted((p.ecosystem.value, p.name, p.locations[0]) for p in inv.packages) == [
        ("deb", "python3-six", "/var/lib/dpkg/status"),
        ("pypi", "six", f"/{SITE}/six-1.16.0.dist-info/METADATA"),
    ]


def test_hostile_paths_are_recorded_as_skips_and_never_followed(tmp_path: Path) -> None:
    write_layout(tmp_path, [[
        file("../../etc/passwd", "root:x:0:0"),
        file("usr/../../escape", "x"),
        file("/var/lib/dpkg/status", stanza("absolute", "1")),
        symlink("etc/os-release", "../../../../etc/os-release"),
        symlink("var/lib/dpkg/status", "/etc/shadow"),
        hardlink("usr/lib/os-release", "does/not/exist"),
        directory("opt"),
    ]])
    inv = scan(tmp_path)
    assert inv.packages == ()
    assert inv.distro is None
    reasons = {s.path: s.reason for s in inv.skipped}
    assert reasons["../../etc/passwd"] == "path escapes the image root"
    assert reasons["usr/../../escape"] == "path escapes the image root"
    assert reasons["/var/lib/dpkg/status"] == "absolute path in a layer"
    assert reasons["/usr/lib/os-release"].startswith("hard link to missing file")


def test_hard_link_to_a_declared_file_is_cataloged(tmp_path: Path) -> None:
    write_layout(tmp_path, [[
        metadata(SITE, "pkg", "1.0"),
        hardlink(f"{SITE}/pkg-1.0.dist-info/../twin-1.0.dist-info/METADATA",
                 f"{SITE}/pkg-1.0.dist-info/METADATA"),
    ]])
    # Both paths declare "pkg"; in the same install root that is one package with two locations.
    inv = scan(tmp_path)
    assert [(p.name, len(p.locations)) for p in inv.packages] == [("pkg", 2)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_layer_compression(tmp_path: Path, compression: str) -> None:
    write_layout(tmp_path, [[status(stanza("a", "1"))], [metadata(SITE, "p", "1")]], compression=compression)
    assert by_name(scan(tmp_path)) == {"a": ("1", 0, 0), "p": ("1", 1, 1)}


def test_multi_member_gzip_layer(tmp_path: Path) -> None:
    tar = make_tar([status(stanza("a", "1")), metadata(SITE, "p", "1")])
    blob = gzip.compress(tar[:1024], mtime=0) + gzip.compress(tar[1024:], mtime=0)
    digests = write_layout(tmp_path, [tar], compression="none")
    _replace_layer_blob(tmp_path, digests["layer0"], blob, media_type="application/vnd.oci.image.layer.v1.tar+gzip")
    assert by_name(scan(tmp_path)) == {"a": ("1", 0, 0), "p": ("1", 0, 0)}


def _replace_layer_blob(root: Path, old: str, blob: bytes, *, media_type: str | None = None) -> None:
    """Swap a layer blob and rewrite manifest/index so the change is consistently addressed."""
    from tests.support.ocibuild import write_blob

    index = json.loads((root / "index.json").read_text())
    mdesc = index["manifests"][0]
    manifest = json.loads((root / "blobs" / "sha256" / mdesc["digest"][7:]).read_bytes())
    new = write_blob(root, blob)
    for layer in manifest["layers"]:
        if layer["digest"] == old:
            layer["digest"], layer["size"] = new, len(blob)
            if media_type:
                layer["mediaType"] = media_type
    data = json.dumps(manifest).encode()
    mdesc["digest"], mdesc["size"] = write_blob(root, data), len(data)
    (root / "index.json").write_text(json.dumps(index))


class _ContentAddressed(LayoutSource):
    """A layout read as a registry is: a blob's digest names its content without reading it."""

    blobs_content_addressed = True


def test_warm_scan_reads_no_layer_where_digests_name_content(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    digests = write_layout(layout, [[status(stanza("a", "1"))], [metadata(SITE, "p", "1")]])
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    cold = scan(layout, cache)
    for i in range(2):
        (layout / "blobs" / "sha256" / digests[f"layer{i}"][7:]).unlink()  # a layer read now would fail
    with _ContentAddressed(layout) as source:
        warm = scan_image(source, cache=cache)
    assert warm == cold


def test_warm_scan_of_a_layout_hashes_each_blob_and_walks_none(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_layout(layout, [[status(stanza("a", "1"))], [metadata(SITE, "p", "1")]])
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    cold = scan(layout, cache)
    seen: list[bool] = []

    class Progress:
        def resolved(self, image: object) -> None: ...
        def layer_started(self, index: int, descriptor: object, *, cached: bool) -> None:
            seen.append(cached)
        def layer_advanced(self, index: int, done: int) -> None: ...
        def layer_finished(self, index: int) -> None: ...

    with LayoutSource(layout) as source:
        warm = scan_image(source, cache=cache, progress=Progress())  # type: ignore[arg-type]
    assert warm == cold and seen == [True, True]


def test_a_lying_diff_id_over_a_warm_cache_is_never_the_cached_clean_layer(tmp_path: Path) -> None:
    """An archive claims the diff_id of a layer the cache knows as clean but carries other files: the real
    contents or an error, never the cached clean layer (before: the clean layer, exit 0)."""
    from tests.support.ocibuild import compress, make_tar, sha256, write_blob

    clean = tmp_path / "clean"
    digests = write_layout(clean, [[status(stanza("a", "1"))]])
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    scan(clean, cache)
    config = json.loads((clean / "blobs" / "sha256" / digests["config"][7:]).read_text())
    evil_blob = compress(make_tar([status(stanza("backdoor", "6.6.6"))]), "gzip")

    # 1. A new blob under its own (honest) digest, the config claiming the clean diff_id.
    lying = tmp_path / "lying"
    shutil.copytree(clean, lying)
    manifest_path = lying / "blobs" / "sha256" / digests["manifest"][7:]
    manifest = json.loads(manifest_path.read_text())
    manifest["layers"][0].update(digest=write_blob(lying, evil_blob), size=len(evil_blob))
    _rewrite(lying, manifest, config)
    with pytest.raises((DigestMismatch, LayerError)):
        scan(lying, cache)

    # 2. The clean blob's name, other bytes in the file.
    renamed = tmp_path / "renamed"
    shutil.copytree(clean, renamed)
    (renamed / "blobs" / "sha256" / digests["layer0"][7:]).write_bytes(evil_blob)
    with pytest.raises((DigestMismatch, BlobError)):
        scan(renamed, cache)
    assert sha256(evil_blob) != digests["layer0"]


def _rewrite(layout: Path, manifest: dict[str, object], config: dict[str, object]) -> None:
    from tests.support.ocibuild import write_blob

    data = json.dumps(config, sort_keys=True).encode()
    manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": write_blob(layout, data), "size": len(data)}
    body = json.dumps(manifest, sort_keys=True).encode()
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=write_blob(layout, body), size=len(body))
    (layout / "index.json").write_text(json.dumps(index))


def test_corrupt_cache_entry_is_a_miss(tmp_path: Path) -> None:
    from patchline.catalog.list import DEFAULT_CATALOGERS

    layout = tmp_path / "layout"
    write_layout(layout, [[status(stanza("a", "1"))]])
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    cold = scan(layout, cache)
    for entry in (tmp_path / "cache").rglob("*.json"):
        entry.write_text('{"format": 1, "diff_id"')
    assert scan(layout, cache) == cold


def test_blob_that_does_not_match_its_digest(tmp_path: Path) -> None:
    digests = write_layout(tmp_path, [[status(stanza("a", "1"))]])
    blob = tmp_path / "blobs" / "sha256" / digests["layer0"][7:]
    data = bytearray(blob.read_bytes())
    data[-9] ^= 0xFF  # inside the gzip trailer: still decodes up to the end, then fails
    blob.write_bytes(bytes(data))
    with pytest.raises((DigestMismatch, LayerError)):
        scan(tmp_path)


def test_truncated_blob(tmp_path: Path) -> None:
    digests = write_layout(tmp_path, [[status(stanza("a", "1")), file("big", b"x" * 100_000)]])
    blob = tmp_path / "blobs" / "sha256" / digests["layer0"][7:]
    blob.write_bytes(blob.read_bytes()[:-50])
    with pytest.raises(BlobError) as info:
        scan(tmp_path)
    assert "truncated" in str(info.value) or "ends inside" in str(info.value)


def test_corrupt_gzip_stream(tmp_path: Path) -> None:
    tar = make_tar([status(stanza("a", "1"))])
    blob = gzip.compress(tar, mtime=0)
    blob = blob[:20] + bytes(b ^ 0x55 for b in blob[20:60]) + blob[60:]
    digests = write_layout(tmp_path, [tar], compression="none")
    _replace_layer_blob(tmp_path, digests["layer0"], blob, media_type="application/vnd.oci.image.layer.v1.tar+gzip")
    with pytest.raises(LayerError):
        scan(tmp_path)


def test_layer_whose_content_does_not_match_its_diff_id(tmp_path: Path) -> None:
    tar = make_tar([status(stanza("a", "1"))])
    other = make_tar([status(stanza("a", "2"))])
    digests = write_layout(tmp_path, [tar], compression="none")
    _replace_layer_blob(tmp_path, digests["layer0"], other)
    with pytest.raises(DigestMismatch, match="diff_id"):
        scan(tmp_path)


def test_not_a_tar_stream(tmp_path: Path) -> None:
    digests = write_layout(tmp_path, [[status(stanza("a", "1"))]], compression="none")
    _replace_layer_blob(tmp_path, digests["layer0"], b"this is not a tar archive" * 40)
    with pytest.raises(LayerError, match="tar"):
        scan(tmp_path)


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    write_layout(tmp_path, [[status(stanza("a", "1"))]])
    index = json.loads((tmp_path / "index.json").read_text())
    from tests.support.ocibuild import write_blob

    bad = b"<html>not a manifest</html>"
    index["manifests"][0].update(digest=write_blob(tmp_path, bad), size=len(bad))
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ManifestError, match="not valid JSON"):
        scan(tmp_path)


def test_one_unparsable_file_is_a_skip_and_the_scan_goes_on(tmp_path: Path) -> None:
    write_layout(tmp_path, [[
        status(stanza("a", "1")),
        file("srv/node_modules/broken/package.json", b"\xff\xfe{not json"),
        file("srv/node_modules/ok/package.json", '{"name": "ok", "version": "1.0.0"}'),
    ]])
    inv = scan(tmp_path)
    assert {p.name for p in inv.packages} == {"a", "ok"}
    assert [s.path for s in inv.skipped] == ["/srv/node_modules/broken/package.json"]


def test_layout_copied_elsewhere_gives_the_same_inventory(tmp_path: Path) -> None:
    write_layout(tmp_path / "a", [[status(stanza("a", "1"))]])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert scan(tmp_path / "a").packages == scan(tmp_path / "b").packages


@pytest.mark.parametrize("compress", [False, True])
def test_oci_archive_with_parallel_layer_reads(tmp_path: Path, compress: bool) -> None:
    import tarfile

    write_layout(tmp_path / "layout", [
        [status(stanza("a", "1"))], [metadata(SITE, "p", "1")], [metadata(SITE, "q", "2"), file("pad", b"z" * 50_000)],
    ])
    archive = tmp_path / ("image.tar.gz" if compress else "image.tar")
    with tarfile.open(archive, "w:gz" if compress else "w") as tar:
        tar.add(tmp_path / "layout", arcname=".")
    with LayoutSource(archive, archive=True) as source:
        parallel = scan_image(source, jobs=3)
    assert by_name(parallel) == {"a": ("1", 0, 0), "p": ("1", 1, 1), "q": ("2", 2, 2)}
    assert parallel.packages == scan(tmp_path / "layout").packages


def test_concurrent_scans_share_one_cache(tmp_path: Path) -> None:
    """Four processes scan at once into one empty cache: same inventories, no partial entries."""
    import subprocess
    import sys

    write_layout(tmp_path / "layout", [[status(stanza("a", "1"))], [metadata(SITE, "p", "1")]])
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from patchline.catalog.list import DEFAULT_CATALOGERS\n"
        "from patchline.inventory import LayerCache, scan_image\n"
        "from patchline.oci._layout import LayoutSource\n"
        "with LayoutSource(sys.argv[1]) as s:\n"
        "    inv = scan_image(s, cache=LayerCache(Path(sys.argv[2]), DEFAULT_CATALOGERS))\n"
        "print(json.dumps(sorted((p.name, p.version, p.introduced_in) for p in inv.packages)))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "layout"), str(tmp_path / "cache")],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = {p.communicate()[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert outputs == {'[["a", "1", 0], ["p", "1", 1]]\n'}
    entries = list((tmp_path / "cache").rglob("*"))
    assert not [e for e in entries if e.name.startswith(".tmp-")]
    assert len([e for e in entries if e.suffix == ".json"]) == 2


def test_system_files_are_kept_with_symlinks_resolved(tmp_path: Path) -> None:
    from patchline.sbom import load_inventory_json, render_sbom

    sources = "deb http://mirror.invalid/debian bookworm main\n"
    write_layout(tmp_path, [[
        file("usr/lib/os-release", OS_RELEASE), symlink("etc/os-release", "../usr/lib/os-release"),
        file("etc/apt/sources.list", sources),
        file("etc/apt/sources.list.d/extra.sources", "Types: deb\nURIs: http://x.invalid/\nSuites: a\n"),
        file("etc/apt/sources.list.d/ignored.txt", "not a source file"),
    ], [whiteout("etc/apt/sources.list.d/extra.sources")]])
    inv = scan(tmp_path)
    assert inv.system_file("/etc/apt/sources.list") == sources
    assert inv.system_file("/etc/os-release") == OS_RELEASE
    assert [p for p, _ in inv.system_files] == ["/etc/apt/sources.list", "/etc/os-release", "/usr/lib/os-release"]
    assert load_inventory_json(render_sbom(inv, "json")).system_files == inv.system_files
