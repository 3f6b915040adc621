"""Model architectures (ResNet-18, small-input ResNet, MobileNetV1) and the training loop.

Importing this package does not import torch; :func:`build_model` and
:func:`train_model` import it when called.
"""

from compress_gate.models.build import ARCHITECTURES, build_model
from compress_gate.models.training import ProgressCallback, Task, task_loss, train_model

__all__ = ["ARCHITECTURES", "ProgressCallback", "Task", "build_model", "task_loss", "train_model"]
