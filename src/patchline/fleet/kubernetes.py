"""Discovery in a Kubernetes cluster: the containers of its pods, through the official client.

One ``list pods`` call (paged) per run; :func:`workloads_from_pod` is the pure
conversion of one ``V1Pod``, testable without a cluster. The client is
imported when a cluster is asked, not with this module (it takes 0.15 s).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from patchline._model import Digest
from patchline.errors import DiscoveryError
from patchline.fleet.interface import Workload

if TYPE_CHECKING:
    from kubernetes import client

__all__ = ["list_kubernetes_pods", "parse_image_id", "workloads_from_pod"]

_PAGE = 500  # pods per list request
_TIMEOUT = (10.0, 120.0)  # seconds: connect, read
_DEFAULT_KUBECONFIG = "~/.kube/config"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_UNREACHABLE = "no Kubernetes cluster reachable"


def list_kubernetes_pods(
    *,
    context: str | None = None,
    namespace: str | None = None,
    kubeconfig: str | None = None,
    all: bool = False,
) -> list[Workload]:
    """The containers of the cluster's pods (one ``namespace``, else all), running ones unless ``all``.

    The cluster is the kubeconfig's ``context`` (default: its current one);
    ``kubeconfig`` defaults to ``$KUBECONFIG``, else ``~/.kube/config``. The
    records' ``host`` is the context's name. Raises ``DiscoveryError`` when
    there is no usable kubeconfig, the cluster does not answer, or it refuses
    to list pods.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG") or _DEFAULT_KUBECONFIG
    files = [Path(p).expanduser() for p in path.split(os.pathsep) if p]
    if not any(f.is_file() for f in files):
        raise DiscoveryError(
            f"{_UNREACHABLE}: no kubeconfig at {path} (point KUBECONFIG or --kubeconfig at one)"
        )
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    # The client's models are typed; its config loaders are not.
    try:
        _, current = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        # persist_config=False: discovery never rewrites the user's kubeconfig (token refreshes).
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, KeyError) as exc:
        raise DiscoveryError(f"{_UNREACHABLE}: the kubeconfig {path} cannot be used: {_one_line(exc)}") from exc
    current_name = current.get("name") if isinstance(current, dict) else None
    host = context or str(current_name or "")
    configuration.retries = 1  # a dead API server fails in seconds, not after urllib3's default retries
    workloads: list[Workload] = []
    with client.ApiClient(configuration) as api_client:
        api = client.CoreV1Api(api_client)
        for pod in _pods(api, namespace, context=host, server=str(configuration.host)):
            workloads.extend(workloads_from_pod(pod, host=host, all=all))
    return workloads


def workloads_from_pod(pod: client.V1Pod, *, host: str, all: bool = False) -> list[Workload]:
    """The pod's containers (init and ephemeral ones too), running ones unless ``all``.

    With ``all``, a container the kubelet has no status for yet is a
    ``"pending"`` record with the spec's image and no digests.
    """
    meta = pod.metadata
    pod_name = (meta.name if meta else None) or ""
    pod_namespace = (meta.namespace if meta else None) or ""
    pod_key = (meta.uid if meta else None) or pod_name
    labels = tuple(sorted(((meta.labels if meta else None) or {}).items()))
    spec_images: dict[str, str] = {}
    if pod.spec is not None:
        for spec_container in (
            *(pod.spec.containers or ()),
            *(pod.spec.init_containers or ()),
            *(pod.spec.ephemeral_containers or ()),
        ):
            spec_images[spec_container.name] = spec_container.image or ""
    status = pod.status
    statuses = (
        [
            *(status.container_statuses or ()),
            *(status.init_container_statuses or ()),
            *(status.ephemeral_container_statuses or ()),
        ]
        if status is not None
        else []
    )
    workloads: list[Workload] = []
    for container in statuses:
        state, started_at = _state(container.state)
        if state != "running" and not all:
            continue
        image_id, manifest_digest = parse_image_id(container.image_id or "")
        workloads.append(
            Workload(
                runtime="kubernetes",
                host=host,
                namespace=pod_namespace,
                name=f"{pod_name}/{container.name}",
                container_id=container.container_id or f"{pod_key}/{container.name}",
                image_ref=container.image or spec_images.get(container.name, ""),
                image_id=image_id,
                manifest_digest=manifest_digest,
                started_at=started_at,
                state=state,
                labels=labels,
            )
        )
    if all:
        reported = {c.name for c in statuses}
        workloads.extend(
            Workload(
                runtime="kubernetes",
                host=host,
                namespace=pod_namespace,
                name=f"{pod_name}/{name}",
                container_id=f"{pod_key}/{name}",
                image_ref=image,
                image_id=None,
                manifest_digest=None,
                started_at=None,
                state="pending",
                labels=labels,
            )
            for name, image in spec_images.items()
            if name not in reported
        )
    return workloads


def parse_image_id(image_id: str) -> tuple[Digest | None, Digest | None]:
    """(config digest, manifest digest) from a container status's ``imageID``.

    ``repo@sha256:...`` (containerd, CRI-O) and ``docker-pullable://repo@sha256:...``
    (dockershim) name the manifest; a bare ``sha256:...`` (also as
    ``docker://sha256:...``) is an image without a repo digest: its config digest.
    """
    text = image_id.strip()
    _, scheme_sep, rest = text.partition("://")
    if scheme_sep:
        text = rest
    if "@" in text:
        digest = text.rpartition("@")[2]
        return None, Digest(digest) if _DIGEST.match(digest) else None
    if _DIGEST.match(text):
        return Digest(text), None
    return None, None


def _state(state: client.V1ContainerState | None) -> tuple[str, datetime | None]:
    if state is None:
        return "unknown", None
    if state.running is not None:
        return "running", _utc(state.running.started_at)
    if state.terminated is not None:
        return "terminated", _utc(state.terminated.started_at)
    if state.waiting is not None:
        return "waiting", None
    return "unknown", None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # the API speaks UTC (RFC 3339 "Z")
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _pods(api: client.CoreV1Api, namespace: str | None, *, context: str, server: str) -> Iterator[client.V1Pod]:
    import urllib3
    from kubernetes.client.exceptions import ApiException

    where = f"context {context!r} ({server})"
    token: str | None = None
    while True:
        try:
            if namespace is None:
                page = api.list_pod_for_all_namespaces(limit=_PAGE, _continue=token, _request_timeout=_TIMEOUT)
            else:
                page = api.list_namespaced_pod(
                    namespace, limit=_PAGE, _continue=token, _request_timeout=_TIMEOUT
                )
        except ApiException as exc:
            if not exc.status:  # the client's own code for a failed TLS handshake and the like
                raise DiscoveryError(f"{_UNREACHABLE}: {where}: {_one_line(exc.reason)}") from exc
            raise DiscoveryError(
                f"the Kubernetes API of {where} refused to list pods: HTTP {exc.status} {_one_line(exc.reason)}"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            raise DiscoveryError(f"{_UNREACHABLE}: {where}: {_one_line(reason)}") from exc
        yield from page.items or ()
        meta = page.metadata
        # Newer clients name the field var_continue, older ones _continue.
        token = (getattr(meta, "var_continue", None) or getattr(meta, "_continue", None)) if meta else None
        if not token:
            return


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
