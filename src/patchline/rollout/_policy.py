"""Every rule of ``[policy]`` on one image, as ``patchline policy check IMAGE`` shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from patchline.policy import PolicyDecision, check_bases

if TYPE_CHECKING:
    from patchline._config import Config
    from patchline.store import Store


def image_policy(config: Config, store: Store, image: str) -> PolicyDecision:
    """The rollout's rules on ``repository@digest`` and, when recipes build it, the plan's rules on the outside
    bases it is built FROM (their creation dates and signatures looked up live, as the plan does)."""
    from patchline import _clock
    from patchline.build import StorePlanState, base_facts
    from patchline.rollout._service import image_bases, rollout_decision

    decision = rollout_decision(config, store, image)
    policy = config.policy
    if not (policy.allowed_bases or policy.max_base_age_days is not None or policy.allowed_bases_signed_by):
        return decision
    bases, recipes, unknown = image_bases(config, store, image)
    if unknown:  # the plan's rules gate recipes, and no recipe builds this image
        return decision
    facts = base_facts(config, bases, StorePlanState(store, insecure=config.registries.insecure))
    at_plan = check_bases(policy, bases, subject=image, today=_clock.today(), facts=facts, aliases=recipes)
    return at_plan.merged(decision)
