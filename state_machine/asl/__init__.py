"""Building blocks of the local Amazon States Language interpreter (paths, intrinsics, rules)."""
