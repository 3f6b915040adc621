"""Every number the gate uses (DESIGN.md, "The numbers the gate uses"): pure NumPy.

Binary attributes are the unit; arrays are ``y_true``, ``y_pred`` (0/1, shape
(n_samples, n_attributes)), ``y_score`` (probabilities), ``groups`` (0/1, shape
(n_samples, n_groups)) and ``sample_weight``: None, (n_samples,), or (n_resamples,
n_samples) bootstrap weights, which give every count-based metric a leading resample axis
(matrix products, no loop over samples or resamples). The gate's resamples are the Poisson
bootstrap's (:mod:`compress_gate.metrics.poisson_bootstrap`: weights that depend only on the
seed, the sample id and the resample, so a result does not depend on how the data is split);
:func:`bootstrap_weights` draws multinomial counts for one array in memory. Undefined values are ``nan``, documented per function, never 0.
"""

from compress_gate.metrics.bias import (BiasAmplification, TrainCounts, bias_amplification,
                                        bias_amplification_from_counts, train_class_balance,
                                        train_class_balance_from_counts, train_counts)
from compress_gate.metrics.bootstrap import bootstrap_weights, percentile_interval
from compress_gate.metrics.calibration import (CalibrationCounts, UncertaintyCounts, calibration_counts,
                                               expected_calibration_error, expected_calibration_error_from_counts,
                                               uncertainty, uncertainty_counts, uncertainty_from_counts)
from compress_gate.metrics.change import combined_error_variance, normalized_change, symmetric_distance_error
from compress_gate.metrics.cie import ModalCIE, modal_cie, rank_by_score, taxicab_score, weighted_jaccard_similarity
from compress_gate.metrics.interrelation import (InterrelationCounts, interrelation_counts, label_interrelation,
                                                 label_interrelation_from_counts)
from compress_gate.metrics.rates import (ConfusionCounts, accuracy, accuracy_from_counts, confusion_counts,
                                         error_rate, error_rate_from_counts, false_negative_rate,
                                         false_negative_rate_from_counts, false_positive_rate,
                                         false_positive_rate_from_counts, predict_labels)
from compress_gate.metrics.subgroups import (SubgroupCounts, SubgroupTable, cell_order, subgroup_counts, subgroup_names,
                                             subgroup_normalized_difference, subgroup_rates,
                                             subgroup_rates_from_counts)

__all__ = [
    "BiasAmplification",
    "CalibrationCounts",
    "ConfusionCounts",
    "InterrelationCounts",
    "ModalCIE",
    "SubgroupCounts",
    "SubgroupTable",
    "TrainCounts",
    "UncertaintyCounts",
    "accuracy",
    "accuracy_from_counts",
    "bias_amplification",
    "bias_amplification_from_counts",
    "bootstrap_weights",
    "calibration_counts",
    "cell_order",
    "combined_error_variance",
    "confusion_counts",
    "error_rate",
    "error_rate_from_counts",
    "expected_calibration_error",
    "expected_calibration_error_from_counts",
    "false_negative_rate",
    "false_negative_rate_from_counts",
    "false_positive_rate",
    "false_positive_rate_from_counts",
    "interrelation_counts",
    "label_interrelation",
    "label_interrelation_from_counts",
    "modal_cie",
    "normalized_change",
    "percentile_interval",
    "predict_labels",
    "rank_by_score",
    "subgroup_counts",
    "subgroup_names",
    "subgroup_normalized_difference",
    "subgroup_rates",
    "subgroup_rates_from_counts",
    "symmetric_distance_error",
    "taxicab_score",
    "train_class_balance",
    "train_class_balance_from_counts",
    "train_counts",
    "uncertainty",
    "uncertainty_counts",
    "uncertainty_from_counts",
    "weighted_jaccard_similarity",
]

from compress_gate.metrics.fairgrape import (GroupAveragePrecision, JointGroupCounts, JointGroupTable,  # noqa: E402
                                             PIECounts, PIEShares, accuracy_change_std, average_precision,
                                             average_precision_change_std, group_average_precision,
                                             group_change_std, joint_group_counts, joint_group_rates,
                                             joint_group_rates_from_counts, pie_counts, pie_counts_from_outcomes,
                                             pie_outcomes, pie_shares_from_counts, pruning_identified_exemplars)

__all__ += ["GroupAveragePrecision", "JointGroupCounts", "JointGroupTable", "PIECounts", "PIEShares",
            "accuracy_change_std", "average_precision", "average_precision_change_std", "group_average_precision",
            "group_change_std", "joint_group_counts", "joint_group_rates", "joint_group_rates_from_counts",
            "pie_counts", "pie_counts_from_outcomes", "pie_outcomes", "pie_shares_from_counts",
            "pruning_identified_exemplars"]

from compress_gate.metrics.similarity import linear_cka, svcca  # noqa: E402

__all__ += ["linear_cka", "svcca"]
