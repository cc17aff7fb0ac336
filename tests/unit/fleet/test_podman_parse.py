"""The pure parsers of podman's JSON: ``podman ps`` and ``podman image inspect``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from patchline._model import Digest
from patchline.errors import DiscoveryError
from patchline.fleet.podman import ImageDigests, parse_image_inspect, parse_podman_ps, repo_digest_for

IMAGE_HEX = "b9210aab32c260ac495cdc31b4c9f63dfbf1eb2c2e821d2666e0849656ac5950"
CONTAINER_ID = "974ff291bf37607ec3d9db234f810cdb2186c2e8295cb62c0a95dfb5df4fa883"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

# One entry as podman 4.3 prints it (`podman ps --format json --no-trunc`).
PODMAN_43_ENTRY: dict[str, Any] = {
    "AutoRemove": False,
    "Command": ["/bin/busybox", "sleep", "60"],
    "CreatedAt": "Less than a second ago",
    "Exited": False,
    "ExitedAt": -62135596800,
    "ExitCode": 0,
    "Id": CONTAINER_ID,
    "Image": "localhost/patchline/probe:busybox",
    "ImageID": IMAGE_HEX,
    "IsInfra": False,
    "Labels": {"b": "2", "a": "1"},
    "Mounts": [],
    "Names": ["pl-explore-1"],
    "Namespaces": {},
    "Networks": ["podman"],
    "Pid": 10027,
    "Pod": "",
    "PodName": "",
    "Ports": None,
    "Size": None,
    "StartedAt": 1795458464,
    "State": "running",
    "Status": "Up Less than a second ago",
    "Created": 1795458464,
}


def _ps(*entries: dict[str, Any]) -> bytes:
    return json.dumps(list(entries)).encode()


_DROP = object()  # a field value that leaves the field out


def _entry(**changes: Any) -> dict[str, Any]:
    entry = {**PODMAN_43_ENTRY, **changes}
    return {k: v for k, v in entry.items() if v is not _DROP}


def test_podman_43_entry() -> None:
    (workload,) = parse_podman_ps(_ps(PODMAN_43_ENTRY), host="web-1")
    assert workload.runtime == "podman"
    assert (workload.host, workload.namespace, workload.name) == ("web-1", "", "pl-explore-1")
    assert workload.container_id == CONTAINER_ID
    assert workload.image_ref == "localhost/patchline/probe:busybox"
    assert workload.image_id == f"sha256:{IMAGE_HEX}"
    assert workload.manifest_digest is None  # only image inspect knows it
    assert workload.started_at == datetime(2026, 11, 23, 18, 27, 44, tzinfo=UTC)
    assert workload.state == "running"
    assert workload.labels == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize("output", [b"[]", b"null", b"  []\n"])
def test_no_containers(output: bytes) -> None:
    assert parse_podman_ps(output, host="h") == []


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (b"", "not JSON"),
        (b"Error: something\n", "not JSON"),
        (b'[{"Id": "abc"', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"Id": "abc"}', "a JSON dict, not a list"),
        (b'["abc"]', "entry 0 is not a JSON object"),
        (b'[{"Names": ["x"]}]', "entry 0 has no container Id"),
        (b'[{"Id": ""}]', "entry 0 has no container Id"),
    ],
)
def test_malformed_output(output: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message) as caught:
        parse_podman_ps(output, host="h")
    assert caught.value.message.startswith("podman ps")
    assert "\n" not in caught.value.message


def test_missing_optional_fields() -> None:
    (workload,) = parse_podman_ps(_ps({"Id": CONTAINER_ID}), host="h")
    assert workload.name == CONTAINER_ID[:12]
    assert (workload.image_ref, workload.image_id, workload.started_at) == ("", None, None)
    assert (workload.state, workload.labels) == ("unknown", ())


@pytest.mark.parametrize(
    ("names", "expected"),
    [(["web"], "web"), (["web", "alias"], "web"), ("web", "web"), ([], CONTAINER_ID[:12]), (None, CONTAINER_ID[:12])],
)
def test_names(names: object, expected: str) -> None:
    (workload,) = parse_podman_ps(_ps(_entry(Names=names)), host="h")
    assert workload.name == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795458464, datetime(2026, 11, 23, 18, 27, 44, tzinfo=UTC)),
        (1795458464.5, datetime(2026, 11, 23, 18, 27, 44, 500000, tzinfo=UTC)),
        ("1795458464", datetime(2026, 11, 23, 18, 27, 44, tzinfo=UTC)),
        ("2026-11-23T19:27:44+01:00", datetime(2026, 11, 23, 18, 27, 44, tzinfo=UTC)),
        (-62135596800, None),  # Go's zero time: created, never started
        (0, None),
        (None, None),
        (_DROP, None),
    ],
)
def test_started_at(value: object, expected: datetime | None) -> None:
    (workload,) = parse_podman_ps(_ps(_entry(StartedAt=value)), host="h")
    assert workload.started_at == expected
    if expected is not None:
        assert workload.started_at is not None and workload.started_at.tzinfo is UTC


@pytest.mark.parametrize("value", ["yesterday", "2026-11-23T18:47:44", [1], {"s": 1}])
def test_started_at_unreadable(value: object) -> None:
    with pytest.raises(DiscoveryError, match=f"StartedAt of container {CONTAINER_ID[:12]} is not a time"):
        parse_podman_ps(_ps(_entry(StartedAt=value)), host="h")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(IMAGE_HEX, f"sha256:{IMAGE_HEX}"), (f"sha256:{IMAGE_HEX}", f"sha256:{IMAGE_HEX}"), ("", None), (None, None)],
)
def test_image_id(value: object, expected: str | None) -> None:
    (workload,) = parse_podman_ps(_ps(_entry(ImageID=value)), host="h")
    assert workload.image_id == expected


@pytest.mark.parametrize("value", ["b9210aab32c2", "sha512:" + "a" * 128, IMAGE_HEX.upper(), 7])
def test_image_id_malformed(value: object) -> None:
    with pytest.raises(DiscoveryError, match="is not a sha256 id"):
        parse_podman_ps(_ps(_entry(ImageID=value)), host="h")


@pytest.mark.parametrize(("field", "value"), [("Labels", ["a=b"]), ("Image", 3), ("State", {"x": 1})])
def test_wrong_field_types(field: str, value: object) -> None:
    with pytest.raises(DiscoveryError, match=f"{field} of container {CONTAINER_ID[:12]}"):
        parse_podman_ps(_ps(_entry(**{field: value})), host="h")


def test_exited_and_infra_containers() -> None:
    output = _ps(
        _entry(State="exited", Names=["stopped"]),
        _entry(Id="f" * 64, IsInfra=True, Names=["abc-infra"], Image="localhost/podman-pause:4.3.1"),
    )
    (workload,) = parse_podman_ps(output, host="h")
    assert (workload.name, workload.state) == ("stopped", "exited")


# -- image inspect and the repo digest ----------------------------------------------------


def test_parse_image_inspect() -> None:
    output = json.dumps(
        [
            {
                "Id": IMAGE_HEX,
                "Digest": D1,
                "RepoTags": ["localhost/patchline/probe:busybox"],
                "RepoDigests": [f"localhost/patchline/probe@{D1}"],
            },
            {"Id": "a" * 64, "Digest": "", "RepoDigests": None},
        ]
    ).encode()
    images = parse_image_inspect(output)
    assert images == {
        f"sha256:{IMAGE_HEX}": ImageDigests(
            Digest(f"sha256:{IMAGE_HEX}"), Digest(D1), (f"localhost/patchline/probe@{D1}",)
        ),
        "sha256:" + "a" * 64: ImageDigests(Digest("sha256:" + "a" * 64), None, ()),
    }


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (b"not json", "podman image inspect printed output that is not JSON"),
        (b'[{"Digest": "x"}]', "entry 0 has no image Id"),
        (json.dumps([{"Id": IMAGE_HEX, "RepoDigests": "x@y"}]).encode(), "RepoDigests of sha256:b9210aab"),
    ],
)
def test_parse_image_inspect_malformed(output: bytes, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        parse_image_inspect(output)


def _image(*repo_digests: str, digest: str | None = None) -> ImageDigests:
    return ImageDigests(Digest(f"sha256:{IMAGE_HEX}"), Digest(digest) if digest else None, repo_digests)


@pytest.mark.parametrize(
    ("image_ref", "image", "expected"),
    [
        pytest.param(
            "quay.io/team/app:1", _image(f"quay.io/other/app@{D2}", f"quay.io/team/app@{D1}"), D1, id="its-repository"
        ),
        pytest.param("quay.io/team/app:1", _image(f"quay.io/other/app@{D2}"), None, id="no-match"),
        pytest.param("quay.io/team/app:1", _image(), None, id="no-repo-digests"),
        pytest.param(
            "nginx:1.25", _image(f"docker.io/library/nginx@{D1}"), D1, id="short-name-normalised"
        ),
        pytest.param(
            "docker.io/library/nginx:1.25", _image(f"docker.io/library/nginx@{D1}"), D1, id="full-name"
        ),
        pytest.param(
            f"quay.io/team/app@{D2}",
            _image(f"quay.io/team/app@{D1}", f"quay.io/team/app@{D2}"),
            D2,
            id="pinned-by-digest",
        ),
        pytest.param(
            "quay.io/team/app:1",
            _image(f"quay.io/team/app@{D1}", f"quay.io/team/app@{D2}", digest=D2),
            D1,
            id="multi-platform-index-not-the-platform-manifest",
        ),
        pytest.param(
            "quay.io/team/app:1",
            _image(f"quay.io/team/app@{D1}", f"quay.io/team/app@{D2}", f"quay.io/team/app@{D3}", digest=D3),
            None,
            id="ambiguous",
        ),
        pytest.param(
            "quay.io/team/app:1", _image(f"quay.io/team/app@{D1}", f"quay.io/team/app@{D1}"), D1, id="duplicates"
        ),
        pytest.param(IMAGE_HEX, _image(f"quay.io/team/app@{D1}"), None, id="run-by-image-id"),
        pytest.param("quay.io/team/app:1", _image("quay.io/team/app@md5:abc"), None, id="malformed-digest"),
    ],
)
def test_repo_digest_for(image_ref: str, image: ImageDigests, expected: str | None) -> None:
    assert repo_digest_for(image_ref, image) == expected
