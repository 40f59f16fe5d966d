"""`foi eval` and `foi eval-import`: measure methods on a benchmark (docs/EVALUATION.md).

    foi eval-import pie-bench PIE-Bench/data -o pie.jsonl
    foi eval pie.jsonl --model timbrooks/instruct-pix2pix --out results/ --method foi --method ip2p
    accelerate launch -m foi_engine.cli eval pie.jsonl --out results/   (or torchrun: one process per GPU)

Heavy modules load only when a command runs, so `foi --help` stays instant."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import setting_options, threads
from ..catalog import (CLIP_MODEL, DEFAULT_MODEL, DINO_MODEL, METRIC_NAMES, PICKSCORE_MODEL, PICKSCORE_PROCESSOR,
                       TINY_RANDOM, model_settings)

IMPORTERS = ("pie-bench", "magicbrush", "emu-edit", "shapes")
# The settings `foi eval` takes on its command line; the others are the model's own, else the paper's.
EVAL_SETTINGS = ("steps", "strength", "image_guidance", "text_guidance", "resolution")


def add_parser(subparsers) -> None:
    """Register `eval` and `eval-import` on the `foi` command's subparsers."""
    ev = subparsers.add_parser(
        "eval", help="reproduce the paper's Table 1 on a benchmark manifest",
        description="Run each method on every edit of a manifest and measure it (resumable, shardable).")
    ev.add_argument("manifest", type=Path, help="JSON Lines manifest (see foi eval-import)")
    ev.add_argument("--out", type=Path, required=True, help="results folder (a rerun resumes it)")
    ev.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"the InstructPix2Pix model of foi and ip2p (default {DEFAULT_MODEL}; '{TINY_RANDOM}' to test)")
    ev.add_argument("--method", action="append", dest="methods", metavar="METHOD",
                    help="foi, ip2p (the same sampler, focus off), or NAME=foi:MODEL / NAME=ip2p:MODEL for "
                         "another checkpoint; repeat (default: foi and ip2p)")
    ev.add_argument("--seed", type=int, default=0, help="seed of items that name none (default 0)")
    setting_options.add_options(ev, EVAL_SETTINGS)
    ev.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: the fastest)")
    threads.add_option(ev)
    ev.add_argument("--shard", default="0/1", metavar="I/N",
                    help="take items I, I+N, I+2N, … (0 ≤ I < N); under `accelerate launch` each process "
                         "takes its part of this shard")
    ev.add_argument("--limit", type=int, default=None, help="only the first N items of the manifest")
    ev.add_argument("--metrics", default=",".join(METRIC_NAMES),
                    help=f"metric models to load: any of {', '.join(METRIC_NAMES)}, or none (default all)")
    ev.add_argument("--clip-model", default=CLIP_MODEL)
    ev.add_argument("--dino-model", default=DINO_MODEL)
    ev.add_argument("--pickscore-model", default=PICKSCORE_MODEL)
    ev.add_argument("--pickscore-processor", default=PICKSCORE_PROCESSOR)
    ev.add_argument("--report-only", action="store_true", help="only rebuild the table, CSV and pictures")
    ev.add_argument("--sheet-items", type=int, default=12, help="items on the contact sheet (default 12)")
    ev.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    ev.set_defaults(run=run)

    im = subparsers.add_parser(
        "eval-import", help="write an evaluation manifest from a downloaded benchmark",
        description="PIE-Bench (its data/ folder), MagicBrush (the HF parquet files, or the test folder "
                    "with edit_sessions.json), EMU-Edit test (the HF parquet files), or shapes (the built-in "
                    "shapes model's held-out scenes, generated: no source).")
    im.add_argument("benchmark", choices=IMPORTERS)
    im.add_argument("source", type=Path, nargs="?", help="the benchmark's folder or parquet file")
    im.add_argument("-o", "--output", type=Path, required=True, help="the manifest to write (.jsonl)")
    im.add_argument("--images-dir", type=Path, default=None,
                    help="where images inside parquet files are written (default: beside the manifest)")
    im.add_argument("--sessions", choices=("turns", "combined", "both"), default="turns",
                    help="MagicBrush: one item per turn, one multi-instruction item per session, or both")
    im.set_defaults(run=run_import)


def _methods(args):
    from .runner import parse_method

    specs = args.methods or ["foi", "ip2p"]
    methods = [parse_method(spec, args.model) for spec in specs]
    labels = [m.label for m in methods]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        from .manifest import ManifestError

        raise ManifestError(f"The method name {', '.join(duplicates)} is given twice: name each one differently.")
    return methods


def run(args) -> int:
    from ..settings import EditSettings
    from . import report, runner
    from .manifest import ManifestError, read_manifest

    if args.limit is not None and args.limit < 1:
        raise ManifestError(f"--limit must be at least 1, not {args.limit}.")
    skipped: list[str] = []
    items = read_manifest(args.manifest, skipped)[: args.limit]
    base = args.manifest.resolve().parent
    methods = _methods(args)
    which = [] if args.metrics.strip().lower() == "none" else [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(which) - {"clip", "dino", "pickscore"})
    if unknown:
        raise ManifestError(f"Unknown metric {', '.join(unknown)}: choose from clip, dino, pickscore, or none.")
    settings = EditSettings(**{**model_settings(args.model), **setting_options.given(args, EVAL_SETTINGS)})
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    every = runner.check_run_file(out, settings, args.seed, methods)
    for problem in skipped:  # each malformed entry is one failed item; the others run
        print(f"foi: skipped {problem}", file=sys.stderr)
    process, processes, device = runner.launched_processes()
    shard_index, shard_count = runner.parse_shard(args.shard)
    shard = (shard_index * processes + process, shard_count * processes)

    if not args.report_only:
        def load_models():
            from .models import MetricModels

            return MetricModels.load(which, device=args.device or device or _default_device(),
                                     clip_model=args.clip_model, dino_model=args.dino_model,
                                     pickscore_model=args.pickscore_model,
                                     pickscore_processor=args.pickscore_processor) if which else None

        def load_engine(model, dev):
            from ..engine import FoiEngine

            return FoiEngine.from_pretrained(model, device=dev)

        summary = runner.evaluate(items, methods, base, out, settings, seed=args.seed, load_models=load_models,
                                  load_engine=load_engine, shard=shard, device=args.device or device,
                                  progress=args.progress)
        print(f"{summary['done']} edits made, {summary['skipped']} already done, "
              f"{summary['failed'] + len(skipped)} failed"
              + (f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else ""))
        runner.wait_for_other_processes()
    if process == 0:
        paths = report.write_reports(out, items, every)
        shown = [m for m in every if any(runner.read_record(out, i, m) for i in items)]
        print(f"Wrote {paths['table']}, {paths['csv'].name}, {paths['plot'].name} and {paths['sheet'].name} "
              f"({len(shown)} methods)")
        print(paths["table"].read_text(encoding="utf-8"))
    return 0


def _default_device() -> str:
    from ..loading import choose_device

    return str(choose_device(None))


def run_import(args) -> int:
    from . import importers
    from .manifest import ManifestError, write_manifest

    manifest_dir = args.output.resolve().parent
    images = args.images_dir or manifest_dir / f"{args.output.stem}-images"
    if (args.source is None) != (args.benchmark == "shapes"):
        raise ManifestError("shapes needs no source folder; every other benchmark does: give its folder or file.")
    if args.benchmark == "shapes":
        items = importers.shapes(manifest_dir, images)
    elif args.benchmark == "pie-bench":
        items = importers.pie_bench(args.source, manifest_dir)
    elif args.benchmark == "emu-edit":
        items = importers.emu_edit(args.source, manifest_dir, images)
    elif (args.source / "edit_sessions.json").exists():
        items = importers.magicbrush_test(args.source, manifest_dir, args.sessions)
    else:
        items = importers.magicbrush_parquet(args.source, manifest_dir, images, args.sessions)
    write_manifest(args.output, items)
    guessed = sum(1 for item in items if item.extra.get("keyword_guessed"))
    multi = sum(1 for item in items if item.multi)
    print(f"Wrote {args.output}: {len(items)} edits ({multi} multi-instruction), "
          f"{guessed} with guessed keywords (marked keyword_guessed).")
    return 0
