"""The fleet: what runs where (podman hosts, Kubernetes) and what registries hold."""

from patchline.fleet._discover import (
    DiscoverOptions,
    DiscoveryReport,
    discover_kubernetes,
    discover_podman,
    discover_registry,
    inventory,
)
from patchline.fleet._refresh import refresh_feeds, refresh_updates
from patchline.fleet.interface import RegistryTag, Workload
from patchline.fleet.kubernetes import list_kubernetes_pods
from patchline.fleet.podman import list_podman_containers
from patchline.fleet.registry import list_registry_tags

__all__ = [
    "DiscoverOptions",
    "DiscoveryReport",
    "RegistryTag",
    "Workload",
    "discover_kubernetes",
    "discover_podman",
    "discover_registry",
    "inventory",
    "list_kubernetes_pods",
    "list_podman_containers",
    "list_registry_tags",
    "refresh_feeds",
    "refresh_updates",
]
