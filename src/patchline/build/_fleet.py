"""The fleet's recipes from ``patchline.toml``: ``[[images]]`` entries and globs, parsed and hashed.

Paths are relative to the configuration file's directory (the working directory
when there is no file). Every recipe's build also gets the build arg
``PATCHLINE_REGISTRY`` (``[build] registry``), so that a Containerfile can say
``FROM ${PATCHLINE_REGISTRY}/patchline/base`` and follow the fleet wherever it is pushed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from patchline._config import Config, ImageRecipe
from patchline.build._containerfile import parse_containerfile
from patchline.build.interface import Recipe, RecipeKind
from patchline.errors import BuildError, ConfigError, ReferenceError_
from patchline.oci import parse_image_ref

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_IGNORE_FILES = (".containerignore", ".dockerignore")


def _base_dir(config: Config) -> Path:
    return config.source.parent if config.source is not None else Path.cwd()


def build_args(config: Config, entry_args: Mapping[str, str]) -> dict[str, str]:
    """The build args of one recipe: PATCHLINE_REGISTRY, then ``[build] args``, then the recipe's own."""
    return {"PATCHLINE_REGISTRY": config.build.registry, **config.build.args, **entry_args}


def _recipe(config: Config, entry: ImageRecipe, name: str, context: Path | None) -> Recipe:
    if not _NAME_RE.match(name):
        raise ConfigError(f"image name {name!r}: use lowercase letters, digits, '.', '_' and '-'")
    target = entry.target or f"{config.build.registry}/{config.build.namespace}/{name}:latest"
    try:
        parse_image_ref(target)
    except ReferenceError_ as exc:
        raise ConfigError(f"image {name}: target {target!r}: {exc}") from exc
    max_age = entry.max_age_days or config.build.max_age_days
    if entry.image is not None:
        try:
            parse_image_ref(entry.image)
        except ReferenceError_ as exc:
            raise ConfigError(f"image {name}: {exc}") from exc
        return Recipe(name=name, kind=RecipeKind.PATCH, target=target, image=entry.image, max_age_days=max_age,
                      tests=entry.tests, network=entry.network)
    assert context is not None
    if not context.is_dir():
        raise BuildError(f"image {name}: build context {context} is not a directory")
    containerfile = context / entry.containerfile
    if not containerfile.is_file():
        raise BuildError(f"image {name}: no {entry.containerfile} in {context}")
    args = build_args(config, entry.args)
    try:
        text = containerfile.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"image {name}: cannot read {containerfile}: {exc}") from exc
    parsed = parse_containerfile(text, path=str(containerfile), build_args=args, target=entry.build_target)
    return Recipe(name=name, kind=RecipeKind.RECIPE, target=target, context=context, containerfile=containerfile,
                  args=args, build_target=entry.build_target, parsed=parsed, max_age_days=max_age,
                  tests=entry.tests, network=entry.network)


def load_recipes(config: Config) -> list[Recipe]:
    """Every recipe of the fleet, in configuration order; names and targets must be unique."""
    base = _base_dir(config)
    recipes: list[Recipe] = []
    for entry in config.images:
        if entry.glob is not None:
            matches = sorted(p for p in base.glob(entry.glob) if p.is_dir() and (p / entry.containerfile).is_file())
            if not matches:
                raise ConfigError(f"images glob {entry.glob!r} matches no directory with a {entry.containerfile}")
            recipes.extend(_recipe(config, entry, p.name, p) for p in matches)
            continue
        assert entry.name is not None
        context = (base / entry.context) if entry.context is not None else None
        recipes.append(_recipe(config, entry, entry.name, context))
    names: dict[str, Recipe] = {}
    targets: dict[str, str] = {}
    for r in recipes:
        if r.name in names:
            raise ConfigError(f"two images are named {r.name!r}")
        names[r.name] = r
        key = target_key(r.target)
        if key in targets:
            raise ConfigError(f"images {targets[key]} and {r.name} push to the same target {r.target}")
        targets[key] = r.name
    return recipes


def target_key(reference: str) -> str:
    """``registry/repository:tag`` as docker normalises it (the key local FROMs are matched by)."""
    ref = parse_image_ref(reference)
    return f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}"


def _ignored(rel: str, patterns: list[tuple[bool, str]]) -> bool:
    ignored = False
    for negate, pattern in patterns:
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.rstrip("/") + "/*"):
            ignored = not negate
    return ignored


def _ignore_patterns(context: Path) -> list[tuple[bool, str]]:
    for name in _IGNORE_FILES:
        path = context / name
        if path.is_file():
            out = []
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    negate = line.startswith("!")
                    out.append((negate, line.lstrip("!").strip("/")))
            return out
    return []


def input_hash(recipe: Recipe) -> str:
    """SHA-256 over what a build reads: the Containerfile, the build args and target, and the context's files.

    Files are hashed by relative path, type, executable bit and content (symlinks by their target);
    ``.containerignore``/``.dockerignore`` patterns are honoured; mtimes and owners are not inputs.
    """
    h = hashlib.sha256()
    if recipe.kind is RecipeKind.PATCH:
        h.update(f"patch\0{recipe.image}\0".encode())
        return "sha256:" + h.hexdigest()
    assert recipe.context is not None and recipe.containerfile is not None
    h.update(recipe.containerfile.read_bytes())
    for key in sorted(recipe.args):
        h.update(f"\0arg\0{key}={recipe.args[key]}".encode())
    h.update(f"\0target\0{recipe.build_target or ''}\0".encode())
    context = recipe.context
    patterns = _ignore_patterns(context)
    for root, dirs, files in os.walk(context):
        dirs.sort()
        rel_root = os.path.relpath(root, context)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            path = os.path.join(root, name)
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if _ignored(rel, patterns):
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                h.update(f"\0L\0{rel}\0{os.readlink(path)}".encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(f"\0F\0{rel}\0{st.st_mode & 0o111:o}\0".encode())
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))
                   and not _ignored(d if rel_root == "." else f"{rel_root}/{d}", patterns)]
    return "sha256:" + h.hexdigest()
