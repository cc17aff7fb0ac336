"""Policy gates: what may be built FROM, and what may be rolled out.

Each rule of ``[policy]`` has a name, and every verdict names its rule and the evidence; an exception in the
configuration (with an owner, a reason and an expiry) sets one rule aside for some subjects until it expires::

    decision = check_image(config.policy, subject="127.0.0.1:5000/example/web", fixable=rows, packages=names,
                           today=date.today())
    if not decision.ok:
        raise PolicyDenied(decision.summary())
"""

from patchline.policy._rules import (
    RULES,
    PolicyDecision,
    Verdict,
    check_bases,
    check_image,
)

__all__ = ["RULES", "PolicyDecision", "Verdict", "check_bases", "check_image"]
