"""Can a shape's kind be read from the VAE's latents? `python -m foi_engine.shapes.perception --work DIR`.

A keyword can only find its shape if the model sees which kind each shape is: a circle must
look unlike a star where the word is looked up. This probe trains the same small CNN to name
the kind of every grid cell at least 60 % inside a shape from three inputs, and prints each
accuracy on held-out training scenes:
- the VAE latents a training run encoded (`DIR/latents.pt`, from `train.py`);
- the picture average-pooled to the latent's grid (what colour pooling alone keeps);
- the 64×64 picture (what is there to be seen).
Chance is 25–30 % (four kinds, some more frequent among cells). MODEL_CARD.md, *What the
model can see*, gives the measured figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import SHAPES, SIZE, Example, make_example
from .train import TRAIN_OFFSET, to_pixels

INSIDE = 0.6  # a cell counts as inside a shape when this share of its pixels is


def kind_labels(example: Example, grid: int) -> np.ndarray:
    """(grid, grid) int64: 1 + the index in SHAPES of the shape a cell is inside, 0 elsewhere."""
    factor = SIZE // grid
    labels = np.zeros((grid, grid), dtype=np.int64)
    for kind, mask in example.shapes.items():
        inside = mask.reshape(grid, factor, grid, factor).mean(axis=(1, 3)) >= INSIDE
        labels[inside] = SHAPES.index(kind) + 1
    return labels


def probe_network(channels: int, factor: int) -> nn.Module:
    """Five convolutions; dilated ones see about 13 cells across, the size of the largest shape.
    An input `factor` times finer than the grid is first reduced by a strided convolution."""
    first = [nn.Conv2d(channels, 64, 3, padding=1)]
    if factor > 1:
        first += [nn.SiLU(), nn.Conv2d(64, 64, factor, stride=factor)]
    return nn.Sequential(*first, nn.SiLU(), nn.Conv2d(64, 64, 3, padding=2, dilation=2), nn.SiLU(),
                         nn.Conv2d(64, 64, 3, padding=2, dilation=2), nn.SiLU(), nn.Conv2d(64, 64, 3, padding=1),
                         nn.SiLU(), nn.Conv2d(64, len(SHAPES) + 1, 1))


def kind_accuracy(inputs: torch.Tensor, labels: torch.Tensor, train: int, steps: int = 600, seed: int = 0) -> float:
    """Fit the probe on the first `train` scenes; its accuracy on the inside cells of the rest."""
    torch.manual_seed(seed)
    network = probe_network(inputs.shape[1], inputs.shape[-1] // labels.shape[-1])
    optimiser = torch.optim.Adam(network.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(0, train, (64,), generator=generator)
        loss = F.cross_entropy(network(inputs[rows]), labels[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        predicted = network(inputs[train:]).argmax(dim=1)
    inside = labels[train:] > 0
    return float((predicted[inside] == labels[train:][inside]).float().mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a training work folder with latents.pt")
    parser.add_argument("--scenes", type=int, default=6000, help="scenes used; the last sixth tests")
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args(argv)
    data = torch.load(args.work / "latents.pt", weights_only=True)
    count = min(args.scenes, data["count"])
    latents = data["source"][:count].float()
    grid = latents.shape[-1]
    examples = [make_example(TRAIN_OFFSET + i) for i in range(count)]
    labels = torch.from_numpy(np.stack([kind_labels(example, grid) for example in examples]))
    pixels = to_pixels([example.source for example in examples])
    train = count - count // 6
    for name, inputs in ((f"VAE latent ({grid}×{grid})", latents),
                         (f"picture pooled to {grid}×{grid}", F.avg_pool2d(pixels, SIZE // grid)),
                         (f"picture ({SIZE}×{SIZE})", pixels)):
        print(f"{name}: kind of the cells inside shapes {kind_accuracy(inputs, labels, train, args.steps):.0%}",
              flush=True)


if __name__ == "__main__":
    main()
