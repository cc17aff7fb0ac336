"""An image's apt sources mapped to its release's -security and -updates suites on the host's mirrors."""

from __future__ import annotations

import pytest

from patchline._hostapt import HostDebianMirror
from patchline.errors import NoUpdateRoute
from patchline.updates import AptSuite, sources_from_image_files

# Placeholders: the real URLs are whatever the host's apt sources say.
HOST = HostDebianMirror(mirror="http://mirror.invalid/debian", security="http://mirror.invalid/debian-security")

DEB822 = """\
Types: deb
# an image's own mirror: not used, the host's is
URIs: http://image-mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://image-mirror.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://image-mirror.invalid/debian
Suites: trixie
Components: main

Enabled: no
Types: deb
URIs: http://image-mirror.invalid/debian
Suites: trixie
Components: main
"""

THIRD_PARTY = """\
Types: deb
URIs: https://vendor.invalid/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg
"""


def _suites(files: dict[str, str]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.url, s.suite, s.components) for s in sources_from_image_files(files, host_mirror=HOST)]


def test_deb822_official_image() -> None:
    files = {"/etc/apt/sources.list.d/debian.sources": DEB822, "/etc/apt/sources.list.d/vendor.sources": THIRD_PARTY}
    assert _suites(files) == [
        (HOST.security, "bookworm-security", ("main",)),
        (HOST.mirror, "bookworm-updates", ("main",)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # debootstrap --variant=minbase: only the release itself
            "deb http://image-mirror.invalid/debian bookworm main\n",
            [("bookworm-security", ("main",)), ("bookworm-updates", ("main",))],
        ),
        (
            "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
            "http://image-mirror.invalid/debian bookworm main contrib\n"
            "# deb http://image-mirror.invalid/debian trixie main\n"
            "deb-src http://image-mirror.invalid/debian sid main\n"
            "deb http://image-mirror.invalid/debian bookworm non-free-firmware\n",
            [
                ("bookworm-security", ("main", "contrib", "non-free-firmware")),
                ("bookworm-updates", ("main", "contrib", "non-free-firmware")),
            ],
        ),
        (  # buster's old security suite name
            "deb http://archive.invalid/debian buster main\n"
            "deb http://archive.invalid/debian-security buster/updates main\n",
            [("buster/updates", ("main",)), ("buster-updates", ("main",))],
        ),
        ("deb http://image-mirror.invalid/debian sid main\n", []),  # no updates suites exist for sid
        ("deb https://vendor.invalid/apt cloud-sdk-bookworm main\n", []),  # third party
    ],
)
def test_one_line_sources_list(text: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert [(s, c) for _, s, c in _suites({"/etc/apt/sources.list": text})] == expected


def test_security_on_security_mirror_and_arch() -> None:
    (sec, upd) = sources_from_image_files(
        {"/etc/apt/sources.list": "deb http://image-mirror.invalid/debian bookworm main\n"},
        host_mirror=HOST,
        arch="arm64",
    )
    assert sec == AptSuite(HOST.security or "", "bookworm-security", ("main",), "arm64")
    assert upd == AptSuite(HOST.mirror, "bookworm-updates", ("main",), "arm64")


def test_no_host_security_mirror_is_an_error() -> None:
    with pytest.raises(NoUpdateRoute, match="no Debian security mirror"):
        sources_from_image_files(
            {"/etc/apt/sources.list": "deb http://image-mirror.invalid/debian bookworm main\n"},
            host_mirror=HostDebianMirror(HOST.mirror, None),
        )


def test_no_sources_no_suites() -> None:
    assert sources_from_image_files({}, host_mirror=HOST) == []
