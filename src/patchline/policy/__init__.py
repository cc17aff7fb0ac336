"""Policy gates: what may be built FROM, and what may be rolled out.

Each rule of ``[policy]`` has a name, and every verdict names its rule and the evidence; an exception in the
configuration (with an owner, a reason and an expiry) sets one rule aside for some subjects until it expires.
The rules are pure functions of plain data; what they need from the world (a base's creation date, a verified
signature, when a pending update was first seen) is looked up by the caller and passed in::

    decision = check_image(config.policy, subject="127.0.0.1:5000/example/web", fixable=rows, packages=names,
                           today=date.today())
    if not decision.ok:
        raise PolicyDenied(decision.summary())

At plan, ``check_bases`` (``allowed-bases``, ``base-age``, ``base-signed``, with :class:`BaseFacts`); at
rollout, ``check_image`` (``max-fixable-severity``, ``denied-packages``, ``pending-update-age``,
``required-runtime``).
"""

from patchline.policy._rules import (
    RULES,
    BaseFacts,
    PendingSecurityUpdate,
    PolicyDecision,
    Verdict,
    check_bases,
    check_image,
)

__all__ = ["RULES", "BaseFacts", "PendingSecurityUpdate", "PolicyDecision", "Verdict", "check_bases",
           "check_image"]
