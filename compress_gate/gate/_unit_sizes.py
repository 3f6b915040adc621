"""Each unit's n for the report: its test rows (``members``) and positive labels (``positives``).

From the teacher's point tables (the rows are the same for every model): the confusion counts
per subgroup row for attributes, (attribute, identity) pairs and subgroups, FairGRAPE's joint
group counts for joint groups. A model-wide number (accuracy, CEV, ...) has every test row as
members; engines have none. Positives are pooled over attributes for subgroups and joint groups.
"""

from __future__ import annotations

import numpy as np

from compress_gate.config.gate import GATED_METRICS

__all__ = ["unit_sizes"]


def unit_sizes(metric: str, confusion: object, joint: object | None, n_test: int, n_groups: int
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(members, positives) per unit of ``metric``, each (U,) or None where not counted.

    ``confusion``: the teacher's :class:`~compress_gate.metrics.SubgroupCounts` (rows ``all``,
    each group, the intersections); ``joint``: its :class:`~compress_gate.metrics.JointGroupCounts`
    (row ``all``, then each joint group) or None; ``n_groups``: the identity columns.
    """
    kind = GATED_METRICS[metric].unit
    size, positives = np.asarray(confusion.size), np.asarray(confusion.positives)   # type: ignore[attr-defined]
    k = positives.shape[-1]
    if kind == "model":
        return np.array([float(n_test)]), None
    if kind == "attribute":
        return np.full(k, float(n_test)), positives[0]
    if kind == "pair":                       # units a/g for a in attributes for g in groups
        members = np.repeat(size[1:1 + n_groups][None, :], k, axis=0).reshape(-1)
        return members, positives[1:1 + n_groups].T.reshape(-1)
    if kind == "subgroup":
        return size, positives.sum(axis=-1)
    if kind == "joint_group" and joint is not None:
        return (np.asarray(joint.size)[1:],                                           # type: ignore[attr-defined]
                (np.asarray(joint.tp) + np.asarray(joint.fn)).sum(axis=-1)[1:])      # type: ignore[attr-defined]
    return None, None

