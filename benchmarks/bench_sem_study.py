"""The SEM/QEMSCAN study (the original SEM project's Tables 1-3), split by field.

    python benchmarks/bench_sem_study.py --runs runs/sem_study [--only unet-resnet18 resunet ...]
        [--data-dir STUDY_DIR] [--val field_7] [--test field_8 field_9] [--smoke]

Data: nine synthetic SEM + QEMSCAN fields of 1024² px (``rockseg.preprocess.qemscan.
sem_study_fields``: 12 minerals, each field its own seed and misregistration, the
notebook-02 workflow: colours -> classes, registration, clean-up, merge to pore / quartz /
albite / clays+accessories, 1-px ignore band), written once to ``RUNS/data`` (about 20 s).
``--data-dir`` trains on an existing ``images/`` + ``masks/`` folder pair instead (e.g. a
set written by ``save_study``; its ``class_map.json`` is used when present). The split is
by FIELD, never by tile: train on six fields, validate on ``field_7``, test on ``field_8``
and ``field_9``; ``train_run`` checks it for leakage and scores whole held-out fields by
sliding window.

Models: U-Net and LinkNet (``sm_unet``, ``sm_linknet``) with resnet18, resnet34, vgg16,
efficientnetb3 and inceptionv3 encoders, ResUNet (16 filters, depth 4), and pix2pix in both
output modes (the profile's pix2pix recipe, its own optimisers; scored on decoded labels). Regime
``scratch`` always. For ``imagenet`` and ``imagenet_frozen`` (encoder frozen for the whole
run: rockseg has no second, unfrozen phase) the ImageNet encoder file is looked up first
(``$ROCKSEG_WEIGHTS_DIR``, the Keras cache, else a download is tried) without training
anything; when it is unavailable (offline) the table says so in that row instead of
training from scratch under the pretrained label.

Recipe (every run, as the original): Dice+Focal loss with median-frequency class weights,
Adam (lr 1e-3) with cosine warm restarts (periods of 2 then 4 epochs), flips/rot90
augmentation, no fingerprint plan, no test-time augmentation. BatchNormalization momentum
0.9 (PyTorch's default; Keras layers default to 0.99): with 0.99, 60 steps leave the moving
statistics that inference uses at 55 % of their initial values, and every model predicted
one class (see "Measured" below). Fixed compute, not time:
6 epochs x 10 steps of 4 random 256² crops (240 crops per model), validation mIoU on the
whole validation field at epochs 2, 4 and 6, the best of those weights kept. Then the
two models with the best VALIDATION mIoU are trained at 128 and 512 px crops (eval tile
= crop), with the same pixels per step (batch 16 / 4 / 1) and the same steps. Test
columns are reported, never used for selection.

Budget: at most 45 minutes on 2 CPU cores, estimated from step timings taken with the
machine shared (load 5): one 4x256² step costs 0.9 s (linknet-resnet18) to 6.9 s
(unet-vgg16), 30 s for all eleven models; 16x128² and 1x512² steps cost the same as
4x256² (1.8 s resnet18, 6.9 s vgg16 U-Net); an evaluation tile of 256² 0.09-0.40 s. So the
eleven 256-px runs take about 23 minutes (training 15, graph building 3, validation and
final scoring 5) and the tile-size runs about 5 minutes for resnet encoders, up to 20 if both
vgg16 models win: about 30 minutes, at most about 43. Every run also has a safety cap of
8 training minutes (``train_max_minutes``, twice the slowest run's need), which only a
much slower machine reaches; a run it stops shows it in the table. With ImageNet weights
available each pretrained regime adds about as much again as the scratch runs.
Finished runs are kept and skipped; an unfinished one is resumed.

Measured (2026-12-04, 2 cores): the first full run, with Keras' BatchNormalization momentum
0.99, learned nothing useful: every model stayed near the majority guess (test mIoU 0.08-0.27)
although its training accuracy rose to 0.83, because after 60 steps the moving statistics that
inference uses were still 55 % their initial values (re-estimating them from 32 training crops
lifted linknet-resnet18 from val mIoU 0.15 to 0.65 with the same weights). With momentum 0.9 the
same budget gives test mIoU 0.57-0.74 (ResUNet best, 0.737; U-Net resnet18 0.715; pix2pix 0.54 in
softmax and 0.30 in colour mode: 60 GAN steps are far too few for the GAN), and the whole study
(13 runs at 256 px, 4 tile-size runs) took 27.8 minutes, the first 8 of them beside a niced
package install.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rockseg.training.experiments import SEM_STUDY_BUDGET, SEM_STUDY_SPLIT, sem_study_settings

ARCHS = {"unet": "sm_unet", "linknet": "sm_linknet"}
BACKBONES = ("resnet18", "resnet34", "vgg16", "efficientnetb3", "inceptionv3")
# name -> (registry model, model options without the regime)
MODELS = {f"{a}-{b}": (m, {"backbone": b}) for a, m in ARCHS.items() for b in BACKBONES}
MODELS["resunet"] = ("resunet", {"base_filters": 16, "depth": 4})
# the conditional GAN in both output modes, with the profile's pix2pix recipe (class-balanced
# reconstruction term, 16-filter generator) under the study's crops and step budget
MODELS["pix2pix-softmax"] = ("pix2pix", {"mode": "softmax"})
MODELS["pix2pix-colour"] = ("pix2pix", {"mode": "colour"})


def has_encoder(model: str) -> bool:
    return "backbone" in MODELS[model][1]
REGIMES = ("scratch", "imagenet", "imagenet_frozen")
CLASSES = ("pore", "quartz", "albite", "clays+accessories")
SHORT = {"pore": "pore", "quartz": "quartz", "albite": "albite", "clays+accessories": "clay"}


def original_row() -> dict:
    """The original SEM project's best 256-px row (tile-level split, a commercial dataset), per
    class in CLASSES order, from the one place the originals' numbers are written
    (``rockseg/course/originals.json``)."""
    from rockseg.course.results import originals

    reported = next(p for p in originals() if p["key"] == "sem_qemscan")["per_class_iou"]
    return dict(zip(CLASSES, reported.values()))

# the budget, the split by field and the recipe (train_run overrides) live in the library, where
# notebook 09 reads them too
FULL = {**SEM_STUDY_BUDGET, "models": list(MODELS)}
SMOKE = {"shape": (512, 512), "epochs": 1, "steps": 2, "restart_epochs": 1, "val_every": 1,
         "batch": {128: 4, 256: 1, 512: 1}, "max_minutes": 2.0, "models": ["linknet-resnet18", "resunet"]}
SIZES = (128, 256, 512)


def run_name(model: str, regime: str = "scratch", size: int = 256) -> str:
    return model + ("" if regime == "scratch" else f"-{regime}") + ("" if size == 256 else f"@{size}")


def done(path: Path) -> bool:
    from rockseg.evaluation import load_run

    return (path / "run.json").is_file() and load_run(path).get("status") == "complete"


def weights_status(backbone: str) -> tuple[bool, str]:
    """Whether the ImageNet encoder file for ``backbone`` can be had, without training: a local
    file, else a download attempt (what Keras would do at build time)."""
    from rockseg.models.backbones import imagenet_weights_status

    return imagenet_weights_status(backbone, download=True)


def study_data(root: Path, data_dir, settings: dict, log=print) -> tuple[Path, Path, object]:
    """``(images, masks, class_map)``: the given folder pair, or the synthetic set in ``root/data``
    (made once; a set made with other settings is refused)."""
    from rockseg.data.classmap import read_class_map
    from rockseg.data.io import read_json
    from rockseg.errors import DataError
    from rockseg.preprocess.qemscan import save_study, sem_study_fields

    if data_dir:
        folder = Path(data_dir)
        for sub in ("images", "masks"):
            if not (folder / sub).is_dir():
                raise DataError(f"no {sub}/ folder: --data-dir needs an images/ + masks/ pair", path=folder)
        cmap = folder / "class_map.json"
        log(f"# data: {folder} (given)")
        return folder / "images", folder / "masks", read_class_map(cmap) if cmap.is_file() else None
    folder = root / "data"
    want = {"n_fields": 9, "shape": list(settings["shape"]), "seed": 0}
    if (folder / "study.json").is_file():
        rec = read_json(folder / "study.json", "study record")
        have = {k: rec["settings"].get(k) for k in want}
        if have != want:
            raise DataError(f"holds a study made with {have}, this run needs {want}; use another --runs folder",
                            path=folder)
        log(f"# data: kept {folder} ({want['n_fields']} fields of {want['shape'][0]}x{want['shape'][1]})")
    else:
        t0 = time.perf_counter()
        study = sem_study_fields(want["n_fields"], tuple(want["shape"]), want["seed"])
        save_study(study, folder)
        log(f"# data: made {folder} in {time.perf_counter() - t0:.0f} s: {want['n_fields']} fields of "
            f"{want['shape'][0]}x{want['shape'][1]}, notebook-02 workflow per field")
        log(study.summary())
    return folder / "images", folder / "masks", read_class_map(folder / "class_map.json")


def train_one(name: str, model: str, regime: str, size: int, data, cfg: dict, root: Path, split: dict) -> None:
    from rockseg import training as train

    registry_name, options = MODELS[model]
    options = dict(options)
    if has_encoder(model):
        options["regime"] = regime
    out = root / name
    resume = (out / "run.json").is_file()
    images, masks, class_map = data
    # a resumed run keeps its settings; only the epochs and the time cap may be given again
    overrides = {"train_epochs": cfg["epochs"], "train_max_minutes": cfg["max_minutes"]} if resume else \
        sem_study_settings(size, model=registry_name, budget=cfg)
    print(f"# {name}: {'resuming' if resume else 'training'} -> {out}", flush=True)
    t0 = time.perf_counter()
    train.train_run(registry_name, out=out, images=images, masks=masks, class_map=class_map,
                    split_options={"val": split["val"], "test": split["test"]}, profile="cpu",
                    model_options=options, resume=resume, overwrite=not resume, **overrides)
    print(f"# {name}: done in {time.perf_counter() - t0:.0f} s", flush=True)


def _iou_cells(rec) -> list[str]:
    per = rec["metrics"]["test"]["per_class_iou"]
    return ["-" if per.get(c) is None else f"{per[c]:.3f}" for c in CLASSES]


def _stop(rec) -> str:
    reason = (rec.get("training") or {}).get("stop_reason")
    return "" if reason in (None, "epochs done") else f" (stopped: {reason})"


def main_table(root: Path, models, regimes, unavailable: dict) -> str:
    from rockseg.evaluation import load_run

    lines = ["| model | encoder | regime | parameters | train s | val mIoU | test IoU "
             + " | ".join(SHORT[c] for c in CLASSES) + " | test mIoU |",
             "|---|---|---|---|---|---|" + "---|" * len(CLASSES) + "---|"]
    for model in models:
        arch, _, enc = model.partition("-")
        for regime in (regimes if has_encoder(model) else ("scratch",)):
            if regime != "scratch" and enc in unavailable:
                lines.append(f"| {arch} | {enc} | {regime} | weights unavailable offline |  |  |"
                             + " |" * len(CLASSES) + "  |")
                continue
            path = root / run_name(model, regime)
            if not done(path):
                lines.append(f"| {arch} | {enc or '-'} | {regime} | not run |  |  |" + " |" * len(CLASSES) + "  |")
                continue
            rec = load_run(path)
            m = rec["metrics"]
            lines.append(f"| {arch} | {enc or '-'} | {regime}{_stop(rec)} | {rec['model']['parameters']:,} | "
                         f"{rec['timing']['train_seconds']:.0f} | {m['val']['miou']:.4f} | "
                         + " | ".join(_iou_cells(rec)) + f" | {m['test']['miou']:.4f} |")
    return "\n".join(lines)


def size_table(root: Path, best: list, cfg: dict) -> str:
    from rockseg.evaluation import load_run

    lines = ["| model | crop = eval tile | batch | val mIoU | test IoU " + " | ".join(SHORT[c] for c in CLASSES)
             + " | test mIoU | train s |", "|---|---|---|---|" + "---|" * len(CLASSES) + "---|---|"]
    for name in best:
        for size in SIZES:
            path = root / (name if size == 256 else f"{name}@{size}")
            if not done(path):
                lines.append(f"| {name} | {size} | {cfg['batch'][size]} | not run |" + " |" * len(CLASSES) + "  |  |")
                continue
            rec = load_run(path)
            m = rec["metrics"]
            lines.append(f"| {name}{_stop(rec)} | {size} | {rec['config']['train_batch_size']} | "
                         f"{m['val']['miou']:.4f} | " + " | ".join(_iou_cells(rec))
                         + f" | {m['test']['miou']:.4f} | {rec['timing']['train_seconds']:.0f} |")
    return "\n".join(lines)


def original_table(root: Path, best_name: str | None, where: str) -> str:
    from rockseg.evaluation import load_run

    original = original_row()
    mean = sum(original.values()) / len(original)
    lines = ["| source | protocol | " + " | ".join(SHORT[c] for c in CLASSES) + " | mIoU |",
             "|---|---|" + "---|" * len(CLASSES) + "---|",
             "| original SEM project, best 256-px row | tile-level split (tiles of one field can sit in train "
             "and test), a commercial SEM/QEMSCAN dataset | " + " | ".join(f"{original[c]:.2f}" for c in CLASSES)
             + f" | {mean:.2f} |"]
    if best_name and done(root / best_name):
        rec = load_run(root / best_name)
        lines.append(f"| rockseg {best_name} (best val mIoU at 256 px) | field-level split: 6 train / 1 val / "
                     f"2 test {where}, whole test fields scored | "
                     + " | ".join(_iou_cells(rec)) + f" | {rec['metrics']['test']['miou']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=None, help="folder for the data and run folders "
                    "(default runs/sem_study, runs/sem_study_smoke with --smoke)")
    ap.add_argument("--data-dir", default=None,
                    help="an images/ + masks/ folder pair to use instead of the synthetic study set")
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(MODELS)}")
    ap.add_argument("--regimes", nargs="*", default=list(REGIMES), choices=REGIMES)
    ap.add_argument("--val", nargs="*", default=list(SEM_STUDY_SPLIT["val"]), help="validation field(s)")
    ap.add_argument("--test", nargs="*", default=list(SEM_STUDY_SPLIT["test"]), help="test field(s)")
    ap.add_argument("--smoke", action="store_true",
                    help="prove the pipeline: 512² fields, linknet-resnet18 and resunet, 1 epoch of 2 steps")
    args = ap.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    models = args.only or cfg["models"]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        print(f"unknown model(s) {unknown}; choose from {list(MODELS)}", file=sys.stderr)
        return 2
    root = Path(args.runs or ("runs/sem_study_smoke" if args.smoke else "runs/sem_study"))
    root.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"# budget: {cfg['epochs']} epochs x {cfg['steps']} steps per run, batch {cfg['batch']} by crop size, "
          f"validation every {cfg['val_every']} epoch(s), safety cap {cfg['max_minutes']} training minutes per run"
          + ("; the scratch study takes about 30 minutes on 2 CPU cores, at most about 43"
             if not args.smoke else " (smoke)"),
          flush=True)

    data = study_data(root, args.data_dir, cfg)
    split = {"val": list(args.val), "test": list(args.test)}
    print(f"# split by field: val {split['val']}, test {split['test']}, train every other field "
          "(leakage checked by train_run)", flush=True)

    unavailable = {}
    pretrained = [r for r in args.regimes if r != "scratch"]
    if pretrained:
        for enc in sorted({MODELS[m][1]["backbone"] for m in models if has_encoder(m)}):
            ok, note = weights_status(enc)
            print(f"# ImageNet weights for {enc}: {'available' if ok else 'UNAVAILABLE'} ({note})", flush=True)
            if not ok:
                unavailable[enc] = note

    runs = {}  # every model at 256 px, in each regime it can honestly run
    for model in models:
        for regime in (args.regimes if has_encoder(model) else ("scratch",)):
            if regime == "scratch" or MODELS[model][1]["backbone"] not in unavailable:
                runs[run_name(model, regime)] = (model, regime)
    for name, (model, regime) in runs.items():
        if done(root / name):
            print(f"# {name}: kept finished run", flush=True)
            continue
        train_one(name, model, regime, 256, data, cfg, root, split)

    from rockseg.evaluation import load_run

    finished = [n for n in runs if done(root / n)]
    if finished:
        used = load_run(root / finished[0])["dataset"]["split"]
        print("# split recorded in run.json: " + "; ".join(f"{k} {used[k]}" for k in ("train", "val", "test")))
    best = sorted(finished, key=lambda n: -load_run(root / n)["metrics"]["val"]["miou"])[:2]
    print(f"# best two by validation mIoU at 256 px: {best}", flush=True)
    for name in best:
        model, regime = runs[name]
        for size in (128, 512):
            if done(root / f"{name}@{size}"):
                print(f"# {name}@{size}: kept finished run", flush=True)
                continue
            train_one(f"{name}@{size}", model, regime, size, data, cfg, root, split)

    shape = cfg["shape"]
    print(f"\n## Per-model table at 256 px crops (eval tile 256); test = {', '.join(split['test'])}\n")
    print(main_table(root, models, args.regimes, unavailable))
    print("\n## Crop / tile size for the best two by validation mIoU (same pixels per step)\n")
    print(size_table(root, best, cfg))
    print("\n## Beside the original\n")
    where = (f"{args.data_dir} (given fields)" if args.data_dir
             else f"synthetic fields of {shape[0]}x{shape[1]}")
    print(original_table(root, best[0] if best else None, where))
    print(f"\n# wall time of this invocation: {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
