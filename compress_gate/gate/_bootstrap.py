"""Bootstrap resamples of the gated numbers, finished from the merged resample tables.

The resamples are Poisson bootstrap resamples over the test rows: the weight of a row in
resample r is a counter-based Poisson(1) draw keyed by (``gate.seed``, a hash of the row's
id, r) (:mod:`compress_gate.metrics.poisson_bootstrap`), counted shard by shard in
:func:`compress_gate.gate._stats.shard_statistics`. Teacher and students share the weights
of each resample (a paired bootstrap), and the intervals do not depend on how the data is
split into shards or ordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compress_gate.gate._fairgrape_measures import PAIR_METRICS
from compress_gate.gate._measures import PopulationMetrics

__all__ = ["Resamples", "resamples"]


@dataclass(frozen=True)
class Resamples:
    """Per-resample values: ``values[(population, metric)]`` (B, U),
    ``balance[population]["cev" | "sde"]`` (B,) and ``pairs[metric]`` (B, U) of the judged
    population against the teacher (teacher-pair metrics)."""

    values: dict[tuple[str, str], np.ndarray]
    balance: dict[str, dict[str, np.ndarray]]
    pairs: dict[str, np.ndarray] = field(default_factory=dict)


def resamples(measurer: PopulationMetrics, *, judged: str, metrics_wanted: list[str],
              balance_keys: list[str], pair_metrics: list[str] | tuple[str, ...] = ()) -> Resamples:
    """The resampled values the limits and the report need.

    For each metric in ``metrics_wanted``, the teacher and the ``judged`` population (the
    same resamples: paired); CEV and SDE for each population in ``balance_keys``; each
    teacher-pair metric in ``pair_metrics`` for ``judged`` against the teacher.
    """
    values = {(key, metric): measurer.values(key, metric, resampled=True)
              for metric in metrics_wanted for key in ("teacher", judged)}
    balance = {}
    for key in balance_keys:
        cev, sde, _, _ = measurer.error_balance(key, resampled=True)
        balance[key] = {"cev": cev, "sde": sde}
    pairs = {metric: PAIR_METRICS[metric](measurer, judged, True) for metric in pair_metrics}
    return Resamples(values=values, balance=balance, pairs=pairs)
