"""The gemspec cataloger: the Ruby source RubyGems writes, read as text, in the forms it has taken."""

from __future__ import annotations

import pytest
from catalog_harness import glob_matches

from patchline._model import Ecosystem
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog.interface import Found
from patchline.catalog.ruby import RubyGemCataloger, is_gemspec

RUBY = RubyGemCataloger()

# As Gem::Specification#to_ruby writes it (RubyGems 3.x; Debian's ruby-rack ships this form).
RACK = b'''# -*- encoding: utf-8 -*-
# stub: rack 2.2.22 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.22"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "bug_tracker_uri" => "https://github.com/rack/rack/issues" } if s.respond_to? :metadata=
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.licenses = ["MIT".freeze]
  s.rubygems_version = "3.3.15".freeze
  s.summary = "A modular Ruby webserver interface.".freeze
  s.installed_by_version = "3.3.15" if s.respond_to? :installed_by_version
  if s.respond_to? :specification_version then
    s.specification_version = 4
  end
end
'''
NOKOGIRI = b'''# stub: nokogiri 1.15.4 x86_64-linux lib
Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = "1.15.4"
  s.platform = "x86_64-linux".freeze
  s.licenses = ["MIT".freeze, "Apache-2.0".freeze]
end
'''
# RubyGems 1.x: %q{} literals, a singular licence, no stub line.
OLD = b'''Gem::Specification.new do |s|
  s.name = %q{rake}
  s.version = "0.8.7"
  s.license = %q<MIT>
  s.rubygems_version = %q{1.3.7}
end
'''
STUB_ONLY = b"# stub: json 2.6.3 ruby lib\nGem::Specification.new do |s|\nend\n"
ESCAPED = b'Gem::Specification.new do |s|\n  s.name = "we\\"ird".freeze\n  s.version = \'1.0.pre\'\nend\n'


@pytest.mark.parametrize(("data", "expected"), [
    (RACK, Found(Ecosystem.GEM, "rack", "2.2.22", licenses=("MIT",))),
    (NOKOGIRI, Found(Ecosystem.GEM, "nokogiri", "1.15.4", arch="x86_64-linux", licenses=("MIT", "Apache-2.0"))),
    (OLD, Found(Ecosystem.GEM, "rake", "0.8.7", licenses=("MIT",))),
    (STUB_ONLY, Found(Ecosystem.GEM, "json", "2.6.3")),
    (ESCAPED, Found(Ecosystem.GEM, 'we"ird', "1.0.pre")),
])
def test_gemspec_forms(data: bytes, expected: Found) -> None:
    result = RUBY.parse("/usr/local/lib/ruby/gems/3.1.0/specifications/x.gemspec", data)
    assert result.packages == (expected,)
    assert result.skipped == ()


@pytest.mark.parametrize(("data", "reason"), [
    (b"Gem::Specification.new do |s|\n  s.version = \"1.0\"\nend\n", "gemspec has no s.name"),
    (b"Gem::Specification.new do |s|\n  s.name = \"x\"\nend\n", "gem 'x' has no s.version"),
    (b"\xff\xfe\x00garbage", "gemspec has no s.name"),
])
def test_a_gemspec_without_name_or_version_is_a_skip(data: bytes, reason: str) -> None:
    result = RUBY.parse("/x/specifications/x.gemspec", data)
    assert result.packages == ()
    assert result.skipped == (reason,)


def test_never_evaluated_only_assignments_at_line_start_count() -> None:
    data = b'# s.name = "evil"\nGem::Specification.new do |s|\n  s.summary = "s.version = \\"9\\""\n  s.name = "ok"\n'
    assert RUBY.parse("/x/specifications/ok.gemspec", data + b'  s.version = "1"\nend\n').packages == (
        Found(Ecosystem.GEM, "ok", "1"),)


@pytest.mark.parametrize(("path", "wanted"), [
    ("/usr/local/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
    ("/usr/local/lib/ruby/gems/3.1.0/specifications/default/openssl-3.0.1.gemspec", True),
    ("/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec", True),
    ("/srv/app/vendor/bundle/ruby/3.1.0/specifications/rack-2.2.3.gemspec", True),
    ("/usr/local/lib/ruby/gems/3.1.0/gems/rack-2.2.3/rack.gemspec", False),
    ("/usr/local/lib/ruby/gems/3.1.0/cache/rack-2.2.3.gem", False),
    ("/specifications/x/y.gemspec", False),
])
def test_globs_and_is_gemspec_agree(path: str, wanted: bool) -> None:
    assert any(glob_matches(g, path) for g in RUBY.globs) is wanted
    assert is_gemspec(path) is wanted


def test_an_os_package_owns_the_gemspecs_it_installed() -> None:
    listed = ["/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
              "/usr/share/rubygems-integration/all/gems/rack-2.2.22/lib/rack.rb",
              "/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec"]
    assert language_metadata_paths(listed) == (
        "/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
        "/usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
    )
