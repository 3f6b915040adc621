"""Saliency pruning in torch: FairGRAPE (fairness-aware) and the one-shot baselines SNIP and GraSP.

Every method has one signature::

    prune_<method>(model, loader, *, sparsity, params, task, groups=None, seed, **options)
        -> dict[str, torch.Tensor]      # parameter name -> 0/1 mask, already applied in place

``params`` names tensors SparseML's way (exact names or ``re:`` regexes). Counting: a
tensor (FairGRAPE) or the union of selected tensors (SNIP, GraSP) of ``n`` weights loses
exactly ``round_half_up(sparsity · n)``. Importing this package imports no torch.
"""

from compress_gate.compress.saliency.fairgrape import group_importance, greedy_keep, prune_fairgrape, target_shares
from compress_gate.compress.saliency.grasp import grasp_scores, hessian_gradient_product, prune_grasp
from compress_gate.compress.saliency.loader import group_training_loader, joint_groups
from compress_gate.compress.saliency.snip import prune_snip, snip_scores

#: Method name -> pruning function (all share the signature above).
PRUNERS = {"fairgrape": prune_fairgrape, "snip": prune_snip, "grasp": prune_grasp}

__all__ = ["PRUNERS", "prune_fairgrape", "prune_snip", "prune_grasp", "group_training_loader",
           "joint_groups", "group_importance", "target_shares", "greedy_keep", "snip_scores", "grasp_scores",
           "hessian_gradient_product"]
