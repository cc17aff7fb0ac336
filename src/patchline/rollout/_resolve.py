"""A service of ``patchline.toml`` as a target needs it: found by name, its image resolved to a repository."""

from __future__ import annotations

from patchline._config import Config, ServiceConfig
from patchline.errors import ConfigError
from patchline.rollout.interface import ServiceSpec


def service_config(config: Config, name: str) -> ServiceConfig:
    for service in config.services:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in config.services) or "none"
    raise ConfigError(f"no service {name!r} in [[services]] (configured: {known})")


def service_repository(config: Config, image: str) -> str:
    """A recipe name becomes the repository its target pushes to; anything else is a repository already."""
    from patchline.build import load_recipes
    from patchline.oci import split_reference

    if "/" not in image and config.images:
        for recipe in load_recipes(config):
            if recipe.name == image:
                return split_reference(recipe.target)[0]
    return split_reference(image)[0]


def service_spec(config: Config, service: ServiceConfig) -> ServiceSpec:
    return ServiceSpec(name=service.name, repository=service_repository(config, service.image),
                       replicas=service.replicas, port=service.port, host_port=service.host_port, env=dict(service.env),
                       command=service.command, podman_args=service.podman_args, health=service.health,
                       capabilities=service.capabilities, memory=service.memory, pids_limit=service.pids_limit,
                       userns_auto=service.userns_auto, runtime=service.runtime)
