"""The torch backend's method options: distillation kinds and saliency pruning in the recipe."""

from __future__ import annotations

import copy
import math

import pytest
from pydantic import ValidationError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from compress_gate.compress.torch_backend import TorchCompressor  # noqa: E402
from compress_gate.compress.torch_backend.distill import FeatureDistiller  # noqa: E402
from compress_gate.compress.torch_backend.finetune import fine_tune  # noqa: E402
from compress_gate.config.torch_backend import DistillationConfig, SaliencyConfig, TorchCompressionConfig  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from compress_gate.models import distill_losses  # noqa: E402
from compress_gate.models.build import build_model  # noqa: E402
from compress_gate.models.training import task_loss  # noqa: E402

PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
SIZE = 8
KINDS = ["hinton", "attention", "similarity", "crd"]


def _resnet(seed):
    torch.manual_seed(seed)
    return build_model("resnet", num_outputs=3, input_size=SIZE, width=8, depth=1).eval()


@pytest.fixture(scope="module")
def batches():
    """4 batches of 8 multi-label rows; groups alternate row by row, so every batch has both."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 3, SIZE, SIZE, generator=generator)
    targets = (torch.rand(32, 3, generator=generator) > 0.5).float()
    groups = torch.zeros(32, 2)
    groups[0::2, 0] = 1
    groups[1::2, 1] = 1
    return [(inputs[i:i + 8], targets[i:i + 8], groups[i:i + 8]) for i in range(0, 32, 8)]


# --- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "expected"), [
    ({}, {"kind": "hinton", "hardness": 0.5, "temperature": 2.0, "weight": None, "feat_dim": None}),
    ({"kind": "attention"}, {"weight": 1000.0, "hardness": None, "temperature": None}),
    ({"kind": "similarity"}, {"weight": 3000.0, "temperature": None}),
    ({"kind": "crd"}, {"weight": 0.8, "temperature": 0.07, "feat_dim": 128, "hardness": None}),
    ({"kind": "crd", "weight": 0.5, "feat_dim": 64}, {"weight": 0.5, "temperature": 0.07, "feat_dim": 64}),
])
def test_distillation_kinds_take_their_papers_defaults(section, expected):
    config = DistillationConfig.model_validate(section)
    assert {key: getattr(config, key) for key in expected} == expected


@pytest.mark.parametrize(("section", "message"), [
    ({"kind": "attention", "hardness": 0.5}, r"hardness do\(es\) not apply to distillation kind 'attention'"),
    ({"kind": "similarity", "temperature": 2.0}, "temperature do"),
    ({"kind": "hinton", "weight": 2.0}, "weight do"),
    ({"kind": "crd", "weight": 0}, "greater than 0"),
    ({"kind": "crd", "feat_dim": 1.5}, "valid integer"),
    ({"kind": "svcca"}, "'hinton', 'attention', 'similarity' or 'crd'"),
    ({"kind": "attention", "beta": 1000}, "Extra inputs are not permitted"),
])
def test_bad_distillation_sections_are_refused(section, message):
    with pytest.raises(ValidationError, match=message):
        DistillationConfig.model_validate(section)


SALIENCY = {"method": "snip", "params": PARAMS, "sparsity": 0.8}


@pytest.mark.parametrize(("section", "message"), [
    ({"saliency": {**SALIENCY, "steps": 3}}, "steps applies to method 'fairgrape' only"),
    ({"saliency": {**SALIENCY, "method": "fairgrape", "temperature": 200.0}}, "temperature applies to method "
                                                                              "'grasp' only"),
    ({"saliency": {**SALIENCY, "method": "lottery"}}, "'fairgrape', 'snip' or 'grasp'"),
    ({"saliency": {**SALIENCY, "sparsity": 1.0}}, "less than 1"),
    ({"saliency": {**SALIENCY, "batches": 0}}, "greater than or equal to 1"),
    ({"saliency": SALIENCY, "pruning": {"params": PARAMS, "final_sparsity": 0.8, "end_epoch": 1.0,
                                        "update_frequency": 0.5}}, "keep one of them"),
    ({"saliency": SALIENCY, "epochs": None}, "`epochs` is required"),
])
def test_bad_saliency_sections_are_refused(section, message):
    with pytest.raises(ValidationError, match=message):
        TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 2, **section})


def test_only_fairgrape_needs_group_batches():
    def compressor(method):
        return TorchCompressor(TorchCompressionConfig.model_validate(
            {"backend": "torch", "epochs": 1, "saliency": {**SALIENCY, "method": method}}))
    assert [compressor(m).needs_groups for m in ("fairgrape", "snip", "grasp")] == [True, False, False]


# --- distillation kinds ----------------------------------------------------------------------------

def _features(model, inputs, names, *, before=False):
    """Each named module's output (or first input) on ``inputs``: an independent hook, not the distiller's."""
    seen = {}
    modules = dict(model.named_modules())
    hooks = [modules[name].register_forward_pre_hook(lambda _m, a, name=name: seen.__setitem__(name, a[0]))
             if before else
             modules[name].register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out))
             for name in names]
    logits = model(inputs)
    for hook in hooks:
        hook.remove()
    return logits, [seen[name] for name in names]


@pytest.mark.parametrize("kind", ["attention", "similarity", "crd"])
def test_the_loss_is_the_task_loss_plus_the_papers_term(kind, batches):
    teacher, student = _resnet(0), _resnet(1).train()
    inputs, targets, _ = batches[0]
    config = DistillationConfig(kind=kind)
    distiller = FeatureDistiller(config, student, teacher, task="multilabel")
    logits = student(inputs)
    task = task_loss(logits, targets, "multilabel")
    total = distiller.loss(task, inputs, logits)
    distiller.close()
    # the same term recomputed from independently hooked features of the stages the docs name
    with torch.no_grad():
        if kind == "attention":
            names, term = ["layer1", "layer2", "layer3"], distill_losses.AttentionTransfer(weight=1000.0)
        elif kind == "similarity":
            names, term = ["layer3"], distill_losses.SimilarityPreserving(weight=3000.0)
        else:
            names, term = ["fc"], distiller.term  # CRD's heads are the distiller's (randomly initialised)
        _, mine = _features(student, inputs, names, before=kind == "crd")
        _, theirs = _features(teacher, inputs, names, before=kind == "crd")
        expected = term(mine[0], theirs[0]) if kind == "crd" else term(mine, theirs)
    assert float(expected) > 1e-3
    assert float(total.detach()) == pytest.approx(float(task.detach()) + float(expected), rel=1e-5)
    assert not student._forward_hooks and not student.fc._forward_pre_hooks  # close() removed every hook


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_one_training_step(kind, batches):
    teacher = _resnet(0)
    data = [b[:2] for b in batches[:2]]

    def one_step(distillation):
        student = _resnet(1)
        losses = []
        fine_tune(student, data, task="multilabel", epochs=0.5, lr=0.05, seed=0, teacher=teacher,
                  distillation=distillation, progress=lambda _d, _t, value: losses.append(value))
        return student, losses

    plain, plain_loss = one_step(None)
    distilled, distilled_loss = one_step(DistillationConfig(kind=kind))
    assert len(plain_loss) == len(distilled_loss) == 1
    assert distilled_loss[0] != pytest.approx(plain_loss[0], abs=1e-4)
    changed = [name for (name, a), (_, b) in zip(plain.named_parameters(), distilled.named_parameters())
               if not torch.allclose(a, b, atol=1e-6)]
    assert changed, f"{kind}: the distillation term did not change any weight"
    assert not distilled._forward_hooks and not distilled.fc._forward_pre_hooks


def test_crd_heads_train_with_the_student(batches, monkeypatch):
    teacher, student = _resnet(0), _resnet(1)
    data = [b[:2] for b in batches[:2]]
    trained = {}
    close = FeatureDistiller.close

    def keep_heads(self):
        trained.update(copy.deepcopy(self.term.state_dict()))
        close(self)

    torch.manual_seed(0)  # fine_tune seeds with `seed` before it creates the heads (32 = width 8 x 4)
    fresh = distill_losses.ContrastiveRepresentation(32, 32).state_dict()
    monkeypatch.setattr(FeatureDistiller, "close", keep_heads)
    fine_tune(student, data, task="multilabel", epochs=1, lr=0.05, seed=0, teacher=teacher,
              distillation=DistillationConfig(kind="crd"))
    assert set(trained) == set(fresh)
    assert all(not torch.equal(trained[k], v) for k, v in fresh.items())  # every head weight and bias moved


def test_a_one_sample_batch_has_no_crd_term(batches):
    teacher, student = _resnet(0), _resnet(1).eval()
    inputs, targets, _ = batches[0]
    distiller = FeatureDistiller(DistillationConfig(kind="crd"), student, teacher, task="multilabel")
    logits = student(inputs[:1])
    task = task_loss(logits, targets[:1], "multilabel")
    assert float(distiller.loss(task, inputs[:1], logits)) == float(task)
    distiller.close()


def test_feature_kinds_need_stage_modules():
    linear = torch.nn.Linear(4, 3)
    with pytest.raises(InputError, match="needs the model.s feature stages: list their module paths in `model.layers`"):
        FeatureDistiller(DistillationConfig(kind="attention"), linear, linear, task="multiclass")
    with pytest.raises(InputError, match="needs the classifier to be an nn.Linear at `model.head`"):
        FeatureDistiller(DistillationConfig(kind="crd"), linear, linear, task="multiclass")


# --- saliency pruning -------------------------------------------------------------------------------

def _exported_conv_zeros(path):
    from onnx import numpy_helper

    from compress_gate.compress.export import load_onnx

    graph = load_onnx(path).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = [initializers[n.input[1]] for n in graph.node if n.op_type == "Conv" and n.input[1] in initializers]
    return sum(int((w == 0).sum()) for w in weights)


@pytest.mark.parametrize(("method", "options"), [("fairgrape", {"steps": 2}), ("snip", {}), ("grasp", {})])
def test_saliency_students_reach_the_target_on_the_exported_graph(method, options, batches, tmp_path):
    teacher = _resnet(0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 1, "saliency": {
        "method": method, "params": PARAMS, "sparsity": 0.8, "batches": 1, **options}})
    compressor = TorchCompressor(config)
    loader = batches if compressor.needs_groups else [b[:2] for b in batches]
    result = compressor.compress(teacher, loader, task="multilabel", seed=0)
    pruned = sum(p.numel() for n, p in result.model.named_parameters() if n in result.sparsity)
    assert len(result.sparsity) == 8 and result.target_sparsity == 0.8
    # the masks are held through fine-tuning: the count is exact after it, not only after pruning
    assert result.overall_sparsity == pytest.approx(round(0.8 * pruned) / pruned, abs=1 / pruned)
    if method == "fairgrape":  # per layer: every tensor exactly at round_half_up(0.8 n)
        sizes = {n: p.numel() for n, p in result.model.named_parameters() if n in result.sparsity}
        assert all(result.sparsity[n] == math.floor(0.8 * sizes[n] + 0.5) / sizes[n] for n in sizes)
    inputs = torch.cat([b[0] for b in batches]).numpy()
    artefacts = compressor.export(result, tmp_path, sample=inputs[:8], task="multilabel", calib=None)
    assert abs(_exported_conv_zeros(artefacts["onnxruntime"]) / pruned - 0.8) <= 0.01
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_fairgrape_without_group_batches_is_refused(batches):
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 1, "saliency": {
        "method": "fairgrape", "params": PARAMS, "sparsity": 0.5, "batches": 1, "steps": 1}})
    with pytest.raises(InputError, match="groups"):
        TorchCompressor(config).compress(_resnet(0), [b[:2] for b in batches], task="multilabel", seed=0)


def test_saliency_with_distillation_keeps_the_masks(batches):
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 1, "saliency": {
        "method": "snip", "params": PARAMS, "sparsity": 0.5, "batches": 1}, "distillation": {"kind": "attention"}})
    result = TorchCompressor(config).compress(_resnet(0), [b[:2] for b in batches], task="multilabel", seed=0)
    assert result.distilled and result.overall_sparsity == pytest.approx(0.5, abs=1e-3)


def test_the_authors_procedure_preset_and_its_refusals():
    fairgrape = {"method": "fairgrape", "params": PARAMS, "sparsity": 0.8}
    authors = SaliencyConfig.model_validate({**fairgrape, "procedure": "authors"})
    assert (authors.keep_per_iter, authors.targets, authors.visits_per_choice, authors.scoring,
            authors.finetune_epochs, authors.importance_share, authors.steps, authors.batches) == (
        0.9, "per_iteration", 2, "train", 3.0, 1.0, None, None)
    # an explicit key wins; `steps` replaces the authors' schedule, `batches` their share
    mixed = SaliencyConfig.model_validate({**fairgrape, "procedure": "authors", "steps": 4, "batches": 2,
                                           "scoring": "eval"})
    assert (mixed.steps, mixed.keep_per_iter, mixed.batches, mixed.importance_share, mixed.scoring) == (
        4, None, 2, None, "eval")
    project = SaliencyConfig.model_validate(fairgrape)
    assert project.scored_batches(10) == 4 and authors.scored_batches(10) == 10
    assert SaliencyConfig.model_validate({**fairgrape, "importance_share": 0.25}).scored_batches(10) == 3
    for extra, message in (({"steps": 3, "keep_per_iter": 0.9}, "two schedules"),
                           ({"batches": 3, "importance_share": 0.5}, "keep one of them"),
                           ({"procedure": "paper"}, "'project' or 'authors'")):
        with pytest.raises(ValidationError, match=message):
            SaliencyConfig.model_validate({**fairgrape, **extra})
    with pytest.raises(ValidationError, match="procedure applies to method 'fairgrape' only"):
        SaliencyConfig.model_validate({**fairgrape, "method": "snip", "procedure": "authors"})


def test_fairgrape_fine_tunes_between_steps_and_counts_those_epochs(batches):
    # keep_per_iter 0.6 at sparsity 0.5: ceil(log_0.6(0.5)) = 2 steps, so one fine-tuning of 0.5 epoch between them
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 1, "saliency": {
        "method": "fairgrape", "params": PARAMS, "sparsity": 0.5, "procedure": "authors", "keep_per_iter": 0.6,
        "finetune_epochs": 0.5}})
    teacher = _resnet(0)
    result = TorchCompressor(config).compress(teacher, batches, task="multilabel", seed=0)
    assert result.epochs == 1.5
    sizes = {n: p.numel() for n, p in result.model.named_parameters() if n in result.sparsity}
    assert all(result.sparsity[n] == (sizes[n] - int(sizes[n] * 0.5)) / sizes[n] for n in sizes)
