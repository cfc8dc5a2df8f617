"""One-to-one assignment of detections to objects that maximises the total affinity (Hungarian / Jonker-Volgenant,
scipy.optimize.linear_sum_assignment), only over allowed pairs.

Best-first greedy matching takes the single best pair first and can then leave the others worse off: with two
objects of one class crossing, the object whose mask slid onto its neighbour grabs the neighbour's detection and the
neighbour is left with the wrong one (a swap). The optimal assignment maximises the sum instead. scipy's solver is C
(7 us for 16 x 50 here) and exact for rectangular problems; the matrices here are at most max_objects x detections.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def assign(affinity: np.ndarray, allowed: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, column), each row and column at most once, only where `allowed` [N, M], maximising the sum of
    `affinity` [N, M] (finite, >= 0) over the pairs; sorted by row. Among equal sums the solver's order decides."""
    affinity = np.asarray(affinity, np.float64)
    allowed = np.asarray(allowed, bool)
    if affinity.shape != allowed.shape:
        raise ValueError(f"affinity {affinity.shape} and allowed {allowed.shape} differ")
    if not allowed.any():
        return []
    rows = np.flatnonzero(allowed.any(axis=1))  # solve only where something is allowed
    cols = np.flatnonzero(allowed.any(axis=0))
    sub_allowed = allowed[np.ix_(rows, cols)]
    # A forbidden pair weighs less than leaving both sides unpaired, so it is only "chosen" where the solver must
    # pair every row of the smaller side; such pairs are dropped below. +1 keeps allowed pairs above 0.
    weights = np.where(sub_allowed, affinity[np.ix_(rows, cols)] + 1.0, -1e6)
    r, c = linear_sum_assignment(weights, maximize=True)
    keep = sub_allowed[r, c]
    return sorted(zip(rows[r[keep]].tolist(), cols[c[keep]].tolist()))
