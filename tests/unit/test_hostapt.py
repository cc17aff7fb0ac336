"""host_debian_mirror: the host's Debian mirror from its apt sources, both formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchline._hostapt import HostDebianMirror, host_debian_mirror
from patchline.errors import ConfigError

# Shaped like a stock Debian 12 host plus two third-party repositories.
DEB822_DEBIAN = """\
Types: deb
# a comment line, as stock images carry one above URIs
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

DEB822_THIRD_PARTY = """\
Types: deb
URIs: https://nodes.example/node_20.x
Suites: nodistro
Components: main
"""

ONE_LINE_DEBIAN = """\
# a comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib
deb http://one.example/debian-security bookworm-security main # trailing
"""


def _etc_apt(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "sources.list.d").mkdir(exist_ok=True)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "sources.list.d/debian.sources": DEB822_DEBIAN,
                "sources.list.d/nodesource.sources": DEB822_THIRD_PARTY,
                "sources.list.d/cloud.list": "deb https://cloud.example/apt cloud-sdk-bookworm main\n",
            },
            HostDebianMirror("http://mirror.example/debian", "http://mirror.example/debian-security"),
            id="deb822-with-third-party",
        ),
        pytest.param(
            {"sources.list": ONE_LINE_DEBIAN},
            HostDebianMirror("http://one.example/debian", "http://one.example/debian-security"),
            id="one-line-with-options",
        ),
        pytest.param(
            {
                "sources.list": "deb http://old.example/debian bookworm main\n"
                "deb http://old.example/security bookworm/updates main\n"
            },
            HostDebianMirror("http://old.example/debian", "http://old.example/security"),
            id="one-line-legacy-security-suite",
        ),
        pytest.param(
            {
                "sources.list": "deb http://first.example/debian bookworm main\n",
                "sources.list.d/debian.sources": DEB822_DEBIAN,
            },
            HostDebianMirror("http://first.example/debian", "http://mirror.example/debian-security"),
            id="sources-list-read-first",
        ),
        pytest.param(
            {
                "sources.list.d/debian.sources": DEB822_DEBIAN.replace(
                    "Types: deb\nURIs: http://mirror.example/debian-security",
                    "Types: deb\nEnabled: no\nURIs: http://mirror.example/debian-security",
                )
            },
            HostDebianMirror("http://mirror.example/debian", None),
            id="disabled-security-entry",
        ),
        pytest.param(
            {
                "sources.list": "deb file:///srv/local bookworm main\n"
                "deb cdrom:[Debian 12]/ bookworm main\n"
                "deb https://tls.example/debian bookworm main\n"
            },
            HostDebianMirror("https://tls.example/debian", None),
            id="non-http-uris-ignored",
        ),
        pytest.param(
            {
                "sources.list.d/debian.sources": DEB822_DEBIAN,
                "sources.list.d/debian.sources.disabled": "deb http://nope.example/debian bookworm main\n",
            },
            HostDebianMirror("http://mirror.example/debian", "http://mirror.example/debian-security"),
            id="other-suffixes-ignored",
        ),
    ],
)
def test_host_debian_mirror(tmp_path: Path, files: dict[str, str], expected: HostDebianMirror) -> None:
    assert host_debian_mirror(etc_apt=_etc_apt(tmp_path, files)) == expected


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({}, id="no-files"),
        pytest.param({"sources.list.d/nodesource.sources": DEB822_THIRD_PARTY}, id="third-party-only"),
        pytest.param({"sources.list": "deb http://x.example/debian bookworm contrib\n"}, id="no-main"),
        pytest.param({"sources.list": "deb http://x.example/debian noble main\n"}, id="not-a-debian-release"),
    ],
)
def test_no_debian_mirror_is_a_config_error(tmp_path: Path, files: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="no Debian mirror in the host's apt sources"):
        host_debian_mirror("bookworm", etc_apt=_etc_apt(tmp_path, files))


@pytest.mark.parametrize("release", ["trixie", "bullseye", "buster", "forky"])
def test_a_bookworm_host_serves_every_release(tmp_path: Path, release: str) -> None:
    # One archive serves every release: the host's own suites do not limit what it can assess.
    etc = _etc_apt(tmp_path, {"sources.list.d/debian.sources": DEB822_DEBIAN})
    assert host_debian_mirror(release, etc_apt=etc) == HostDebianMirror(
        "http://mirror.example/debian", "http://mirror.example/debian-security")


def test_an_entry_of_the_release_itself_is_preferred(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, {"sources.list": "deb http://a.example/debian bookworm main\n"
                                              "deb http://a.example/debian-security bookworm-security main\n"
                                              "deb http://b.example/debian trixie main\n"
                                              "deb http://b.example/debian-security trixie-security main\n"})
    assert host_debian_mirror("trixie", etc_apt=etc) == HostDebianMirror(
        "http://b.example/debian", "http://b.example/debian-security")
    assert host_debian_mirror("bookworm", etc_apt=etc) == HostDebianMirror(
        "http://a.example/debian", "http://a.example/debian-security")


def test_other_suite(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, {"sources.list": "deb http://x.example/debian trixie main\n"})
    assert host_debian_mirror("trixie", etc_apt=etc) == HostDebianMirror("http://x.example/debian", None)
