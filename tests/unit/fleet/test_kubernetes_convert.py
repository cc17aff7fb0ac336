"""The pure conversion of Kubernetes pods (the client's V1Pod models) into workloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from kubernetes import client

from patchline.fleet.kubernetes import parse_image_id, workloads_from_pod

HEX = "a" * 64
CONFIG_HEX = "c" * 64
STARTED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("image_id", "expected"),
    [
        pytest.param(f"docker.io/library/nginx@sha256:{HEX}", (None, f"sha256:{HEX}"), id="containerd"),
        pytest.param(f"docker-pullable://nginx@sha256:{HEX}", (None, f"sha256:{HEX}"), id="dockershim"),
        pytest.param(f"127.0.0.1:5000/team/app@sha256:{HEX}", (None, f"sha256:{HEX}"), id="registry-with-port"),
        pytest.param(f"sha256:{CONFIG_HEX}", (f"sha256:{CONFIG_HEX}", None), id="local-image-config-id"),
        pytest.param(f"docker://sha256:{CONFIG_HEX}", (f"sha256:{CONFIG_HEX}", None), id="dockershim-no-repo-digest"),
        pytest.param("", (None, None), id="empty"),
        pytest.param("nginx:1.25", (None, None), id="a-tag-is-no-digest"),
        pytest.param("nginx@sha256:abc", (None, None), id="short-digest"),
        pytest.param(f"nginx@sha512:{'b' * 128}", (None, None), id="not-sha256"),
    ],
)
def test_parse_image_id(image_id: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_image_id(image_id) == expected


def _running(started: datetime = STARTED) -> client.V1ContainerState:
    return client.V1ContainerState(running=client.V1ContainerStateRunning(started_at=started))


def _status(name: str, state: client.V1ContainerState | None, **fields: str) -> client.V1ContainerStatus:
    values = {
        "image": f"docker.io/library/{name}:1",
        "image_id": f"docker.io/library/{name}@sha256:{HEX}",
        "container_id": f"containerd://{name}-0123",
        **fields,
    }
    return client.V1ContainerStatus(name=name, ready=True, restart_count=0, state=state, **values)


def _pod(
    statuses: list[client.V1ContainerStatus] | None,
    *,
    containers: tuple[str, ...] = (),
    init_statuses: list[client.V1ContainerStatus] | None = None,
) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="web-7d9f", namespace="shop", uid="uid-1234", labels={"tier": "front", "app": "web"}
        ),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name=c, image=f"{c}:spec") for c in containers]
        ),
        status=client.V1PodStatus(container_statuses=statuses, init_container_statuses=init_statuses),
    )


def test_running_container() -> None:
    (workload,) = workloads_from_pod(_pod([_status("nginx", _running())], containers=("nginx",)), host="prod-eu")
    assert workload.runtime == "kubernetes"
    assert (workload.host, workload.namespace, workload.name) == ("prod-eu", "shop", "web-7d9f/nginx")
    assert workload.container_id == "containerd://nginx-0123"
    assert workload.image_ref == "docker.io/library/nginx:1"  # what the kubelet runs, not the spec's text
    assert (workload.image_id, workload.manifest_digest) == (None, f"sha256:{HEX}")
    assert workload.started_at == STARTED
    assert workload.state == "running"
    assert workload.labels == (("app", "web"), ("tier", "front"))


def test_started_at_becomes_utc() -> None:
    paris = timezone(timedelta(hours=1))
    local = datetime(2026, 11, 20, 9, 30, tzinfo=paris)
    naive = datetime(2026, 11, 20, 8, 30)
    pod = _pod([_status("a", _running(local)), _status("b", _running(naive))])
    started = [w.started_at for w in workloads_from_pod(pod, host="h")]
    assert started == [STARTED, STARTED]
    assert all(s is not None and s.tzinfo is UTC for s in started)


def test_only_running_unless_all() -> None:
    waiting = client.V1ContainerState(waiting=client.V1ContainerStateWaiting(reason="ImagePullBackOff"))
    done = client.V1ContainerState(
        terminated=client.V1ContainerStateTerminated(exit_code=0, started_at=STARTED, finished_at=STARTED)
    )
    pod = _pod(
        [_status("app", _running()), _status("pulling", waiting, container_id="")],
        init_statuses=[_status("migrate", done)],
        containers=("app", "pulling", "sidecar"),
    )
    assert [w.name for w in workloads_from_pod(pod, host="h")] == ["web-7d9f/app"]
    everything = {w.name: w for w in workloads_from_pod(pod, host="h", all=True)}
    assert {n: w.state for n, w in everything.items()} == {
        "web-7d9f/app": "running",
        "web-7d9f/pulling": "waiting",
        "web-7d9f/migrate": "terminated",
        "web-7d9f/sidecar": "pending",  # in the spec, no status yet
    }
    assert everything["web-7d9f/pulling"].container_id == "uid-1234/pulling"
    assert everything["web-7d9f/pulling"].started_at is None
    assert everything["web-7d9f/migrate"].started_at == STARTED
    sidecar = everything["web-7d9f/sidecar"]
    assert (sidecar.image_ref, sidecar.image_id, sidecar.manifest_digest) == ("sidecar:spec", None, None)
    assert sidecar.container_id == "uid-1234/sidecar"


def test_running_init_sidecar_counts() -> None:
    pod = _pod([], init_statuses=[_status("proxy", _running())])
    assert [w.name for w in workloads_from_pod(pod, host="h")] == ["web-7d9f/proxy"]


def test_image_from_spec_when_status_has_none() -> None:
    pod = _pod([_status("app", _running(), image="", image_id="")], containers=("app",))
    (workload,) = workloads_from_pod(pod, host="h")
    assert (workload.image_ref, workload.image_id, workload.manifest_digest) == ("app:spec", None, None)


def test_local_image_without_repo_digest() -> None:
    pod = _pod([_status("app", _running(), image_id=f"sha256:{CONFIG_HEX}")])
    (workload,) = workloads_from_pod(pod, host="h")
    assert (workload.image_id, workload.manifest_digest) == (f"sha256:{CONFIG_HEX}", None)


def test_pod_without_status_or_metadata() -> None:
    assert workloads_from_pod(client.V1Pod(), host="h") == []
    assert workloads_from_pod(client.V1Pod(status=client.V1PodStatus()), host="h", all=True) == []
    bare = client.V1Pod(status=client.V1PodStatus(container_statuses=[_status("x", None)]))
    (workload,) = workloads_from_pod(bare, host="h", all=True)
    assert (workload.name, workload.namespace, workload.state, workload.labels) == ("/x", "", "unknown", ())
    assert workloads_from_pod(bare, host="h") == []


def test_pod_from_api_json() -> None:
    """The same pod as the API server sends it (camelCase JSON), through the client's model."""
    pod = client.V1Pod.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "data", "uid": "u-9"},
            "spec": {"containers": [{"name": "postgres", "image": "postgres:16"}]},
            "status": {
                "containerStatuses": [
                    {
                        "name": "postgres",
                        "image": "docker.io/library/postgres:16",
                        "imageID": f"docker.io/library/postgres@sha256:{HEX}",
                        "containerID": "cri-o://feed",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-11-20T08:30:00Z"}},
                    }
                ]
            },
        }
    )
    assert pod is not None
    (workload,) = workloads_from_pod(pod, host="kind-dev")
    assert (workload.name, workload.container_id, workload.started_at) == ("db-0/postgres", "cri-o://feed", STARTED)
    assert workload.manifest_digest == f"sha256:{HEX}"
