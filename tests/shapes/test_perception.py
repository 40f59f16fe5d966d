"""The kind probe: its labels are the shapes' cells, and it learns a kind exactly when the input shows it."""

import numpy as np
import torch
import torch.nn.functional as F

from foi_engine.shapes import perception
from foi_engine.shapes.data import SHAPES, make_example


def test_labels_mark_the_cells_inside_each_shape():
    for i in range(20):
        example = make_example(i, "heldout")
        for grid in (16, 32):
            labels = perception.kind_labels(example, grid)
            factor = 64 // grid
            for kind, mask in example.shapes.items():
                share = mask.reshape(grid, factor, grid, factor).mean(axis=(1, 3))
                assert (labels[share >= perception.INSIDE] == SHAPES.index(kind) + 1).all()
                assert share[labels == SHAPES.index(kind) + 1].min() >= perception.INSIDE
            assert labels[labels > 0].size < grid * grid  # the background stays 0


def _scenes(count: int = 90):
    labels = torch.from_numpy(np.stack([perception.kind_labels(make_example(i, "heldout"), 16) for i in range(count)]))
    return labels, F.one_hot(labels, len(SHAPES) + 1).permute(0, 3, 1, 2).float()


def test_the_probe_reads_a_kind_that_is_shown_and_not_one_that_is_not():
    labels, shown = _scenes()
    assert perception.kind_accuracy(shown, labels, train=60, steps=150) > 0.9
    inside = labels[60:][labels[60:] > 0]
    commonest = np.bincount(inside.numpy()).max() / inside.numel()
    assert perception.kind_accuracy(torch.zeros_like(shown), labels, train=60, steps=30) <= commonest + 1e-6


def test_a_finer_input_is_reduced_to_the_grid():
    labels, shown = _scenes(12)
    finer = shown.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    assert 0.0 <= perception.kind_accuracy(finer, labels, train=8, steps=2) <= 1.0


def test_the_command_reads_a_work_folder(tmp_path, capsys):
    count = 12
    torch.save({"count": count, "source": torch.randn(count, 4, 16, 16)}, tmp_path / "latents.pt")
    perception.main(["--work", str(tmp_path), "--scenes", str(count), "--steps", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["VAE latent (16×16)", "picture pooled to 16×16", "picture (64×64)"]
