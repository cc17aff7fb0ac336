"""RegistrySource against a real CNCF distribution registry (docker-registry) on loopback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from patchline._model import Digest
from patchline.errors import (
    AuthError,
    BlobError,
    DigestMismatch,
    ImageNotFound,
    PlatformError,
    RegistryError,
)
from patchline.oci import _registry
from patchline.oci._auth import CredentialStore
from patchline.oci._manifest import host_platform
from patchline.oci._reference import parse_image_ref
from patchline.oci._registry import RegistrySource
from patchline.oci.interface import Platform, iter_chunks
from tests.support.registry import REGISTRY_USER, RunningRegistry, TestLayout

# Fixtures (registry, basic_auth_registry, token_auth_registry, oci_test_layout) come from
# tests/support/registry.py, which tests/conftest.py registers as a plugin.

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credential file of the host may leak into a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)


def _source(
    reg: RunningRegistry, name: str, *, auth: CredentialStore | None = None, **kwargs: object
) -> RegistrySource:
    store = auth if auth is not None else CredentialStore([])
    return RegistrySource(parse_image_ref(reg.ref(name)), insecure=True, auth=store, **kwargs)  # type: ignore[arg-type]


def test_resolve_by_tag_and_stream_layers(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    expected = oci_test_layout.single
    with _source(registry, "test/img:1") as source:
        resolved = source.resolve()
        assert resolved.manifest_digest == expected.manifest_digest
        assert resolved.config_digest == expected.config_digest
        assert resolved.config.diff_ids == expected.diff_ids
        assert [layer.digest for layer in resolved.layers] == list(expected.layer_digests)
        assert resolved.repo_tags == (f"{registry.host}/test/img:1",)
        for layer in resolved.layers:
            with source.open_blob(layer) as stream:
                assert b"".join(iter_chunks(stream, 7)) == oci_test_layout.blob(layer.digest)


def test_resolve_by_digest(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    digest = oci_test_layout.single.manifest_digest
    with _source(registry, f"test/img@{digest}") as source:
        resolved = source.resolve()
    assert resolved.manifest_digest == digest
    assert resolved.repo_tags == ()


def test_unknown_tag_and_repository(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    for name in ("test/img:nope", "test/nothing:1"):
        with _source(registry, name) as source, pytest.raises(ImageNotFound, match="UNKNOWN"):
            source.resolve()


def test_index_selects_host_platform(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "multi", "test/multi:1", all_platforms=True)
    host = host_platform()
    wanted = oci_test_layout.multi.get(f"{host.os}/{host.architecture}")
    if wanted is None:
        pytest.skip(f"the test index has no image for this host's platform {host}")
    with _source(registry, "test/multi:1") as source:
        resolved = source.resolve()
    assert resolved.manifest_digest == wanted.manifest_digest


@pytest.mark.parametrize("platform", ["linux/arm64", "linux/amd64"])
def test_index_selects_given_platform(
    registry: RunningRegistry, oci_test_layout: TestLayout, platform: str
) -> None:
    registry.push(oci_test_layout.path, "multi", "test/multi:1", all_platforms=True)
    wanted = oci_test_layout.multi[platform]
    os_name, arch = platform.split("/")
    with _source(registry, "test/multi:1", platform=Platform(os_name, arch)) as source:
        resolved = source.resolve()
        assert resolved.manifest_digest == wanted.manifest_digest
        assert resolved.config.architecture == arch
        with source.open_blob(resolved.layers[0]) as stream:
            assert stream.read() == oci_test_layout.blob(wanted.layer_digests[0])


def test_index_without_the_platform(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "multi", "test/multi:1", all_platforms=True)
    with _source(registry, "test/multi:1", platform=Platform("linux", "s390x")) as source, pytest.raises(
        PlatformError, match="linux/amd64, linux/arm64"
    ):
        source.resolve()


def test_basic_auth_from_registry_auth_file(
    basic_auth_registry: RunningRegistry,
    oci_test_layout: TestLayout,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    basic_auth_registry.push(oci_test_layout.path, "single", "test/img:1")
    auth_file = basic_auth_registry.write_auth_file(tmp_path / "auth.json")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    ref = parse_image_ref(basic_auth_registry.ref("test/img:1"))
    with RegistrySource(ref, insecure=True) as source:  # auth=None: the environment's files
        resolved = source.resolve()
        with source.open_blob(resolved.layers[1]) as stream:
            assert stream.read() == oci_test_layout.blob(resolved.layers[1].digest)
    assert resolved.manifest_digest == oci_test_layout.single.manifest_digest


def test_basic_auth_wrong_password(
    basic_auth_registry: RunningRegistry, oci_test_layout: TestLayout, tmp_path: Path
) -> None:
    basic_auth_registry.push(oci_test_layout.path, "single", "test/img:1")
    store = CredentialStore([basic_auth_registry.write_auth_file(tmp_path / "a.json", password="wrong")])
    with _source(basic_auth_registry, "test/img:1", auth=store) as source, pytest.raises(
        AuthError, match=f"refused user '{REGISTRY_USER}'"
    ):
        source.resolve()


def test_basic_auth_without_credentials(
    basic_auth_registry: RunningRegistry, oci_test_layout: TestLayout
) -> None:
    with _source(basic_auth_registry, "test/img:1") as source, pytest.raises(
        AuthError, match="no credentials were found"
    ):
        source.resolve()


def test_bearer_token_flow(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout, tmp_path: Path
) -> None:
    token_auth_registry.push(oci_test_layout.path, "multi", "test/multi:1", all_platforms=True)
    assert token_auth_registry.token_server is not None
    token_auth_registry.token_server.requests.clear()
    store = CredentialStore([token_auth_registry.write_auth_file(tmp_path / "auth.json")])
    arm64 = Platform("linux", "arm64")
    with _source(token_auth_registry, "test/multi:1", auth=store, platform=arm64) as source:
        resolved = source.resolve()
        with source.open_blob(resolved.layers[0]) as stream:
            stream.read()
    assert resolved.manifest_digest == oci_test_layout.multi["linux/arm64"].manifest_digest
    requests = token_auth_registry.token_server.requests
    # One token for the pull scope, fetched with the credentials, reused for every request.
    assert len(requests) == 1
    assert requests[0]["account"] == REGISTRY_USER and requests[0]["ok"]
    assert requests[0]["query"]["scope"] == ["repository:test/multi:pull"]


def test_bearer_token_refused(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout, tmp_path: Path
) -> None:
    token_auth_registry.push(oci_test_layout.path, "single", "test/img:1")
    store = CredentialStore([token_auth_registry.write_auth_file(tmp_path / "a.json", password="nope")])
    with _source(token_auth_registry, "test/img:1", auth=store) as source, pytest.raises(
        AuthError, match=r"token server .* refused user"
    ):
        source.resolve()


def test_bearer_anonymous_token_grants_nothing(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout
) -> None:
    token_auth_registry.push(oci_test_layout.path, "single", "test/img:1")
    with _source(token_auth_registry, "test/img:1") as source, pytest.raises(
        AuthError, match="no credentials were found"
    ):
        source.resolve()


def test_corrupt_blob_is_digest_mismatch(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    with _source(registry, "test/img:1") as source:
        resolved = source.resolve()
        layer = resolved.layers[0]
        path = registry.blob_path(layer.digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        with source.open_blob(layer) as stream, pytest.raises(DigestMismatch, match=layer.digest):
            b"".join(iter_chunks(stream))


def test_corrupt_config_fails_resolve(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    path = registry.blob_path(oci_test_layout.single.config_digest)
    path.write_bytes(path.read_bytes().replace(b"linux", b"Linux"))
    with _source(registry, "test/img:1") as source, pytest.raises(DigestMismatch, match="image config"):
        source.resolve()


def test_truncated_blob_is_blob_error(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    with _source(registry, "test/img:1") as source:
        resolved = source.resolve()
        layer = resolved.layers[0]
        path = registry.blob_path(layer.digest)
        os.truncate(path, layer.size // 2)
        with source.open_blob(layer) as stream, pytest.raises(BlobError, match="truncated") as caught:
            b"".join(iter_chunks(stream))
    assert not isinstance(caught.value, DigestMismatch)


def test_big_blob_streams_verified(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    registry.push(oci_test_layout.path, "big", "test/big:1")
    with _source(registry, "test/big:1") as source:
        resolved = source.resolve()
        (layer,) = resolved.layers
        with source.open_blob(layer) as stream:
            largest = max(len(chunk) for chunk in iter_chunks(stream))
            assert getattr(stream, "bytes_read", None) == layer.size
    assert largest <= 1 << 20  # read in chunks, never as one piece


def test_registry_killed_mid_stream(
    registry: RunningRegistry, oci_test_layout: TestLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_registry, "_RETRY_DELAYS", (0.05, 0.05, 0.05))
    registry.push(oci_test_layout.path, "big", "test/big:1")
    with _source(registry, "test/big:1", timeout=10.0) as source:
        resolved = source.resolve()
        (layer,) = resolved.layers
        started = time.monotonic()
        with source.open_blob(layer) as stream:
            first = stream.read(1 << 20)
            assert len(first) == 1 << 20
            registry.kill()
            broke = f"{registry.host}: the connection broke while streaming blob {layer.digest}"
            with pytest.raises(RegistryError, match=broke):
                b"".join(iter_chunks(stream))
        assert time.monotonic() - started < 10
        # The registry is gone for good: new requests fail clearly too.
        with pytest.raises(RegistryError, match="cannot connect"):
            source.resolve()


def test_plain_http_needs_insecure(registry: RunningRegistry) -> None:
    ref = parse_image_ref(registry.ref("test/img:1"))
    with RegistrySource(ref, auth=CredentialStore([]), timeout=5) as source, pytest.raises(
        RegistryError, match="--insecure"
    ):
        source.resolve()


def test_digest_reference_of_another_manifest(
    registry: RunningRegistry, oci_test_layout: TestLayout
) -> None:
    registry.push(oci_test_layout.path, "single", "test/img:1")
    bogus = Digest("sha256:" + "0" * 64)
    with _source(registry, f"test/img@{bogus}") as source, pytest.raises(ImageNotFound):
        source.resolve()
