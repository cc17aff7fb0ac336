"""Go binaries found by content through the inventory core: wherever they are, executable ELF only, size-capped."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from tests.support.ocibuild import Entry, hardlink, whiteout, write_layout
from tests.unit.catalog.test_golang import MODINFO, elf, inline_buildinfo

from patchline import Ecosystem, Inventory
from patchline.catalog.golang import GoBinaryCataloger
from patchline.catalog.interface import ContentMatch
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.inventory import scan_image
from patchline.inventory._cache import fingerprint
from patchline.inventory._tar import TarReader
from patchline.inventory._walk import Matcher, walk_layer
from patchline.oci._layout import LayoutSource

APP = elf([(".go.buildinfo", inline_buildinfo("go1.19.8", MODINFO))])
TOOL = elf([(".go.buildinfo", inline_buildinfo("go1.21.5", "path\ttool\n"))])
NOT_GO = elf([(".text", b"\xc3" * 64)])


def exe(path: str, data: bytes) -> Entry:
    return Entry(path, data, mode=0o755)


def scan(root: Path) -> Inventory:
    with LayoutSource(root) as source:
        return scan_image(source, catalogers=DEFAULT_CATALOGERS)


def go_packages(inv: Inventory) -> set[tuple[str, str, str, str]]:
    return {(p.name, p.version, p.purl, ",".join(p.locations)) for p in inv.packages if p.ecosystem is Ecosystem.GOLANG}


def test_go_binaries_anywhere_with_purls_and_one_package_per_binary(tmp_path: Path) -> None:
    write_layout(tmp_path, [[
        exe("ko-app/server", APP),
        exe("usr/local/bin/tool", TOOL),
        Entry("srv/data/server.copy", APP, mode=0o644),  # not executable: not a program that runs
        exe("usr/bin/not-go", NOT_GO),
        exe("usr/local/bin/run.sh", b"#!/bin/sh\nexec /ko-app/server\n"),
        hardlink("usr/local/bin/server", "ko-app/server"),
    ]])
    inv = scan(tmp_path)
    assert go_packages(inv) == {
        ("stdlib", "1.19.8", "pkg:golang/stdlib@1.19.8", "/ko-app/server"),
        ("example.com/app", "(devel)", "pkg:golang/example.com/app@%28devel%29", "/ko-app/server"),
        ("example.com/dep", "(devel)", "pkg:golang/example.com/dep@%28devel%29", "/ko-app/server"),
        ("golang.org/x/net", "v0.7.0", "pkg:golang/golang.org/x/net@v0.7.0", "/ko-app/server"),
        ("golang.org/x/text", "v0.3.6", "pkg:golang/golang.org/x/text@v0.3.6", "/ko-app/server"),
        ("stdlib", "1.19.8", "pkg:golang/stdlib@1.19.8", "/usr/local/bin/server"),
        ("example.com/app", "(devel)", "pkg:golang/example.com/app@%28devel%29", "/usr/local/bin/server"),
        ("example.com/dep", "(devel)", "pkg:golang/example.com/dep@%28devel%29", "/usr/local/bin/server"),
        ("golang.org/x/net", "v0.7.0", "pkg:golang/golang.org/x/net@v0.7.0", "/usr/local/bin/server"),
        ("golang.org/x/text", "v0.3.6", "pkg:golang/golang.org/x/text@v0.3.6", "/usr/local/bin/server"),
        ("stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5", "/usr/local/bin/tool"),
    }
    replaced = [p for p in inv.packages if p.name == "example.com/dep"]
    assert {(p.source_name, p.source_version) for p in replaced} == {("./dep", "(devel)")}
    assert inv.skipped == ()


def test_non_go_executables_leave_no_trace_in_the_layer_catalog(tmp_path: Path) -> None:
    write_layout(tmp_path, [[exe("usr/bin/not-go", NOT_GO), exe("usr/bin/go-tool", TOOL)]])
    inv = scan(tmp_path)
    assert {p.locations for p in inv.packages} == {("/usr/bin/go-tool",)}


def test_a_binary_replaced_or_deleted_in_a_later_layer(tmp_path: Path) -> None:
    write_layout(tmp_path, [
        [exe("usr/local/bin/tool", APP), exe("usr/local/bin/gone", TOOL)],
        [exe("usr/local/bin/tool", TOOL), whiteout("usr/local/bin/gone")],
    ])
    inv = scan(tmp_path)
    assert {(p.name, p.version, p.introduced_in, p.changed_in) for p in inv.packages} == {
        ("stdlib", "1.21.5", 0, 1)}


def test_a_truncated_go_binary_is_a_skip_and_the_scan_goes_on(tmp_path: Path) -> None:
    write_layout(tmp_path, [[exe("app/broken", APP[:0x100]), exe("app/ok", TOOL)]])
    inv = scan(tmp_path)
    assert [(p.name, p.locations) for p in inv.packages] == [("stdlib", ("/app/ok",))]
    assert [(s.path, s.cataloger) for s in inv.skipped] == [("/app/broken", "go-module-binary-cataloger")]
    assert inv.skipped[0].reason.startswith("truncated ELF")


class _CountingReader(io.RawIOBase):
    """A file read through ``read``/``readinto`` that remembers the largest single read."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb", buffering=0)
        self.largest = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.largest = max(self.largest, len(buffer))
        return self._file.readinto(buffer)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._file.close()
        super().close()


def test_a_2_gb_sparse_executable_is_skipped_by_size_without_being_read(tmp_path: Path) -> None:
    size = 2 << 30
    info = tarfile.TarInfo("usr/local/bin/huge")
    info.size = size
    info.mode = 0o755
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    layer = tmp_path / "layer.tar"
    with layer.open("wb") as fh:  # header, "\x7fELF", then a hole: the file takes a few kB on disk
        fh.write(header + b"\x7fELF\x02\x01\x01")
        fh.seek(len(header) + size)
        fh.write(bytes(1024))
    raw = _CountingReader(layer)
    with io.BufferedReader(raw, buffer_size=1 << 16) as stream:
        catalog = walk_layer(stream, diff_id="sha256:" + "0" * 64, matcher=Matcher([GoBinaryCataloger()]))
    assert [(f.path, f.error) for f in catalog.files] == [
        ("/usr/local/bin/huge", f"file is {size} bytes, over the {GoBinaryCataloger.max_file_size} byte limit")]
    assert raw.largest <= 1 << 20  # streamed through in chunks, never held


def test_peek_then_read_or_skip() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in [("a", b"\x7fELF" + b"x" * 600, 0o755), ("b", b"\x7fELFyy", 0o700), ("c", b"z", 0)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    reader = TarReader(io.BufferedReader(io.BytesIO(buf.getvalue())))  # type: ignore[arg-type]
    seen = []
    for entry in reader:
        head = reader.peek(4)
        seen.append((entry.name, oct(entry.mode), head, reader.read_data() if entry.name != "b" else b""))
    assert seen == [("a", "0o755", b"\x7fELF", b"\x7fELF" + b"x" * 600), ("b", "0o700", b"\x7fELF", b""),
                    ("c", "0o0", b"z", b"z")]


def test_a_content_match_must_narrow_something() -> None:
    with pytest.raises(ValueError, match="would match all"):
        ContentMatch()
    with pytest.raises(ValueError, match="empty magic"):
        ContentMatch(magic=(b"",))


def test_the_cache_fingerprint_covers_what_a_cataloger_wants_by_content() -> None:
    class ElfAnywhere(GoBinaryCataloger):
        content = ContentMatch(magic=(b"\x7fELF",))  # executable or not

    assert fingerprint([GoBinaryCataloger()]) != fingerprint([ElfAnywhere()])
