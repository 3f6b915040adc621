"""Pretrain the example network on another task, as a user's checkpoint would come from elsewhere.

The network of net.py learns 5 of the attributes (``round``, ``large``, ``left``, ``red``,
``striped``) on images of its own (not the example's PNG files), with a plain PyTorch
loop, and its ``state_dict`` is saved to ``pretrained.pt``. The recipe then fine-tunes this
checkpoint on all 10 attributes: its 5-output ``classifier`` is replaced through ``head``.

    python pretrain.py [--epochs 2] [--n 3000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from compress_gate.config.data import SyntheticDataConfig
from compress_gate.data.synthetic import make_synthetic_data
from net import build

HERE = Path(__file__).resolve().parent
PRETRAIN_ATTRIBUTES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=HERE / "pretrained.pt")
    args = parser.parse_args()
    torch.manual_seed(1)
    data = make_synthetic_data(SyntheticDataConfig(image_size=64, n_train=args.n, n_calib=100, n_test=800, seed=1))
    train = data.mask("train")
    inputs = torch.from_numpy(data.inputs[train])
    targets = torch.from_numpy(data.labels[train][:, :PRETRAIN_ATTRIBUTES].astype("float32"))
    model = build(num_classes=PRETRAIN_ATTRIBUTES, width=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=64, shuffle=True)
    for epoch in range(args.epochs):
        total = 0.0
        for x, y in loader:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(x)
        print(f"pretrain epoch {epoch + 1}/{args.epochs}: loss {total / len(inputs):.4f}")
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out} ({PRETRAIN_ATTRIBUTES} outputs)")


if __name__ == "__main__":
    main()
