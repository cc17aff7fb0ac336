"""Tests of patchline.verify."""
