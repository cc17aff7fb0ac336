"""The one-string form of an advisory feed's URL: ``URL#allow_http&sha256=HEX``, and its checks.

Low on purpose: the configuration checks every feed URL when the file is read, without importing the feeds.
"""

from __future__ import annotations

from patchline.errors import FeedError

__all__ = ["check_feed_url", "feed_source", "pin_of", "split_source"]

_SHA256_HEX = frozenset("0123456789abcdef")


def feed_source(url: str, *, allow_http: bool = False, sha256: str | None = None) -> str:
    """The one-string form of a feed URL with its options, as :class:`OsvFeed` reads it."""
    options = (["allow_http"] if allow_http else []) + ([f"sha256={sha256.lower()}"] if sha256 else [])
    return f"{url}#{'&'.join(options)}" if options else url


def pin_of(value: str | None, *, where: str) -> str | None:
    if value is None:
        return None
    pin = value.strip().lower().removeprefix("sha256:")
    if len(pin) != 64 or not set(pin) <= _SHA256_HEX:
        raise FeedError(f"{where}: sha256 must be 64 hexadecimal digits, not {value!r}")
    return pin


def split_source(text: str, *, allow_http: bool, sha256: str | None) -> tuple[str, bool, str | None]:
    """(URL without fragment, allow_http, SHA-256 pin) of a feed URL, its fragment's options merged in."""
    url, _, fragment = text.partition("#")
    pin = pin_of(sha256, where=url)
    for option in filter(None, fragment.split("&")):
        key, has_value, value = option.partition("=")
        if key == "allow_http" and value.lower() in ("", "1", "true", "yes"):
            allow_http = True
        elif key == "sha256" and has_value:
            fragment_pin = pin_of(value, where=url)
            if pin is not None and pin != fragment_pin:
                raise FeedError(f"advisory feed {url} is pinned to two different SHA-256 digests")
            pin = fragment_pin
        else:
            raise FeedError(
                f"advisory feed {url}: unknown option {option!r} in the URL fragment (known: allow_http, sha256=HEX)"
            )
    return url, allow_http, pin


def check_feed_url(text: str, *, allow_http: bool = False, sha256: str | None = None) -> tuple[str, bool, str | None]:
    """:func:`split_source`, and a plain ``http://`` URL refused unless allowed."""
    url, allow_http, pin = split_source(text, allow_http=allow_http, sha256=sha256)
    if url.lower().startswith("http://") and not allow_http:
        raise FeedError(
            f"advisory feed {url} is plain http://: anyone on the way could change its advisories; "
            "use https://, or allow it for this one feed, best with a sha256 pin: a table "
            '{url = "...", allow_http = true, sha256 = "..."} in [advisories] feeds, or #allow_http '
            "at the end of the URL"
        )
    return url, allow_http, pin
