"""Run a rebuild plan: build (or patch) each image after its bases, verify it by rescanning, push it by digest.

Scheduling: an item starts as soon as every item it is built FROM has finished
(so the wall time follows the critical path, not wave barriers), at most
``jobs`` at once. A base that fails (or fails verification) blocks its
dependants; the rest go on. A base that comes out unchanged skips the
dependants whose only reason was that base.

Every build pins its bases by digest: the Containerfile's FROM lines are
rewritten to the digest just pushed (a local base) or resolved when planning
(an outside image). A build whose image equals the current one is
``unchanged``: nothing is pushed, nothing needs rolling out. Nothing is
recorded as built before it is pushed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from patchline import _clock
from patchline._baseimage import need_tools
from patchline.build import _buildah
from patchline.build._containerfile import pin_references
from patchline.build._graph import BuildGraph
from patchline.build._plan import current_images
from patchline.build.interface import (
    BuildResult,
    BuildStatus,
    CurrentImage,
    PlanItem,
    ReasonCode,
    RebuildPlan,
    RebuildReport,
    RecipeKind,
    Verification,
)
from patchline.errors import BuildError, Error
from patchline.events.interface import EventDraft, EventType
from patchline.oci import split_reference
from patchline.sign.interface import ProvenanceFacts

if TYPE_CHECKING:
    from patchline._config import PolicyConfig
    from patchline._model import Inventory
    from patchline.assess import AssessOptions
    from patchline.fleet import DiscoverOptions
    from patchline.sign.interface import SignOptions
    from patchline.store import Store
    from patchline.updates import AptSuite, SourceIndexes

Say = Callable[[str], None]
PATCH_LABEL = "io.patchline.patched-from"
_FIXES = (ReasonCode.PENDING_UPDATES, ReasonCode.FIXABLE_ADVISORY)  # reasons a new image must resolve


@dataclass(frozen=True, slots=True)
class RebuildOptions:
    logs: Path
    env: _buildah.BuildEnv
    assess: AssessOptions
    discover: DiscoverOptions
    jobs: int = 0  # 0: the number of cores
    source_date_epoch: int | None = None
    update_sources: bool = True
    keyring_in_build: Path | None = None  # mounted as the signed-by keyring of the update sources
    run_tests: bool = True  # the recipes' integration tests ([[images]] tests)
    sign: SignOptions | None = None  # sign each pushed image and attach its SBOM
    policy: PolicyConfig | None = None  # [policy]: denied packages and licences refuse the push


class _Run:
    def __init__(self, plan: RebuildPlan, graph: BuildGraph, store: Store, options: RebuildOptions,
                 hashes: Mapping[str, str], say: Say, run_id: str) -> None:
        self.plan = plan
        self.graph = graph
        self.store = store
        self.options = options
        self.hashes = hashes
        self.say = say
        self.run_id = run_id
        self.logs = options.logs / run_id
        self.logs.mkdir(parents=True, exist_ok=True)
        # The rescans export new images from local storage into one layout: shared base layers export once.
        # Both scratch directories carry this process's pid: what a killed rebuild leaves, the next one removes.
        self.export = _buildah.owned_dir("export")
        self.scratch = _buildah.new_scratch()
        self.options = options = replace(options, discover=replace(options.discover, storage_export=self.export),
                                         env=replace(options.env, scratch=self.scratch))
        self.current = current_images(store)
        self.results: dict[str, BuildResult] = {}
        self.lock = threading.Lock()
        self.loaded: dict[tuple[AptSuite, ...], SourceIndexes] = {}
        self.inventories: dict[str, Inventory] = {}
        self.apt_read: dict[str, tuple[tuple[str, str], ...]] = {}  # recipe -> ("URL SUITE", InRelease SHA-256)
        self.t0 = time.monotonic()

    # -- inputs --------------------------------------------------------------------

    def pins(self, item: PlanItem) -> dict[str, str]:
        """reference -> digest for every base: this run's result, else the base's current image, else resolved."""
        out = dict(item.base_digests)
        for ref, base in self.graph.local[item.name]:
            result = self.results.get(base)
            current = self.current.get(base)
            digest = (result.manifest_digest if result else None) or (current.manifest_digest if current else None)
            if digest is None:
                raise Error(f"base {base} has no pushed image to build FROM")
            out[ref] = digest
        return out

    def timestamp(self, item: PlanItem, bases: Mapping[str, str]) -> int:
        if self.options.source_date_epoch is not None:
            return self.options.source_date_epoch
        cur = self.current.get(item.name)
        if (cur is not None and cur.source_date_epoch is not None and cur.input_hash == self.hashes.get(item.name)
                and dict(cur.bases) == dict(bases)):
            return cur.source_date_epoch  # same inputs: same timestamp, so the same image if the content is too
        return int(time.time())

    def _base_inventory_ref(self, item: PlanItem, bases: Mapping[str, str]) -> str | None:
        """What to read the update suites from: the image the built stage starts FROM."""
        recipe = item.recipe
        if recipe.kind is RecipeKind.PATCH:
            assert recipe.image is not None
            return _buildah.pinned(recipe.image, bases[recipe.image])
        assert recipe.parsed is not None
        stage = recipe.parsed.stages[recipe.parsed.target]
        while stage.base_stage is not None:
            stage = recipe.parsed.stages[stage.base_stage]
        if stage.base.lower() == "scratch":
            return None
        for ref, base in self.graph.local[item.name]:
            if ref == stage.base:
                result = self.results.get(base)
                digest = result.config_digest if result else None
                if digest is None and base in self.current:
                    digest = self.current[base].config_digest
                return f"store:{digest}" if digest else None
        if stage.base in bases:
            pin = _buildah.pinned(stage.base, bases[stage.base])
            return f"containers-storage:{pin}" if "@" not in pin else pin
        return None

    def _inventory(self, ref: str) -> Inventory:
        from patchline.fleet import inventory

        with self.lock:
            if ref in self.inventories:
                return self.inventories[ref]
        if ref.startswith("store:"):
            stored = self.store.inventory(ref.removeprefix("store:"))
            if stored is None:
                raise Error(f"no stored inventory of {ref.removeprefix('store:')}")
            inv = stored
        else:
            options = self.options.discover
            if self.options.env.tls_flag(ref):
                options = replace(options, insecure=True)
            inv = inventory(ref, options)
        with self.lock:
            self.inventories[ref] = inv
        return inv

    def suites_for(self, inventory: Inventory) -> list[AptSuite]:
        from patchline.assess import from_inventory, update_suites_for

        return update_suites_for(from_inventory(inventory), self.options.assess)

    def sources_mount(self, item: PlanItem, bases: Mapping[str, str], log: Path) -> _buildah.BuildEnv:
        """The build environment with the image's update suites mounted into RUN steps (when enabled)."""
        env = self.options.env
        if not self.options.update_sources:
            return env
        try:
            ref = self._base_inventory_ref(item, bases)
            if ref is None:
                return env
            suites = self.suites_for(self._inventory(ref))
        except Error as exc:
            with log.open("a") as fh:
                fh.write(f"patchline: no update sources mounted: {exc}\n")
            return env
        if not suites:
            return env
        keyring = self.options.keyring_in_build
        option = f"[signed-by={_buildah.KEYRING_IN_IMAGE}] " if keyring else ""
        lines = [f"deb {option}{s.url} {s.suite} {' '.join(s.components)}" for s in suites]
        sources = log.with_suffix(".sources.list")
        sources.write_text("\n".join(lines) + "\n")
        note = _buildah.loopback_note(item.recipe.network or env.network, [s.url for s in suites])
        with log.open("a") as fh:
            fh.write("patchline: update sources mounted into RUN steps:\n" + "\n".join(lines) + "\n")
            fh.write(f"patchline: {note}\n" if note else "")
        if note:
            self.say(f"[{item.name}] {note}")
        mounts = [*env.mounts, (sources, _buildah.SOURCES_IN_IMAGE)]
        if keyring is not None:
            mounts.append((keyring, _buildah.KEYRING_IN_IMAGE))
        return replace(env, mounts=tuple(mounts))

    # -- one item ------------------------------------------------------------------

    def build(self, item: PlanItem) -> BuildResult:
        started = time.monotonic()
        started_at = _clock.now()
        log = self.logs / f"{item.name}.log"
        cur = self.current.get(item.name)
        previous = cur.config_digest if cur else None
        bases: dict[str, str] = {}
        timestamp: int | None = None

        timings: dict[str, float] = {}
        mark = [time.monotonic()]

        def lap(phase: str) -> None:
            now = time.monotonic()
            timings[phase] = round(timings.get(phase, 0.0) + now - mark[0], 3)
            mark[0] = now

        def finish(status: BuildStatus, **kw: object) -> BuildResult:
            result = BuildResult(name=item.name, status=status, reasons=item.reasons, previous_digest=previous,
                                 bases=bases, log=log, seconds=time.monotonic() - started, timings=timings,
                                 started=started - self.t0, finished=time.monotonic() - self.t0,
                                 **kw)  # type: ignore[arg-type]
            repository = split_reference(item.recipe.target)[0]
            events = []
            bad = None
            if status is BuildStatus.BUILT:
                events = [EventDraft(EventType.IMAGE_REBUILT, result.pushed or repository,
                                     self.rebuilt_event(item, result, cur))]
            elif status is BuildStatus.VERIFY_FAILED:
                bad = (repository, result.error)
                events = [EventDraft(EventType.IMAGE_VERIFY_FAILED, repository, {
                    "recipe": item.name, "repository": repository, "config_digest": result.config_digest,
                    "error": result.error,
                    "verification": result.verification.as_dict() if result.verification else None})]
            self.store.record_build(
                run_id=self.run_id, recipe=item.name, kind=item.recipe.kind.value, status=status.value,
                target=item.recipe.target, reasons=[r.as_dict() for r in item.reasons],
                input_hash=self.hashes.get(item.name, ""), bases=bases, config_digest=result.config_digest,
                manifest_digest=result.manifest_digest, previous_config_digest=previous,
                verification=result.verification.as_dict() if result.verification else None, error=result.error,
                log_path=str(log), source_date_epoch=timestamp, started_at=started_at,
                finished_at=_clock.now(), events=events, unpromotable=bad)
            return result

        try:
            bases = self.pins(item)
            timestamp = self.timestamp(item, bases)
            env = self.sources_mount(item, bases, log)
            if item.recipe.network is not None:
                env = replace(env, network=item.recipe.network)
            lap("prepare")  # pins, the base's inventory, the update suites to mount
            tag = f"{item.recipe.target}"
            if item.recipe.kind is RecipeKind.PATCH:
                assert item.recipe.image is not None
                upstream = _buildah.pinned(item.recipe.image, bases[item.recipe.image])
                self.say(f"[{item.name}] patching {upstream} in place")
                image_id = _buildah.patch_in_place(
                    image=upstream, tag=tag, container=_buildah.container_name(f"patch-{item.name}"),
                    timestamp=timestamp, env=env, log=log, labels={PATCH_LABEL: upstream})
            else:
                image_id = self._bud(item, bases, timestamp, env, log, tag)
        except Error as exc:
            lap("build")
            self.say(f"[{item.name}] failed: {exc}")
            return finish(BuildStatus.FAILED, error=str(exc))
        lap("build")  # buildah (package downloads included), or the patch in place
        targeted = sorted({x for r in item.reasons if r.code in _FIXES for x in r.items})
        if previous == image_id and targeted:
            # The same image cannot have fixed what the rebuild was for (no update sources reachable?).
            why = f"the build produced the current image again; still there: {', '.join(targeted)}"
            self.say(f"[{item.name}] verification failed: {why}")
            return finish(BuildStatus.VERIFY_FAILED, config_digest=image_id, error=f"verification failed: {why}",
                          verification=Verification(remaining=tuple(targeted)))
        if previous == image_id:
            self.say(f"[{item.name}] unchanged ({image_id[:19]}): nothing to push")
            return finish(BuildStatus.UNCHANGED, config_digest=image_id,
                          manifest_digest=cur.manifest_digest if cur else None)
        # The rescan and the image's tests both gate the push and neither needs the other: the tests run in
        # containers while the rescan reads the layers, so the rescan adds nothing to the time-to-patch.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="patchline-tests") as tester:
            tests = (tester.submit(self.run_tests, item, image_id)
                     if item.recipe.tests and self.options.run_tests else None)
            t_rescan = time.monotonic()
            try:
                verification: Verification | None = self.verify(item, image_id, log)
                rescan_error = None
            except Error as exc:
                verification, rescan_error = None, exc
            timings["rescan"] = round(time.monotonic() - t_rescan, 3)
            outcomes: tuple[dict[str, object], ...] = ()
            tests_error = None
            if tests is not None:
                try:
                    outcomes, timings["tests"] = tests.result()
                except Error as exc:
                    tests_error = exc
        mark[0] = time.monotonic()
        if verification is None:
            self.say(f"[{item.name}] rescan failed: {rescan_error}")
            return finish(BuildStatus.FAILED, config_digest=image_id, error=f"rescan failed: {rescan_error}")
        if tests_error is not None:
            self.say(f"[{item.name}] tests could not run: {tests_error}")
            return finish(BuildStatus.FAILED, config_digest=image_id, error=f"tests could not run: {tests_error}")
        if tests is not None:
            verification = replace(verification, tests=outcomes)
        if not verification.passed:
            why = verification.why_failed()
            self.say(f"[{item.name}] verification failed: {why}")
            return finish(BuildStatus.VERIFY_FAILED, config_digest=image_id, verification=verification,
                          error=f"verification failed: {why}")
        refusal = self.push_policy(item, image_id)
        if refusal is not None:
            self.say(f"[{item.name}] refused before the push: {refusal}")
            return finish(BuildStatus.VERIFY_FAILED, config_digest=image_id, verification=verification,
                          error=f"refused before the push: {refusal}")
        repo, tagname, _ = split_reference(item.recipe.target)
        try:
            digest = _buildah.push(image_id=image_id, destination=item.recipe.target, env=self.options.env, log=log,
                                   digestfile=log.with_suffix(".digest"))
            self.store.record_refs(image_id, [(repo, tagname, digest)])
            lap("push")
        except Error as exc:
            self.say(f"[{item.name}] push failed: {exc}")
            return finish(BuildStatus.FAILED, config_digest=image_id, verification=verification,
                          error=f"push failed: {exc}")
        self.say(f"[{item.name}] pushed {item.recipe.target} @ {digest}")
        signed = None
        if self.options.sign is not None:
            from patchline.sign import sign_pushed

            try:
                signed = sign_pushed(self.options.sign, repository=repo, manifest_digest=digest,
                                     sbom=self.sbom_of(image_id),
                                     provenance=self.provenance_facts(item, bases, timestamp, started_at))
            except Error as exc:
                # Pushed but unsigned: the podman target refuses it, so it does not count as built.
                self.say(f"[{item.name}] signing failed: {exc}")
                return finish(BuildStatus.FAILED, config_digest=image_id, manifest_digest=digest,
                              verification=verification, error=f"signing failed: {exc}")
            lap("sign")
            self.say(f"[{item.name}] signed{' + cosign' if signed.cosign_tag else ''}"
                     f"{' + SBOM' if signed.sbom_digest else ''}")
        return finish(BuildStatus.BUILT, config_digest=image_id, manifest_digest=digest, verification=verification,
                      pushed=f"{repo}@{digest}", signed=signed)

    def run_tests(self, item: PlanItem, image_id: str) -> tuple[tuple[dict[str, object], ...], float]:
        """The image's tests: their outcomes, and the seconds they took."""
        from patchline.verify import run_image_tests

        started = time.monotonic()
        self.say(f"[{item.name}] running {len(item.recipe.tests)} test(s)")
        report = run_image_tests(image_id, item.recipe.tests, log_dir=self.logs / "tests",
                                 run_id=f"{self.run_id}-{item.name}")
        for outcome in report.outcomes:
            self.say(f"[{item.name}] test {outcome.name}: {'passed' if outcome.passed else 'FAILED'} "
                     f"({outcome.detail})")
        return tuple(o.as_dict() for o in report.outcomes), round(time.monotonic() - started, 3)

    def sbom_of(self, image_id: str) -> bytes | None:
        from patchline.sbom import render_sbom

        inventory = self.inventories.get(image_id) or self.store.inventory(image_id)
        return render_sbom(inventory, "cyclonedx").encode() if inventory is not None else None

    def push_policy(self, item: PlanItem, image_id: str) -> str | None:
        """``[policy]``'s rules a rebuild cannot fix by itself (denied packages and licences) on the new image:
        the refusal's summary (also a ``policy.denied`` event, step ``push``), or None.

        ``max-fixable-severity`` waits for the rollout: a rebuild that lowers the exposure is still pushed.
        """
        from patchline.policy import check_image

        policy = self.options.policy
        if policy is None or not (policy.denied_packages or policy.denied_licenses):
            return None
        inv = self.inventories.get(image_id)
        packages = inv.packages if inv is not None else ()
        only = policy.model_copy(update={"max_fixable_severity": None, "max_pending_update_age_days": None,
                                         "require_runsc_for_bases": (), "require_attestations": ()})
        decision = check_image(only, subject=item.recipe.target, fixable=[], packages=[p.name for p in packages],
                               licenses=[(p.name, p.licenses) for p in packages if p.licenses], today=_clock.today(),
                               unknown="" if inv is not None else "the new image's inventory is not known")
        if decision.ok:
            return None
        self.store.emit([EventDraft(EventType.POLICY_DENIED, split_reference(item.recipe.target)[0], {
            "step": "push", "service": None, "image": item.recipe.target, "recipe": item.name,
            "config_digest": image_id, "reason": decision.summary(), **decision.as_dict()})])
        return decision.summary()

    def provenance_facts(self, item: PlanItem, bases: Mapping[str, str], timestamp: int | None,
                         started_at: dt.datetime) -> ProvenanceFacts:
        from patchline import __version__

        recipe = item.recipe
        return ProvenanceFacts(
            recipe=item.name, target=recipe.target, kind=recipe.kind.value, input_hash=self.hashes.get(item.name, ""),
            bases=dict(bases), run_id=self.run_id, started=started_at, finished=_clock.now(),
            builder_version=__version__, apt_sources=self.apt_read.get(item.name, ()),
            containerfile=str(recipe.containerfile) if recipe.containerfile is not None else None,
            build_target=recipe.build_target, build_arg_names=tuple(sorted(recipe.args)),
            source_date_epoch=timestamp, update_sources=self.options.update_sources)

    def rebuilt_event(self, item: PlanItem, result: BuildResult, cur: CurrentImage | None) -> dict[str, object]:
        """The payload of ``image.rebuilt``: what changed, why, what it fixed."""
        verification = result.verification or Verification()
        fixed = set(verification.fixed)
        advisories = sorted({x for r in item.reasons if r.code is ReasonCode.FIXABLE_ADVISORY for x in r.items}
                            & fixed)
        pending = [x for r in item.reasons if r.code is ReasonCode.PENDING_UPDATES for x in r.items if x in fixed]
        signed = result.signed
        return {
            "recipe": item.name, "repository": split_reference(item.recipe.target)[0],
            "tag": split_reference(item.recipe.target)[1],
            "old_digest": cur.manifest_digest if cur else None, "new_digest": result.manifest_digest,
            "old_config_digest": cur.config_digest if cur else None, "new_config_digest": result.config_digest,
            "reasons": [r.as_dict() for r in item.reasons], "fixed_advisories": advisories,
            "pending_resolved": sorted(set(pending)), "sbom_diff": self.sbom_diff(cur, result.config_digest),
            "verification": verification.as_dict(), "bases": dict(result.bases),
            "signature": None if signed is None else {
                "simple": str(signed.simple_signature) if signed.simple_signature else None,
                "cosign_tag": signed.cosign_tag, "sbom_digest": signed.sbom_digest},
        }

    def sbom_diff(self, cur: CurrentImage | None, new_digest: str | None) -> dict[str, object]:
        """Packages added, removed and changed between the current image and the new one."""
        new = self.inventories.get(new_digest or "") or (self.store.inventory(new_digest) if new_digest else None)
        old = self.store.inventory(cur.config_digest) if cur else None
        if new is None:
            return {}
        after = {(p.ecosystem.value, p.name): p.version for p in new.packages}
        before = {(p.ecosystem.value, p.name): p.version for p in old.packages} if old else {}
        added = sorted(k[1] for k in after.keys() - before.keys())
        removed = sorted(k[1] for k in before.keys() - after.keys())
        changed = sorted(f"{k[1]} {before[k]} -> {after[k]}" for k in after.keys() & before.keys()
                         if after[k] != before[k])
        return {"added": len(added), "removed": len(removed), "changed": len(changed), "packages": len(after),
                "added_names": added[:50], "removed_names": removed[:50], "changed_versions": changed[:50]}

    def _bud(self, item: PlanItem, bases: Mapping[str, str], timestamp: int, env: _buildah.BuildEnv, log: Path,
             tag: str) -> str:
        recipe = item.recipe
        assert recipe.containerfile is not None and recipe.context is not None
        pins = {ref: _buildah.pinned(ref, digest) for ref, digest in bases.items()}
        text = pin_references(recipe.containerfile.read_text(), pins, build_args=recipe.args,
                              path=str(recipe.containerfile))
        pinned_file = log.with_suffix(".Containerfile")
        pinned_file.write_text(text)
        self.say(f"[{item.name}] building FROM {', '.join(pins.values()) or 'scratch'}")
        return _buildah.bud(containerfile=pinned_file, context=recipe.context, tag=tag, args=recipe.args,
                            timestamp=timestamp, env=env, log=log, target=recipe.build_target,
                            iidfile=log.with_suffix(".iid"))

    def verify(self, item: PlanItem, image_id: str, log: Path) -> Verification:
        """Rescan the new image into the store; what the rebuild was for must be gone and nothing new appear."""
        from patchline.assess import fetch_options, from_inventory, pending_against, unchecked_sources
        from patchline.updates import load_sources

        inv = self._inventory(f"containers-storage:{image_id.removeprefix('sha256:')}")
        self.inventories[image_id] = inv
        self.store.record_image(inv)
        scan = from_inventory(inv)
        pending_names: set[str] = set()
        try:
            suites = self.suites_for(inv) if self.options.assess.updates else []
        except Error as exc:
            # Checked against nothing, every pending update would look fixed: the rebuild would claim a fix it
            # cannot see (an image whose release, mirror or distribution patchline cannot tell is unknown).
            raise BuildError(f"cannot check the rebuilt image's pending updates: {exc}") from exc
        if suites:
            key = tuple(suites)
            with self.lock:
                loaded = self.loaded.get(key)
            if loaded is None:
                loaded = load_sources(list(suites), fetch_options(self.options.assess))
                with self.lock:
                    self.loaded[key] = loaded
            unchecked = unchecked_sources(suites, loaded)
            if unchecked:
                # Checked against what could be read, the unread source's updates would look applied: the
                # rebuild would claim a fix it cannot see. A failed build is retried by the next run.
                raise BuildError(f"update sources could not all be read for the rescan ({unchecked[0]})")
            pending = pending_against(scan, loaded, changelogs=self.options.assess.changelogs, say=lambda _l: None)
            self.store.record_pending(image_id, pending, revision=loaded.revision)
            with self.lock:
                self.apt_read[item.name] = tuple((label, info.document_sha256) for label, info in loaded.releases
                                                 if info.document_sha256)
            pending_names = {p.package.name for p in pending}
        findings = {f.advisory_id for f in self.store.fixable_for([image_id], fixable_only=False).get(image_id, [])}
        targeted = {x for r in item.reasons if r.code in _FIXES for x in r.items}
        old = item.current.config_digest if item.current else None
        new: set[str] = set()
        if old is not None:
            old_pending = {p.name for p in self.store.pending_for([old]).get(old, [])}
            old_findings = {f.advisory_id for f in self.store.fixable_for([old], fixable_only=False).get(old, [])}
            new = (pending_names - old_pending) | (findings - old_findings)
        remaining = targeted & (pending_names | findings)
        return Verification(fixed=tuple(sorted(targeted - remaining)), remaining=tuple(sorted(remaining)),
                            new=tuple(sorted(new)), pending_after=len(pending_names))

    # -- scheduling ----------------------------------------------------------------

    def blocked_by(self, item: PlanItem) -> tuple[str | None, bool]:
        """(failed base or None, whether every base came out unchanged or skipped)."""
        unchanged = True
        for base in item.after:
            result = self.results[base]
            if not result.status.ok:
                return base, False
            if result.status is BuildStatus.BUILT:
                unchanged = False
        return None, unchanged and bool(item.after)

    def run(self, jobs: int) -> RebuildReport:
        pending = list(self.plan.items)
        running: dict[Future[BuildResult], PlanItem] = {}
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="patchline-build") as pool:
            while pending or running:
                for item in list(pending):
                    if any(b not in self.results for b in item.after):
                        continue
                    pending.remove(item)
                    failed, unchanged = self.blocked_by(item)
                    if failed is not None:
                        self.results[item.name] = self._not_built(item, BuildStatus.BLOCKED,
                                                                  f"base {failed} {self.results[failed].status}")
                        continue
                    if unchanged and item.propagated_only:
                        self.results[item.name] = self._not_built(item, BuildStatus.SKIPPED,
                                                                  "every rebuilt base came out unchanged")
                        continue
                    if len(running) >= jobs:
                        pending.insert(0, item)
                        break
                    self.say(f"[{item.name}] {'; '.join(r.detail for r in item.reasons)}")
                    running[pool.submit(self.build, item)] = item
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    item = running.pop(future)
                    self.results[item.name] = future.result()
        order = {item.name: i for i, item in enumerate(self.plan.items)}
        results = sorted(self.results.values(), key=lambda r: order[r.name])
        return RebuildReport(run_id=self.run_id, results=tuple(results), seconds=time.monotonic() - self.t0)

    def _not_built(self, item: PlanItem, status: BuildStatus, why: str) -> BuildResult:
        self.say(f"[{item.name}] {status}: {why}")
        now = _clock.now()
        self.store.record_build(run_id=self.run_id, recipe=item.name, kind=item.recipe.kind.value,
                                status=status.value, target=item.recipe.target,
                                reasons=[r.as_dict() for r in item.reasons], error=why,
                                previous_config_digest=item.current.config_digest if item.current else None,
                                started_at=now, finished_at=now)
        at = time.monotonic() - self.t0
        return BuildResult(name=item.name, status=status, reasons=item.reasons, error=why,
                           previous_digest=item.current.config_digest if item.current else None, started=at,
                           finished=at)


def rebuild(plan: RebuildPlan, graph: BuildGraph, store: Store, options: RebuildOptions, *,
            hashes: Mapping[str, str], progress: Say | None = None, run_id: str | None = None) -> RebuildReport:
    """Build every item of ``plan`` (bases first, in parallel where the graph allows) and record the results."""
    need_tools("buildah", "podman")
    run_id = run_id or _clock.now().strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    jobs = options.jobs or os.cpu_count() or 1
    say = progress or (lambda _line: None)
    left = _buildah.clean_leftovers()
    if left:
        say(left.summary())
    runner = _Run(plan, graph, store, options, hashes, say, run_id)
    try:
        return runner.run(jobs)
    finally:
        shutil.rmtree(runner.export, ignore_errors=True)
        shutil.rmtree(runner.scratch, ignore_errors=True)
