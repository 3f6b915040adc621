"""What ``compress-gate run`` adds to the report: the engines' agreement, the run's headline numbers and
its section (recipe, stage times, compression and export facts, representation similarity)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from compress_gate.report.schema._base import Number, Outcome, _Node


class EngineCheck(BaseModel):
    """Another engine against the deployment engine; further keys of the check are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)
    engine: str
    label_agreement: Number = None
    max_score_difference: Number = None


class Engines(_Node):
    deployment: str
    agreement: list[EngineCheck] = []


class RunSummary(_Node):
    """The run's headline numbers (see :mod:`compress_gate.pipeline.summary`)."""

    verdict: Literal["pass", "fail"]
    outcome: Outcome
    teacher_accuracy: Number
    student_accuracy: Number
    student_accuracy_mitigated: Number
    overall_sparsity: Number
    quantized: bool | None
    distilled: bool | None
    cev: Number
    sde: Number
    cev_mitigated: Number
    sde_mitigated: Number
    worst_ba_increase: Number
    worst_ba_increase_mitigated: Number
    speedup: dict[str, float]
    limits_passed: int
    limits_total: int
    limits_failed: list[str]
    limits_undecided: list[str] = []
    scope: str = ""


class LayerSimilarity(_Node):
    """Linear CKA and SVCCA of the teacher's and the student's activations (one layer, or the mean over
    layers); null where undefined (the layer's output is constant over the rows; a mean over no defined layer)."""

    cka: Number
    svcca: Number


class SimilaritySection(_Node):
    """The run's representation similarity, teacher vs student (:mod:`compress_gate.pipeline.similarity`;
    the same facts as the run's ``similarity.json``).

    ``n_rows`` fixed ``split`` rows drawn with ``seed``; each stage's output averaged over space
    (``pooling``); SVCCA keeps the share ``keep`` of each representation's variance; ``student`` is
    ``model``, or ``qat float twin`` for a torch-backend QAT student (its weights without fake
    quantization); ``mean`` is over the layers where the value is defined; ``seconds`` the time taken.
    """

    n_rows: int
    seed: int
    split: Literal["calib"]
    keep: float
    pooling: str
    student: Literal["model", "qat float twin"]
    layers: dict[str, LayerSimilarity]
    mean: LayerSimilarity
    seconds: float


class SkippedImageEntry(_Node):
    """An image the run left out (``data.on_bad_image: skip``): its row's id, its file and the refusal."""

    id: str
    path: str
    reason: str


class RunSection(_Node):
    """What ``compress-gate run`` adds: the recipe, stage times, compression and export facts, and the
    representation similarity of the student to the teacher.

    Absent (null) in a report of ``compress-gate gate``, which judges predictions made elsewhere.
    """

    recipe: str
    recipe_hash: str
    seed: int
    compress_gate_version: str
    deployment_engine: str
    created: str | None = None
    teacher: dict[str, Any] | None = None
    stage_seconds: dict[str, float]
    total_seconds: float | None = None
    stage_cpu_seconds: dict[str, float] = {}
    compression: dict[str, Any]
    export: dict[str, Any] = {}
    similarity: SimilaritySection | None = Field(None, description="representation similarity, teacher vs "
                                                 "student; null in a report of schema version 5 or older")
    summary: RunSummary | None = None
    intended_use: str | None = None
    out_of_scope: str | None = None
    skipped_images: list[SkippedImageEntry] = Field(
        [], description="rows left out by the data's `on_bad_image: skip` (id, file, why); empty otherwise and "
                        "in a report of schema version 6 or older")
