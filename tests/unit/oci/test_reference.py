from __future__ import annotations

import pytest

from patchline.errors import ReferenceError_
from patchline.oci import Transport, parse_image_ref, parse_source_ref


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("debian", "docker.io", "library/debian", "latest", None),
        ("debian:bookworm", "docker.io", "library/debian", "bookworm", None),
        ("team/app:1.2", "docker.io", "team/app", "1.2", None),
        ("127.0.0.1:5000/fleet/base:1", "127.0.0.1:5000", "fleet/base", "1", None),
        ("localhost/patchline/base", "localhost", "patchline/base", "latest", None),
        ("registry.example:443/a/b/c@sha256:" + "a" * 64, "registry.example:443", "a/b/c", None, "sha256:" + "a" * 64),
        ("quay.example/x:tag@sha256:" + "b" * 64, "quay.example", "x", "tag", "sha256:" + "b" * 64),
    ],
)
def test_registry_references_normalise_like_podman(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_pinned_reference_uses_the_digest() -> None:
    ref = parse_image_ref("127.0.0.1:5000/a:1@sha256:" + "c" * 64)
    assert ref.reference == "sha256:" + "c" * 64
    assert str(ref) == "127.0.0.1:5000/a:1@sha256:" + "c" * 64


@pytest.mark.parametrize("text", ["", "Upper/Case", "a b", "x@sha256:short", "repo:bad tag", "a//b", "-x"])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(ReferenceError_):
        parse_image_ref(text)


@pytest.mark.parametrize(
    ("text", "transport", "path", "name"),
    [
        ("oci:/tmp/layout", Transport.OCI_LAYOUT, "/tmp/layout", None),
        ("oci:/tmp/layout:v1", Transport.OCI_LAYOUT, "/tmp/layout", "v1"),
        ("oci-archive:img.tar:latest", Transport.OCI_ARCHIVE, "img.tar", "latest"),
        ("docker-archive:/srv/save.tar", Transport.DOCKER_ARCHIVE, "/srv/save.tar", None),
        ("containers-storage:localhost/app:1", Transport.CONTAINERS_STORAGE, None, "localhost/app:1"),
    ],
)
def test_transport_references(text: str, transport: Transport, path: str | None, name: str | None) -> None:
    ref = parse_source_ref(text)
    assert (ref.transport, ref.path, ref.name) == (transport, path, name)


def test_docker_transport_prefix_is_a_registry() -> None:
    ref = parse_source_ref("docker://127.0.0.1:5000/a:1")
    assert ref.transport is Transport.REGISTRY and ref.image is not None and ref.image.registry == "127.0.0.1:5000"


@pytest.mark.parametrize("text", ["oci:", "containers-storage:", "docker-archive:"])
def test_transport_with_nothing_named_is_refused(text: str) -> None:
    with pytest.raises(ReferenceError_):
        parse_source_ref(text)
