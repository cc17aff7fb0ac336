"""Registry credentials and the HTTP authentication flow of the distribution API.

Credentials come from the files podman, skopeo and docker write, searched in
this order (the first file with an entry for the registry wins):

1. ``$REGISTRY_AUTH_FILE``
2. ``$XDG_RUNTIME_DIR/containers/auth.json``
3. ``~/.config/containers/auth.json``
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``

An ``auths`` entry holds ``auth`` (base64 of ``user:password``), or
``username`` and ``password``, or an ``identitytoken`` (an OAuth2 refresh
token). Credential helpers (``credHelpers``, ``credsStore``) are not supported
yet: a registry that needs one raises :class:`AuthError` saying so.

The flow: a request goes out anonymous; a ``401`` carries a
``WWW-Authenticate`` challenge. ``Basic`` is answered with the credentials;
``Bearer realm=...,service=...,scope=...`` by asking the realm for a token for
the challenge's scope, else ``repository:NAME:pull`` (``registry:catalog:*``
for the catalog), with the credentials, if any; it is cached per scope until it
expires.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from patchline._http import tls_context
from patchline.errors import AuthError, RegistryError

__all__ = [
    "CATALOG_SCOPE",
    "AuthChallenge",
    "Credential",
    "CredentialStore",
    "RegistryAuthenticator",
    "default_auth_files",
    "parse_www_authenticate",
    "pull_scope",
]

# Docker Hub's credentials are stored under its legacy v1 index URL.
_DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")
_TOKEN_LIFETIME_DEFAULT = 60.0  # seconds, as the token spec says when expires_in is absent
_TOKEN_EXPIRY_MARGIN = 10.0
CATALOG_SCOPE = "registry:catalog:*"


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and password, or an identity (refresh) token, for one registry."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""  # the file it was read from, for messages

    @property
    def has_password(self) -> bool:
        return self.username is not None and self.password is not None


@dataclass(frozen=True, slots=True)
class AuthChallenge:
    """One challenge of a ``WWW-Authenticate`` header; ``scheme`` is lower case."""

    scheme: str
    params: Mapping[str, str]


def default_auth_files(
    env: Mapping[str, str] | None = None, home: Path | None = None
) -> tuple[Path, ...]:
    """The credential files to search, in order (see the module docstring)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    paths: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    paths.append(home / ".config" / "containers" / "auth.json")
    if env.get("DOCKER_CONFIG"):
        paths.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    else:
        paths.append(home / ".docker" / "config.json")
    return tuple(paths)


def _normalise_key(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``; ``host/ns/repo`` keeps its path."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            # A URL key names a host; its path is an API version, not a namespace.
            key = key.split("/", 1)[0]
            break
    return key.rstrip("/")


def _candidate_keys(registry: str, repository: str | None) -> list[str]:
    """Keys to look for, most specific first (``host/ns/repo`` ... ``host``)."""
    hosts = list(_DOCKER_HUB_KEYS) if registry in _DOCKER_HUB_KEYS else [registry]
    keys: list[str] = []
    if repository:
        parts = repository.split("/")
        for end in range(len(parts), 0, -1):
            keys.extend(f"{host}/{'/'.join(parts[:end])}" for host in hosts)
    keys.extend(hosts)
    return keys


class CredentialStore:
    """Looks credentials up in auth files; an empty ``files`` means anonymous only."""

    def __init__(self, files: Sequence[Path]) -> None:
        self._files = tuple(files)

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, home: Path | None = None
    ) -> CredentialStore:
        return cls(default_auth_files(env, home))

    @property
    def files(self) -> tuple[Path, ...]:
        return self._files

    def lookup(self, registry: str, repository: str | None = None) -> Credential | None:
        """The credential for a registry host (and, if stored so, a repository).

        Raises ``AuthError`` if a file cannot be read or configures a credential
        helper for this registry.
        """
        keys = _candidate_keys(registry, repository)
        for path in self._files:
            doc = _read_auth_file(path)
            if doc is None:
                continue
            found = _lookup_in(doc, keys, path, registry)
            if found is not None:
                return found
        return None


def _read_auth_file(path: Path) -> Mapping[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"cannot read credential file {path}: {exc.strerror}") from exc
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuthError(f"credential file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise AuthError(f"credential file {path} is not a JSON object")
    return doc


def _lookup_in(
    doc: Mapping[str, Any], keys: Sequence[str], path: Path, registry: str
) -> Credential | None:
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for raw_key, helper in helpers.items():
            if _normalise_key(str(raw_key)) in keys:
                raise AuthError(
                    f"{path} configures the credential helper {helper!r} for {registry}; "
                    "credential helpers are not supported yet: log in with "
                    "`podman login` or put the credentials in an auth.json "
                    "($REGISTRY_AUTH_FILE)"
                )
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    entries = {_normalise_key(str(k)): v for k, v in auths.items()}
    for key in keys:
        entry = entries.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise AuthError(f"{path}: the entry for {key} is not a JSON object")
        credential = _credential_from_entry(entry, path, key)
        if credential is not None:
            return credential
        if doc.get("credsStore"):
            # docker login with a store leaves an empty entry; the secret is in the helper.
            raise AuthError(
                f"{path} keeps the credentials for {registry} in the credential store "
                f"{doc['credsStore']!r}; credential helpers are not supported yet: put "
                "the credentials in an auth.json ($REGISTRY_AUTH_FILE)"
            )
    return None


def _credential_from_entry(entry: Mapping[str, Any], path: Path, key: str) -> Credential | None:
    source = str(path)
    if entry.get("identitytoken"):
        return Credential(
            username=entry.get("username") or None,
            identity_token=str(entry["identitytoken"]),
            source=source,
        )
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(f"{path}: the auth of {key} is not base64 of user:password") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{path}: the auth of {key} is not base64 of user:password")
        return Credential(username=username, password=password, source=source)
    if entry.get("username") and entry.get("password") is not None:
        return Credential(
            username=str(entry["username"]), password=str(entry["password"]), source=source
        )
    return None


def parse_www_authenticate(header: str) -> list[AuthChallenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235) into its challenges.

    Quoted values may hold commas (``scope="repository:a:pull,push"``) and
    backslash escapes. Parameter names are lower-cased.
    """
    challenges: list[AuthChallenge] = []
    pos, n = 0, len(header)
    scheme: str | None = None
    params: dict[str, str] = {}

    def skip(chars: str) -> None:
        nonlocal pos
        while pos < n and header[pos] in chars:
            pos += 1

    def token() -> str:
        nonlocal pos
        start = pos
        while pos < n and header[pos] not in ' \t,="':
            pos += 1
        return header[start:pos]

    while True:
        skip(" \t,")
        if pos >= n:
            break
        word = token()
        if not word:  # a stray character: skip it
            pos += 1
            continue
        skip(" \t")
        if pos < n and header[pos] == "=" and scheme is not None:
            pos += 1
            skip(" \t")
            if pos < n and header[pos] == '"':
                pos += 1
                chars: list[str] = []
                while pos < n and header[pos] != '"':
                    if header[pos] == "\\" and pos + 1 < n:
                        pos += 1
                    chars.append(header[pos])
                    pos += 1
                pos += 1  # the closing quote
                value = "".join(chars)
            else:
                value = token()
                # token68 padding (``Basic abc==``) ends in '='
            params[word.lower()] = value
        elif pos < n and header[pos] == "=":
            pos += 1  # malformed: a parameter before any scheme
        else:
            if scheme is not None:
                challenges.append(AuthChallenge(scheme, params))
            scheme, params = word.lower(), {}
    if scheme is not None:
        challenges.append(AuthChallenge(scheme, params))
    return challenges


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


_TOKEN_RESPONSE_MAX = 1 << 20  # a token response is a few KB; anything past this is not one


def _authority(url: str) -> str:
    """``host[:port]`` of a URL, lower-cased."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rpartition("@")[2].lower()


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class RegistryAuthenticator:
    """Answers a registry's challenges for one source; thread-safe.

    ``credentials`` is looked up lazily, only when the registry asks for them,
    so that an anonymous pull never trips over an unrelated credential file.
    ``repository=None`` authenticates for the registry's catalog. Challenges are
    learned only from ``host`` (the registry's API host, not a blob store it
    redirects to), and credentials go to an https token realm only, or to a plain
    HTTP one when the registry itself is configured ``insecure`` (plain HTTP already).
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        registry: str,
        repository: str | None,
        store: CredentialStore,
        host: str | None = None,
        insecure: bool = False,
    ) -> None:
        self._client = client
        self._registry = registry
        self._host = host or registry
        self._insecure = insecure
        self._repository = repository
        self._store = store
        self._lock = threading.Lock()
        self._credential: Credential | None = None
        self._credential_loaded = False
        self._challenge: AuthChallenge | None = None
        self._tokens: dict[str, _Token] = {}

    @property
    def scope(self) -> str:
        return CATALOG_SCOPE if self._repository is None else pull_scope(self._repository)

    def credential(self) -> Credential | None:
        with self._lock:
            if not self._credential_loaded:
                self._credential = self._store.lookup(self._registry, self._repository)
                self._credential_loaded = True
            return self._credential

    def headers(self) -> dict[str, str]:
        """The Authorization header for the next request, from what is known so far."""
        with self._lock:
            challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return self._basic_header(required=True)
        if challenge.scheme == "bearer":
            scope = challenge.params.get("scope") or self.scope
            with self._lock:
                token = self._tokens.get(scope)
            if token is not None and token.expires_at > time.monotonic():
                return {"Authorization": f"Bearer {token.value}"}
            return self._fetch_token(challenge, scope)
        return {}

    def on_unauthorized(self, response: httpx.Response, *, had_auth: bool) -> bool:
        """Learn from a 401: True if a retry with new headers may succeed."""
        if _authority(str(response.url)) != self._host:
            return False  # a redirect target (a blob store) does not choose where credentials go
        challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return False
        with self._lock:
            previous = self._challenge
            self._challenge = chosen
            if chosen.scheme == "bearer":
                # The token may have expired early or been revoked: ask again once.
                self._tokens.pop(chosen.params.get("scope") or self.scope, None)
        # Basic credentials that were refused would be refused again.
        return not (had_auth and chosen.scheme == "basic" and previous == chosen)

    def refused(self, status: int) -> AuthError:
        """The error for a request still refused after authenticating."""
        credential = self.credential()
        if credential is None:
            return self._no_credentials()
        who = f"user {credential.username!r}" if credential.username else "the identity token"
        action = "listing its catalog" if self._repository is None else f"pulling {self._repository}"
        return AuthError(
            f"{self._registry} refused {who} (from {credential.source}) for {action} (HTTP {status})"
        )

    def _basic_header(self, *, required: bool) -> dict[str, str]:
        credential = self.credential()
        if credential is None or not credential.has_password:
            if required:
                raise self._no_credentials()
            return {}
        raw = f"{credential.username}:{credential.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _no_credentials(self) -> AuthError:
        files = ", ".join(str(p) for p in self._store.files) or "none"
        return AuthError(
            f"{self._registry} requires authentication and no credentials were found "
            f"for it (searched: {files})"
        )

    def _fetch_token(self, challenge: AuthChallenge, scope: str) -> dict[str, str]:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self._registry} sent a Bearer challenge without a usable realm")
        if realm.startswith("http://") and not self._insecure:
            raise AuthError(f"{self._registry} names a plain-HTTP token server ({_authority(realm)}): patchline "
                            "sends credentials over https only, unless the registry is configured insecure")
        service = challenge.params.get("service")
        credential = self.credential()
        client, own = self._client, None
        if self._insecure and realm.startswith("https://") and _authority(realm) != self._host.lower():
            # An insecure registry is insecure for its own host only: a token server elsewhere gets the
            # credentials, so its certificate is checked.
            own = client = httpx.Client(verify=tls_context(), timeout=self._client.timeout, follow_redirects=False)
        try:
            if credential is not None and credential.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": credential.identity_token,
                    "client_id": "patchline",
                    "scope": scope,
                }
                if service:
                    form["service"] = service
                response = client.post(realm, data=form)
            else:
                query: dict[str, str] = {"scope": scope}
                if service:
                    query["service"] = service
                headers = {}
                if credential is not None and credential.has_password:
                    headers = self._basic_header(required=True)
                    query["account"] = credential.username or ""
                response = client.get(realm, params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot get a token for {self._registry} from {realm}: {exc}"
            ) from exc
        finally:
            if own is not None:
                own.close()
        if response.status_code in (401, 403):
            who = f"user {credential.username!r}" if credential and credential.username else (
                "anonymous access"
            )
            raise AuthError(
                f"the token server of {self._registry} refused {who} "
                f"(HTTP {response.status_code}) for {scope}"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"the token server of {self._registry} answered HTTP {response.status_code}"
            )
        if len(response.content) > _TOKEN_RESPONSE_MAX:
            raise RegistryError(f"the token server of {self._registry} sent more than "
                                f"{_TOKEN_RESPONSE_MAX // 1024} KiB")
        try:
            doc = response.json()
        except RecursionError as exc:
            raise RegistryError(f"the token server of {self._registry} sent JSON nested too deeply") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"the token server of {self._registry} sent a response that is not JSON"
            ) from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"the token server of {self._registry} sent no token")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(f"the token server of {self._registry} sent no token")
        try:
            lifetime = float(doc.get("expires_in") or _TOKEN_LIFETIME_DEFAULT)
        except (TypeError, ValueError):
            lifetime = _TOKEN_LIFETIME_DEFAULT
        expires_at = time.monotonic() + max(lifetime - _TOKEN_EXPIRY_MARGIN, 1.0)
        with self._lock:
            self._tokens[scope] = _Token(value, expires_at)
        return {"Authorization": f"Bearer {value}"}
