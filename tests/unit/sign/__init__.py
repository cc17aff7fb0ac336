"""Unit tests of patchline.sign: lookaside layout, registries.d, policy.json, the key directory."""
