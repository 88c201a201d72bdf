"""``results/``: the tables and figures of a course run, gathered from its run records.

:func:`write_results` reads every run folder the notebooks wrote (``runs/NN_name-PROFILE/
RUN/run.json``), and writes a leaderboard per dataset (CSV and Markdown, test mIoU first,
selection never on test), a per-class IoU figure per dataset, the notebooks' measured run
times, and ``REPORT.md`` linking them. Every number in it comes from a run record or a
timing that ``rockseg reproduce`` took.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from rockseg.course import notebooks as nbs
from rockseg.evaluation.records import RUN_FILE, load_run

__all__ = ["collect", "leaderboard", "write_results"]

RUNS = nbs.ROOT / "runs"
RESULTS = nbs.ROOT / "results"
FOLDER_RE = re.compile(r"^(\d\d_[a-z0-9_]+)-([a-z]+)$")


def collect(runs_root=None, profile: str = "cpu") -> list[dict]:
    """Every complete run record under ``runs_root/NN_name-PROFILE/`` (any depth), with the
    notebook that wrote it as ``record["notebook"]``."""
    root = Path(runs_root) if runs_root else RUNS
    out = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        m = FOLDER_RE.match(folder.name)
        if not m or m.group(2) != profile:
            continue
        for rj in sorted(folder.rglob(RUN_FILE)):
            rec = load_run(rj.parent)
            if rec.get("status") != "complete" or not (rec.get("metrics") or {}).get("test"):
                continue
            rec["notebook"] = m.group(1)
            rec["run_dir"] = str(rj.parent)
            out.append(rec)
    return out


def _label(rec) -> str:
    model = rec.get("model", {})
    opts = model.get("options") or {}
    extra = [str(opts[k]) for k in ("backbone", "regime", "mode") if opts.get(k)]
    return model.get("name", "?") + (f" ({', '.join(extra)})" if extra else "")


def leaderboard(records) -> dict[str, list[dict]]:
    """``{dataset: rows}``, each list sorted by test mIoU (best first)."""
    boards: dict[str, list[dict]] = {}
    for rec in records:
        test, val = rec["metrics"]["test"], (rec["metrics"].get("val") or {})
        row = {"model": _label(rec), "notebook": rec["notebook"], "run": Path(rec["run_dir"]).name,
               "parameters": rec.get("model", {}).get("parameters"),
               "epochs": (rec.get("training") or {}).get("epochs_run"),
               "val_miou": val.get("miou"), "test_miou": test.get("miou"),
               **{f"test_iou_{c}": v for c, v in (test.get("per_class_iou") or {}).items()},
               "train_seconds": (rec.get("timing") or {}).get("train_seconds")}
        boards.setdefault(rec["dataset"]["name"], []).append(row)
    for rows in boards.values():
        rows.sort(key=lambda r: -(r["test_miou"] or 0))
    return boards


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if v <= 1 else f"{v:.0f}"
    return str(v)


def _markdown(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(c.replace("_", " ") for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _figure(dataset: str, records, path: Path) -> None:
    import matplotlib.pyplot as plt

    from rockseg.analysis.figures import plot_per_class_iou

    chosen = {f"{_label(r)} [{r['notebook'][:2]}]": r for r in records}
    fig = plot_per_class_iou(chosen, title=f"{dataset}: test IoU per class")
    fig.set_size_inches(max(8, 2 + 0.5 * len(chosen) * 5), 4.5)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_results(runs_root=None, out=None, *, profile: str = "cpu") -> Path:
    """Write ``results/`` (see the module docstring); returns the path of ``REPORT.md``."""
    out = Path(out) if out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    records = collect(runs_root, profile)
    boards = leaderboard(records)
    report = [f"# rockseg course results (profile `{profile}`)", "",
              "Written by `rockseg reproduce` from the run records of the notebooks; every number below "
              "comes from a run record (`runs/NN_name-PROFILE/*/run.json`) or a measured notebook time.", ""]
    times = json.loads(nbs.TIMES_FILE.read_text()) if nbs.TIMES_FILE.is_file() else {}
    if times:
        report += ["## Notebook run times", "", "| notebook | cpu | smoke |", "|---|---|---|"]
        for name, t in times.items():
            report.append(f"| {name} | " + " | ".join(
                f"{t[p]['seconds'] / 60:.1f} min" if p in t else "–" for p in ("cpu", "smoke")) + " |")
        report.append("")
    for dataset, rows in boards.items():
        stem = f"leaderboard_{dataset}"
        with open(out / f"{stem}.csv", "w", newline="") as fh:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        table = _markdown(rows)
        (out / f"{stem}.md").write_text(table + "\n")
        _figure(dataset, [r for r in records if r["dataset"]["name"] == dataset], out / f"{stem}.png")
        report += [f"## {dataset}", "", "Sorted by test mIoU; every model was selected on validation only.", "",
                   table, "", f"![per-class IoU]({stem}.png)", ""]
    if not boards:
        report += ["No complete run records were found; run the notebooks first (`rockseg reproduce`).", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(report))
    return path
