"""``results/``: the tables and figures of a course run, gathered from its run records.

:func:`write_results` reads every run folder the notebooks wrote (``runs/NN_name-PROFILE/
RUN/run.json``) and the benchmark records committed under ``results/records/`` (the SEM study,
and the pix2pix recipe rows), and writes per protocol (dataset) a leaderboard (CSV and Markdown,
sorted by test mIoU; selection was on validation only), a per-class IoU heat map, training
curves, the confusion matrix of the best network, a prediction gallery; then the originals'
reported numbers beside ours (:func:`originals`, from ``originals.json``), the notebooks' measured
run times, and ``REPORT.md`` linking everything; writing the course's own ``results/``
also refreshes the README's results block (:func:`update_readme_results`). Every number in it
comes from a run record, a timing that ``rockseg reproduce`` took, or (for the originals) what
their projects reported.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from rockseg.course import notebooks as nbs
from rockseg.evaluation.records import RUN_FILE, load_run, run_options
from rockseg.evaluation.tables import weights_used

__all__ = ["centre_window", "collect", "comparison", "comparison_markdown", "confusion", "curves", "gallery", "heatmap",
           "leaderboard", "originals", "readme_excerpt", "update_readme_results", "write_results"]

RUNS = nbs.ROOT / "runs"
RESULTS = nbs.ROOT / "results"
RECORDS = RESULTS / "records"
ORIGINALS = Path(__file__).with_name("originals.json")
FOLDER_RE = re.compile(r"^(\d\d_[a-z0-9_]+)-([a-z]+)$")
# Benchmark records that are leaderboard rows (the rest of results/records/ are ablations that
# notebook 08 reads): the whole SEM study, and the pix2pix cpu recipe in both modes.
BENCHMARK_ROWS = {"sem_study": None, "pix2pix": ("final-softmax-frs", "final-colour-frs")}
# The README's results block (written by write_results from the leaderboard CSVs).
README_RESULTS = ("<!-- results:start -->", "<!-- results:end -->")
MAIN_PROTOCOL = "sandstone-versa"
# Folder datasets have no registered name; these are the protocols they stand for.
FOLDER_PROTOCOLS = {"sem_study": "sem-study", "09_sem_study": "sem-study"}


def _usable(rec) -> bool:
    """A complete record with test metrics, on a protocol the results compare (a user's own folder,
    as in notebook 12, is no protocol: it is left out)."""
    return (rec.get("status") == "complete" and bool((rec.get("metrics") or {}).get("test"))
            and not rec["dataset"].get("name", "").startswith("folder:"))


def _with_source(rec, source: str, run_dir: Path) -> dict:
    rec.setdefault("dataset", {})
    rec["notebook"] = source
    rec["run_dir"] = str(run_dir)
    name = rec["dataset"].get("name", "?")
    if name.startswith("folder:") and source in FOLDER_PROTOCOLS:
        rec["dataset"] = {**rec["dataset"], "name": FOLDER_PROTOCOLS[source]}
    return rec


def collect(runs_root=None, profile: str = "cpu", *, records_root=None, benchmarks: bool = False) -> list[dict]:
    """Every complete run record under ``runs_root/NN_name-PROFILE/`` (any depth), with the
    notebook that wrote it as ``record["notebook"]``; with ``benchmarks``, also the committed
    benchmark rows of ``records_root`` (default ``results/records``), as ``"benchmark:NAME"``."""
    root = Path(runs_root) if runs_root else RUNS
    out = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        m = FOLDER_RE.match(folder.name)
        if not m or m.group(2) != profile:
            continue
        for rj in sorted(folder.rglob(RUN_FILE)):
            rec = _with_source(load_run(rj.parent), m.group(1), rj.parent)
            if _usable(rec):
                out.append(rec)
    if benchmarks:
        rroot = Path(records_root) if records_root else RECORDS
        for bench, names in BENCHMARK_ROWS.items():
            for rj in sorted((rroot / bench).glob(f"*/{RUN_FILE}")):
                if names is not None and rj.parent.name not in names:
                    continue
                rec = _with_source(load_run(rj.parent), bench, rj.parent)
                if _usable(rec):
                    rec["notebook"] = f"benchmark:{bench}"
                    out.append(rec)
    return out


def originals(path=None) -> list[dict]:
    """What the original projects reported (``originals.json``): project, model, numbers,
    protocol, flaw, and which of our datasets/models it compares with."""
    return json.loads(Path(path or ORIGINALS).read_text())["projects"]


def _protocol(rec) -> str:
    ds = rec["dataset"]
    split = ds.get("split") or {}
    sizes = "/".join(str(len(split.get(p) or [])) for p in ("train", "val", "test"))
    how = (ds.get("split_info") or {}).get("method", "given")
    leak = " LEAKY" if (ds.get("split_info") or {}).get("leakage") else ""
    return f"{how} split {sizes}{leak}"


def comparison(records, projects=None) -> list[dict]:
    """Each original's reported row beside ours on an honest split: for every project, our
    network of the same family with the best **validation** mIoU on the dataset it compares
    with (any network when the project names none), its test mIoU and per-class IoU."""
    rows = []
    for proj in projects if projects is not None else originals():
        want = proj.get("compare") or {}
        cands = [r for r in records if r["dataset"]["name"] == want.get("dataset")
                 and (want.get("model") is None or r.get("model", {}).get("name") == want["model"])
                 and r.get("model", {}).get("name") not in ("otsu", "rf")]
        ours = max(cands, key=lambda r: (r["metrics"].get("val") or {}).get("miou") or 0, default=None)
        row = {"project": proj["project"], "reported": proj.get("miou"), "reported_metric": proj.get("metric"),
               "reported_per_class": proj.get("per_class_iou") or {}, "their_protocol": proj["protocol"],
               "flaw": proj["flaw"], "ours": None, "missing": want.get("missing") or "not run in this profile"}
        if ours is not None:
            test = ours["metrics"]["test"]
            row["ours"] = {"model": _label(ours), "source": ours["notebook"], "run": Path(ours["run_dir"]).name,
                           "test_miou": test["miou"], "per_class": test.get("per_class_iou") or {},
                           "protocol": _protocol(ours)}
        rows.append(row)
    return rows


def comparison_markdown(rows) -> str:
    out = ["| original project | reported | their per-class IoU | their protocol (flaw) | ours (selected on val) "
           "| our test mIoU | our per-class IoU | our protocol |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        theirs = " / ".join(f"{k} {v:.3f}" for k, v in r["reported_per_class"].items()) or "–"
        rep = f"{r['reported_metric']} {r['reported']:.4f}" if r["reported"] is not None else "–"
        o = r["ours"]
        mine = (f"{o['model']} [{o['source']}]", f"{o['test_miou']:.4f}",
                " / ".join(f"{k} {v:.3f}" for k, v in o["per_class"].items() if v is not None), o["protocol"]) \
            if o else (r.get("missing") or "not run in this profile", "–", "–", "–")
        out.append(f"| {r['project']} | {rep} | {theirs} | {r['their_protocol']} ({r['flaw']}) | " + " | ".join(mine) + " |")
    return "\n".join(out)


def _tag(rec) -> str:
    """Where a record comes from, short: the notebook number or "bench"."""
    return rec["notebook"][:2] if rec["notebook"][:2].isdigit() else "bench"


def _label(rec) -> str:
    model = rec.get("model", {})
    opts = run_options(rec)
    extra = [str(opts[k]) for k in ("backbone", "regime", "mode") if opts.get(k)]
    if opts.get("regime", "scratch") != "scratch" and not weights_used(rec).startswith("ImageNet"):
        extra.append(weights_used(rec))  # an ImageNet regime that fell back: never shown as ImageNet
    return model.get("name", "?") + (f" ({', '.join(extra)})" if extra else "")


def leaderboard(records) -> dict[str, list[dict]]:
    """``{dataset: rows}``, each list sorted by test mIoU (best first)."""
    boards: dict[str, list[dict]] = {}
    for rec in records:
        test, val = rec["metrics"]["test"], (rec["metrics"].get("val") or {})
        timing = rec.get("timing") or {}
        row = {"model": _label(rec), "notebook": rec["notebook"], "run": Path(rec["run_dir"]).name,
               "parameters": rec.get("model", {}).get("parameters"),
               "epochs": (rec.get("training") or {}).get("epochs_run"),
               "protocol": _protocol(rec), "val_miou": val.get("miou"), "test_miou": test.get("miou"),
               **{f"test_iou_{c}": v for c, v in (test.get("per_class_iou") or {}).items()},
               "pixel_accuracy": test.get("pixel_accuracy"),
               "train_seconds": timing.get("train_seconds"), "inference_mpx_per_s": _speed(timing)}
        boards.setdefault(rec["dataset"]["name"], []).append(row)
    for rows in boards.values():
        rows.sort(key=lambda r: -(r["test_miou"] or 0))
    return boards


def _speed(timing) -> float | None:
    """Inference megapixels per second, from a record's timing (None when not timed)."""
    sec, shape = timing.get("inference_seconds_per_slice"), timing.get("slice_shape")
    if not sec or not shape:
        return None
    px = 1
    for n in shape[:2]:
        px *= int(n)
    return round(px / 1e6 / float(sec), 3)


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if v <= 1 else (f"{v:.2f}" if v < 10 else f"{v:.0f}")
    return str(v)


def _markdown(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(c.replace("_", " ") for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _classes(rows) -> list[str]:
    return list(dict.fromkeys(k[len("test_iou_"):] for r in rows for k in r if k.startswith("test_iou_")))


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path.name


def _networks(records) -> list[dict]:
    """Records of trained networks (a ``history.csv`` beside them), best validation mIoU first."""
    nets = [r for r in records if (Path(r["run_dir"]) / "history.csv").is_file()]
    return sorted(nets, key=lambda r: -((r["metrics"].get("val") or {}).get("miou") or 0))


def centre_window(shape, size: int | None) -> tuple[slice, slice]:
    """The central ``size`` x ``size`` pixels of an image of ``shape`` (all of a side shorter than
    ``size``; all of it for None)."""
    if not size:
        return slice(None), slice(None)
    starts = [max(0, (int(n) - size) // 2) for n in shape[:2]]
    return tuple(slice(a, a + min(size, int(n))) for a, n in zip(starts, shape[:2]))


def gallery(records, *, k: int = 3, index: int = -1, data_dir=None, window: int | None = 256):
    """Image / truth / prediction / errors on one test image for the ``k`` best models (by test
    mIoU) whose saved model is in their run folder; all records must share one dataset. The whole
    image is segmented; the figure shows its central ``window``² pixels (None: all of it), where
    one-pixel errors stay visible."""
    from rockseg.analysis.figures import COLOURBLIND, class_palette, plot_gallery
    from rockseg.evaluation.evaluate import held_out, load_label_predictor, split_data_of

    usable = [r for r in sorted(records, key=lambda r: -r["metrics"]["test"]["miou"])
              if (Path(r["run_dir"]) / (r.get("model") or {}).get("file", "model.keras")).is_file()][:k]
    if not usable:
        return None
    data = split_data_of(usable[0], data_dir)
    images, masks = held_out(data, ["test"])["test"]
    image, truth = images[index], masks[index]
    crop = centre_window(image.shape, window)
    h, w = (len(range(*c.indices(n))) for c, n in zip(crop, image.shape[:2]))
    where = "a test image" if (h, w) == image.shape[:2] else f"a test image, its central {h}x{w} pixels"
    rows = {f"{_label(r)} [{_tag(r)}]": (image[crop], truth[crop], load_label_predictor(r["run_dir"], r)(image)[crop])
            for r in usable}
    names = usable[0]["metrics"]["test"]["class_names"]
    colours = class_palette(data.class_colours, "dataset") if data.class_colours else COLOURBLIND[:len(names)]
    return plot_gallery(rows, names, colours, title=f"{usable[0]['dataset']['name']}: {where}")


def heatmap(dataset: str, rows):
    """Per-class test IoU heat map of one leaderboard (rows as :func:`leaderboard` gives them)."""
    from rockseg.analysis.figures import plot_iou_heatmap

    counts = {}
    for r in rows:
        counts[r["model"]] = counts.get(r["model"], 0) + 1
    named = [{**r, "model": f"{r['model']} · {r['run']}" if counts[r["model"]] > 1 else r["model"]} for r in rows]
    return plot_iou_heatmap(named, _classes(rows), title=f"{dataset}: test IoU")


def curves(records, k: int = 6):
    """Training curves of the ``k`` networks with the best validation mIoU (None: no network);
    GANs are left out (their generator loss is on another scale)."""
    from rockseg.analysis.figures import plot_history

    nets = [r for r in _networks(records) if r.get("model", {}).get("name") != "pix2pix"][:k]
    if not nets:
        return None
    runs = {f"{_label(r)} [{_tag(r)}] {Path(r['run_dir']).name}": r["run_dir"] for r in nets}
    return plot_history(runs, title=f"{nets[0]['dataset']['name']}: training")


def confusion(records):
    """Test confusion matrix of the network with the best validation mIoU (None: no network)."""
    from rockseg.analysis.figures import plot_confusion

    nets = [r for r in _networks(records) if r["metrics"]["test"].get("confusion")]
    if not nets:
        return None
    test = nets[0]["metrics"]["test"]
    return plot_confusion(test["confusion"], test["class_names"],
                          title=f"{nets[0]['dataset']['name']}: {_label(nets[0])}, best on validation")


def _figures(dataset: str, rows, records, out: Path, *, with_gallery: bool) -> list[str]:
    """The figures of one protocol, saved in ``out``; their Markdown lines for the report."""
    lines = [f"![test IoU per class]({_save(heatmap(dataset, rows), out / f'leaderboard_{dataset}.png')})"]
    for name, make in (("training curves", curves), ("confusion", confusion)) + \
            ((("prediction gallery", gallery),) if with_gallery else ()):
        fig = make(records)
        if fig is not None:
            lines.append(f"![{name}]({_save(fig, out / f'{name.split()[-1]}_{dataset}.png')})")
    return lines


def _source(notebook: str) -> str:
    return f"notebook {notebook[:2]}" if notebook[:2].isdigit() else notebook.replace("benchmark:", "benchmark ")


def _excerpt_row(dataset: str, row: dict) -> str:
    per = ", ".join(f"{k[len('test_iou_'):]} {float(v):.3f}" for k, v in row.items()
                    if k.startswith("test_iou_") and v not in ("", None))
    params = f"{int(row['parameters']) / 1e6:.2f} M" if row.get("parameters") else "–"
    train = f"{float(row['train_seconds']):.0f} s" if row.get("train_seconds") else "–"
    return (f"| {dataset} | {row['model']} | {_source(row['notebook'])} | {float(row['test_miou']):.4f} | {per} "
            f"| {params} | {train} |")


def readme_excerpt(results_dir=None, k: int = 8) -> str:
    """The README's results block, read from ``results/``: the per-class IoU figure of the real
    sandstone, its ``k`` best rows, and the best row of every other protocol."""
    results_dir = Path(results_dir) if results_dir else RESULTS
    boards = {}
    for path in sorted(results_dir.glob("leaderboard_*.csv")):
        with open(path, newline="") as fh:
            boards[path.stem[len("leaderboard_"):]] = list(csv.DictReader(fh))
    if not boards:
        return "No results yet: run `make reproduce`."
    main = MAIN_PROTOCOL if MAIN_PROTOCOL in boards else next(iter(boards))
    lines = [f"![test IoU per class, {main}](results/leaderboard_{main}.png)", "",
             f"Test scores on held-out data, best first (the {k} best on `{main}`, then the best of every other "
             "protocol); every model was selected on validation only. Written by `rockseg reproduce` from the run "
             "records of the `cpu`-profile notebook run and the committed benchmark records; all rows, figures and "
             "the originals' numbers beside ours are in [`results/REPORT.md`](results/REPORT.md). A notebook trains within "
             "its 10-minute budget, so its networks can score below the longer benchmark runs quoted further down "
             "this README.", "",
             "| protocol | model | from | test mIoU | test IoU per class | parameters | training |",
             "|---|---|---|---|---|---|---|"]
    lines += [_excerpt_row(main, row) for row in boards[main][:k]]
    lines += [_excerpt_row(name, rows[0]) for name, rows in boards.items() if name != main and rows]
    return "\n".join(lines)


def update_readme_results(readme=None, results_dir=None) -> bool:
    """Write :func:`readme_excerpt` between the README's results markers; returns whether it changed."""
    return nbs.replace_block(Path(readme) if readme else nbs.ROOT / "README.md", *README_RESULTS,
                             readme_excerpt(results_dir))


def write_results(runs_root=None, out=None, *, profile: str = "cpu", records_root=None, benchmarks: bool = True,
                  with_gallery: bool = True) -> Path:
    """Write ``results/`` (see the module docstring); returns the path of ``REPORT.md``."""
    out = Path(out) if out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    records = collect(runs_root, profile, records_root=records_root, benchmarks=benchmarks)
    boards = leaderboard(records)
    report = [f"# rockseg course results (profile `{profile}`)", "",
              "Written by `rockseg reproduce` from run records: the notebooks' (`runs/NN_name-PROFILE/*/run.json`) "
              "and the committed benchmark records (`results/records/`, rows marked `benchmark:`). Every number "
              "below comes from one of them or from a measured notebook time, except the originals' reported "
              "numbers, which come from `rockseg/course/originals.json`.", ""]
    times = json.loads(nbs.TIMES_FILE.read_text()) if nbs.TIMES_FILE.is_file() else {}
    if times:
        total = {p: sum(t[p]["seconds"] for t in times.values() if p in t) for p in ("cpu", "smoke")}
        report += ["## Notebook run times", "", "| notebook | cpu | smoke |", "|---|---|---|"]
        for name, t in times.items():
            report.append(f"| {name} | " + " | ".join(
                f"{t[p]['seconds'] / 60:.1f} min" if p in t else "–" for p in ("cpu", "smoke")) + " |")
        report += [f"| **all** | {total['cpu'] / 60:.1f} min | {total['smoke'] / 60:.1f} min |", ""]
    report += ["## Beside what the original projects reported", "",
               "Their numbers as reported, with their protocol and its flaw; ours on honest splits, the network of "
               "the same family with the best validation mIoU.", "", comparison_markdown(comparison(records)), ""]
    for dataset, rows in boards.items():
        stem = f"leaderboard_{dataset}"
        with open(out / f"{stem}.csv", "w", newline="") as fh:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        table = _markdown(rows)
        (out / f"{stem}.md").write_text(table + "\n")
        recs = [r for r in records if r["dataset"]["name"] == dataset]
        figs = _figures(dataset, rows, recs, out, with_gallery=with_gallery and not dataset.startswith("folder:"))
        report += [f"## {dataset}", "", "Sorted by test mIoU; every model was selected on validation only.", "",
                   table, "", *figs, ""]
    if not boards:
        report += ["No complete run records were found; run the notebooks first (`rockseg reproduce`).", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(report))
    readme = nbs.ROOT / "README.md"  # the course's own results/ also refresh the README's block
    if out.resolve() == RESULTS.resolve() and readme.is_file() and README_RESULTS[0] in readme.read_text():
        update_readme_results(readme, out)
    return path
