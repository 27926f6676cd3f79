"""Skeleton and face-frame representations (timeline, PoTion, super-images)."""
