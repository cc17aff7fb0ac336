"""Tests of patchline.rollout."""
