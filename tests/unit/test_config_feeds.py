"""``[advisories] feeds``: plain strings, and tables for a URL that allows plain http or pins a SHA-256."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchline import load_config
from patchline.advisories import OsvFeed
from patchline.assess import options_from_config
from patchline.errors import ConfigError

PIN = "ab" * 32


def _load(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "patchline.toml"
    path.write_text("[advisories]\n" + text)
    return load_config(path).advisories.feeds


def test_strings_and_tables_become_feed_sources(tmp_path: Path) -> None:
    feeds = _load(
        tmp_path,
        'feeds = ["/srv/osv", "https://osv.invalid/all.zip",\n'
        f'  {{url = "http://mirror.invalid/osv/all.zip", allow_http = true, sha256 = "{PIN.upper()}"}},\n'
        f'  {{url = "https://osv.invalid/Debian/all.zip", sha256 = "{PIN}"}}]\n',
    )
    assert feeds == (
        "/srv/osv",
        "https://osv.invalid/all.zip",
        f"http://mirror.invalid/osv/all.zip#allow_http&sha256={PIN}",
        f"https://osv.invalid/Debian/all.zip#sha256={PIN}",
    )
    # What every command makes of them: the options stay with the feed, its name is the URL.
    feed = OsvFeed(feeds[2])
    assert feed.name == "http://mirror.invalid/osv/all.zip"


def test_feed_tables_reach_the_assessment_options(tmp_path: Path) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text('[advisories]\nfeeds = [{url = "http://mirror.invalid/all.zip", allow_http = true}]\n')
    options = options_from_config(load_config(path), feeds=["/extra"])
    assert options.feeds == ("http://mirror.invalid/all.zip#allow_http", "/extra")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('feeds = ["http://mirror.invalid/all.zip"]', r"advisories\.feeds: .*plain http://"),
        ('feeds = [{url = "http://mirror.invalid/all.zip"}]', "plain http://"),
        ('feeds = [{url = "https://osv.invalid/all.zip", allow_http = true}]', "only for an http:// URL"),
        ('feeds = [{url = "https://osv.invalid/all.zip", sha256 = "abc"}]', "64 hexadecimal digits"),
        ('feeds = [{url = "https://osv.invalid/all.zip", alow_http = true}]', "alow_http"),
        ('feeds = [{url = "/srv/osv", sha256 = "abc"}]', "http"),
        ('feeds = ["https://osv.invalid/all.zip#pin=1"]', "unknown option 'pin=1'"),
    ],
)
def test_feed_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text + "\n")
