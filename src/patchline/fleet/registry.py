"""Discovery in a registry: every repository's tags and the manifest digest each points at.

The requests go through ``patchline.oci``'s :class:`RegistryAPI`, so transport,
credentials (auth files, Basic, Bearer tokens) and retries are the image
source's. Listings follow the registry's ``Link: <...>; rel="next"`` pages.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from patchline._model import Digest
from patchline.errors import ConfigError, ImageNotFound, ManifestError, ReferenceError_, RegistryError
from patchline.fleet.interface import RegistryTag
from patchline.oci import RegistryAPI, new_registry_client
from patchline.oci.interface import INDEX_TYPES, MANIFEST_TYPES

__all__ = ["list_registry_tags"]

SkipCallback = Callable[[str, str], None]
"""Called with (what was skipped, why): ``host/repo`` or ``host/repo:tag``."""

_ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
_MAX_PAGE = 16 << 20  # bytes of one catalog or tags page
_MAX_MANIFEST = 4 << 20
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
# The distribution spec's grammar: names go into URL paths, so anything else is refused.
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")


def list_registry_tags(
    target: str,
    *,
    insecure: bool = False,
    page_size: int = 100,
    client: httpx.Client | None = None,
    on_skip: SkipCallback | None = None,
) -> Iterator[RegistryTag]:
    """Every tag in ``target`` with its manifest digest, one repository after the other.

    ``target`` is ``REGISTRY`` (all repositories of its ``/v2/_catalog``) or
    ``REGISTRY/REPO`` (that repository only). ``page_size`` is the ``n`` of each
    listing request. A repository that disappears after the catalog named it, or
    a tag after its listing, is passed to ``on_skip`` and left out. ``client`` is
    used for every request and not closed (its TLS settings then apply, not
    ``insecure``'s certificate check).

    A malformed ``target`` raises ``ReferenceError_`` at once; while iterating,
    a registry that cannot be listed raises ``RegistryError`` (``AuthError``
    for missing or refused credentials).
    """
    if page_size < 1:
        raise ConfigError(f"page_size must be at least 1, not {page_size}")
    registry, only = _parse_target(target)
    return _tags(registry, only, insecure=insecure, page_size=page_size, client=client, on_skip=on_skip)


def _tags(
    registry: str,
    only: str | None,
    *,
    insecure: bool,
    page_size: int,
    client: httpx.Client | None,
    on_skip: SkipCallback | None,
) -> Iterator[RegistryTag]:
    shared = client if client is not None else new_registry_client(insecure=insecure)
    try:
        repositories = iter([only]) if only is not None else _catalog(registry, shared, insecure, page_size)
        for repository in repositories:
            yield from _repository_tags(
                registry, repository, shared, insecure, page_size, on_skip, must_exist=only is not None
            )
    finally:
        if client is None:
            shared.close()


def _parse_target(target: str) -> tuple[str, str | None]:
    text = target.removeprefix("docker://").rstrip("/")
    registry, _, repository = text.partition("/")
    if not _HOST.match(registry):
        raise ReferenceError_(f"{target!r} does not start with a registry host (HOST[:PORT])")
    if not repository:
        return registry, None
    if ":" in repository or "@" in repository:
        raise ReferenceError_(f"{target!r}: name a repository (REGISTRY/REPO), without a tag or digest")
    if not _REPOSITORY.match(repository):
        raise ReferenceError_(f"{target!r}: {repository!r} is not a valid repository name")
    return registry, repository


def _catalog(registry: str, client: httpx.Client, insecure: bool, page_size: int) -> Iterator[str]:
    with RegistryAPI(registry, None, insecure=insecure, client=client) as api:
        try:
            yield from _listing(api, "/v2/_catalog", "repositories", page_size, f"the catalog of {registry}")
        except ImageNotFound as exc:
            raise RegistryError(f"{registry} does not serve the catalog API (/v2/_catalog is 404)") from exc


def _repository_tags(
    registry: str,
    repository: str,
    client: httpx.Client,
    insecure: bool,
    page_size: int,
    on_skip: SkipCallback | None,
    *,
    must_exist: bool,
) -> Iterator[RegistryTag]:
    name = f"{registry}/{repository}"
    if not _REPOSITORY.match(repository):
        _skip(on_skip, name, f"the catalog names an invalid repository {repository!r}")
        return
    with RegistryAPI(registry, repository, insecure=insecure, client=client) as api:
        tags = _listing(api, f"/v2/{repository}/tags/list", "tags", page_size, f"the tags of {repository}")
        while True:
            try:
                tag = next(tags)
            except StopIteration:
                return
            except ImageNotFound as exc:
                if must_exist:
                    raise RegistryError(f"repository {repository} not found in {registry}") from exc
                _skip(on_skip, name, f"the repository went away after the catalog named it ({exc})")
                return
            if not _TAG.match(tag):
                _skip(on_skip, f"{name}:{tag}", "not a valid tag name")
                continue
            try:
                digest, media_type = _manifest_digest(api, repository, tag)
            except ImageNotFound as exc:
                _skip(on_skip, f"{name}:{tag}", f"the tag went away after it was listed ({exc})")
                continue
            yield RegistryTag(repository=name, tag=tag, manifest_digest=digest, media_type=media_type)


def _listing(api: RegistryAPI, path: str, key: str, page_size: int, what: str) -> Iterator[str]:
    """The names of a paginated listing, following ``Link`` (else ``last=``) page by page."""
    url: str | None = f"{path}?n={page_size}"
    requested: set[str] = set()
    seen: set[str] = set()
    while url is not None:
        requested.add(url)
        try:
            response, body = api.request(url, what=what, headers={"Accept": "application/json"}, body_limit=_MAX_PAGE)
        except ManifestError as exc:  # the body limit
            raise RegistryError(f"{api.host}: {what}: {exc}") from exc
        names = _names(body, key, f"{api.host}: {what}")
        fresh = [n for n in names if n not in seen]
        seen.update(fresh)
        yield from fresh
        next_link = response.links.get("next", {}).get("url")
        if next_link:
            url = _same_host_path(next_link, api.host, what)
        elif len(names) == page_size and fresh:
            # A full page and no Link: ask for the names after the last one, as the spec's `last` means.
            # (More than n names means the registry ignores n, as distribution 2.8 does for tags: that was all.)
            url = f"{path}?n={page_size}&last={urllib.parse.quote(names[-1], safe='')}"
        else:
            url = None
        if url is not None and url in requested:
            raise RegistryError(f"{api.host}: the pages of {what} loop back to {url}")


def _names(body: bytes, key: str, what: str) -> list[str]:
    try:
        doc: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{what}: the registry answered with something that is not JSON") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: the registry answered with JSON that is not an object")
    names = doc.get(key)
    if names is None:  # distribution says "tags": null for a repository whose tags were all deleted
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RegistryError(f"{what}: {key!r} is not a list of names")
    return names


def _same_host_path(link: str, host: str, what: str) -> str:
    """The path and query of a ``Link`` target, which must stay on the registry's host."""
    target = urllib.parse.urlsplit(link)
    if target.netloc and target.netloc != host:
        raise RegistryError(f"{host}: the next page of {what} is on another host ({link})")
    if not target.path.startswith("/v2/"):
        raise RegistryError(f"{host}: the next page of {what} is not an API path ({link})")
    return target.path + (f"?{target.query}" if target.query else "")


def _manifest_digest(api: RegistryAPI, repository: str, tag: str) -> tuple[Digest, str]:
    """(digest, media type) of a tag's manifest: HEAD, else GET and hash the body."""
    path = f"/v2/{repository}/manifests/{tag}"
    what = f"manifest {repository}:{tag}"
    response, _ = api.request(path, what=what, method="HEAD", headers={"Accept": _ACCEPT})
    header = response.headers.get("Docker-Content-Digest", "")
    media_type = _content_type(response)
    if _DIGEST.match(header) and media_type:
        return Digest(header), media_type
    try:
        response, body = api.request(path, what=what, headers={"Accept": _ACCEPT}, body_limit=_MAX_MANIFEST)
    except ManifestError as exc:
        raise RegistryError(f"{api.host}: {exc}") from exc
    digest = Digest("sha256:" + hashlib.sha256(body).hexdigest())
    return digest, _content_type(response) or _media_type_in(body)


def _content_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";")[0].strip()


def _media_type_in(body: bytes) -> str:
    try:
        doc: object = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str):
        return str(doc["mediaType"])
    return ""


def _skip(on_skip: SkipCallback | None, what: str, why: str) -> None:
    if on_skip is not None:
        on_skip(what, why)
