"""What every HTTP client of patchline shares."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, as httpx would make it (``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    respected): loading the CA bundle costs ~20 ms, once per client otherwise."""
    return httpx.create_ssl_context(verify=True, trust_env=True)
