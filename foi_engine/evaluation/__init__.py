"""`foi eval`: the paper's Table 1 on public benchmarks, and how well FoI's masks match
ground-truth edit regions (docs/EVALUATION.md).

manifest (the JSON Lines format) · importers (PIE-Bench, MagicBrush, EMU-Edit) ·
groundtruth (their masks) · models (CLIP, DINOv2, PickScore) · quality (the arithmetic) ·
runner (resumable, sharded runs) · report (CSV, table, plot, contact sheet) · cli."""
