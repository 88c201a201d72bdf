"""Ablation and study tables from run records: one row per run, what it changed, what it scored.

    rows = runs_table("results/records/pix2pix", ["c0", "c2"], describe={"c0": "...", "c2": "..."})
    print(markdown_table(rows, ["run", "description", "epochs", "val", "test", "per_class", "train_s"]))

:func:`recipe_changes` says how a run's settings differ from its profile's current recipe for
its model (an empty list: the run *is* the recipe), so a table of full-budget runs describes
each row from what the run did, not from its folder name. No TensorFlow is imported.
"""
from __future__ import annotations

from pathlib import Path

from rockseg.errors import DataError
from rockseg.evaluation.records import RUN_FILE, load_run, run_options

__all__ = ["COLUMNS", "markdown_table", "recipe_changes", "record_row", "runs_table"]

# the profile keys beside a recipe's own that set a run's budget and scoring
BUDGET_KEYS = ("train_epochs", "train_steps_per_epoch", "train_patch_size", "train_batch_size", "eval_tta")
# model options that name what a row is, not a change to it
IDENTITY_OPTIONS = ("mode", "backbone", "regime")
_UNSET = object()


def record_row(record: dict, *, name: str | None = None, description: str | None = None,
               subset: str = "test") -> dict:
    """The numbers of one run record as a flat dict: ``run`` (``name`` or the folder's name),
    ``description``, ``model``, ``variant`` (backbone or mode), ``parameters``, ``epochs_run``,
    ``best_epoch``, ``stop_reason``, ``val_miou``, ``test_miou`` (of ``subset``),
    ``per_class`` (``{class: IoU}`` of ``subset``), ``class_names``, ``train_seconds``,
    ``patch_size``, ``batch_size`` and ``tta``."""
    model = record.get("model") or {}
    opts = run_options(record)
    metrics = record.get("metrics") or {}
    part = metrics.get(subset) or {}
    training = record.get("training") or {}
    cfg = record.get("config") or {}
    timing = record.get("timing") or {}
    per_class = dict(part.get("per_class_iou") or {})
    run_dir = record.get("run_dir")
    return {
        "run": name or (Path(run_dir).name if run_dir else "?"),
        "description": description,
        "model": model.get("name"),
        "variant": opts.get("backbone") or opts.get("mode"),
        "parameters": model.get("parameters"),
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "stop_reason": training.get("stop_reason"),
        "val_miou": (metrics.get("val") or {}).get("miou"),
        "test_miou": part.get("miou"),
        "per_class": per_class,
        "class_names": list(per_class) or list((record.get("data") or {}).get("class_names") or []),
        "train_seconds": timing.get("train_seconds", training.get("train_seconds")),
        "patch_size": cfg.get("train_patch_size"),
        "batch_size": cfg.get("train_batch_size"),
        "tta": cfg.get("eval_tta"),
    }


def runs_table(root, names=None, *, describe=None, subset: str = "test") -> list[dict]:
    """:func:`record_row` of the run folders ``root/NAME`` for each of ``names`` (in that order;
    None: every run folder in ``root``, sorted). ``describe``: a ``{name: text}`` dict or a
    function ``record -> text`` for the ``description`` column. A named run that is missing or
    not complete is a :class:`DataError` naming it (a table never silently drops a row)."""
    root = Path(root)
    if names is None:
        names = sorted(p.parent.name for p in root.glob(f"*/{RUN_FILE}"))
        if not names:
            raise DataError("no run folders here", path=root)
    rows = []
    for name in names:
        if not (root / name / RUN_FILE).is_file():
            raise DataError(f"no run {name!r} here", path=root)
        rec = load_run(root / name, strict=True)
        if callable(describe):
            text = describe(rec)
        else:
            text = (describe or {}).get(name)
        rows.append(record_row(rec, name=name, description=text, subset=subset))
    return rows


def _fmt(value) -> str:
    if value is _UNSET:
        return "not set"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def recipe_changes(record: dict, profile: str = "cpu") -> list[str]:
    """How a run differs from what ``rockseg train --model NAME`` does now in ``profile``: the
    profile with its ``model_recipes[NAME]`` applied. Compared: the recipe's model options and
    the options the run set (its resolved values where the record has them, ``model.info.options``),
    the recipe's profile keys and the budget keys (:data:`BUDGET_KEYS`). Options that name the
    row (``mode``, ``backbone``, ``regime``) are not changes. Returns ``"key value (recipe
    value)"`` strings, sorted; empty: the run was trained by the recipe."""
    from rockseg.config import apply_model_recipe, get_profile
    from rockseg.models.registry import MODELS, model_options

    model = record.get("model") or {}
    name = model.get("name")
    cfg, recipe_opts = apply_model_recipe(get_profile(profile), name, {})
    recipe_opts = recipe_opts or {}
    given = model.get("options") or {}
    resolved = (model.get("info") or {}).get("options") or {}
    # an option the record or the recipe does not name took the model's default (a record may
    # predate the option)
    defaults = model_options(name) if str(name).lower() in MODELS else {}
    changes = []
    for key in sorted((set(recipe_opts) | set(given)) - set(IDENTITY_OPTIONS)):
        want = recipe_opts.get(key, defaults.get(key, _UNSET))
        have = resolved.get(key, given.get(key, defaults.get(key, _UNSET)))
        if have != want:
            changes.append(f"{key} {_fmt(have)} (recipe {_fmt(want)})")
    recipe_keys = set((((cfg.get("model_recipes") or {}).get(name) or {}).get("config") or {}))
    run_cfg = record.get("config") or {}
    for key in sorted(recipe_keys | set(BUDGET_KEYS)):
        want, have = cfg.get(key, _UNSET), run_cfg.get(key, _UNSET)
        if have != want:
            changes.append(f"{key} {_fmt(have)} (recipe {_fmt(want)})")
    return changes


def _short(name: str) -> str:
    return {"clays+accessories": "clay"}.get(name, name)


def _num(fmt):
    return lambda v: "–" if v is None else format(v, fmt)


# column -> (header, cell) ; "classes" expands to one column per class
COLUMNS = {
    "run": ("run", lambda r: str(r["run"])),
    "description": ("what changed", lambda r: r["description"] or ""),
    "model": ("model", lambda r: str(r["model"])),
    "variant": ("encoder / mode", lambda r: r["variant"] or "–"),
    "parameters": ("parameters", lambda r: "–" if r["parameters"] is None else f"{r['parameters']:,}"),
    "epochs": ("epochs (best)", lambda r: f"{r['epochs_run']} ({r['best_epoch']})"),
    "stop": ("stopped by", lambda r: r["stop_reason"] or "–"),
    "tile": ("crop = tile", lambda r: str(r["patch_size"])),
    "batch": ("batch", lambda r: str(r["batch_size"])),
    "tta": ("TTA", lambda r: "yes" if r["tta"] else "no"),
    "val": ("val mIoU", lambda r: _num(".4f")(r["val_miou"])),
    "test": ("test mIoU", lambda r: _num(".4f")(r["test_miou"])),
    "per_class": (None, None),
    "classes": (None, None),
    "train_s": ("training s", lambda r: _num(".0f")(r["train_seconds"])),
}


def markdown_table(rows, columns=("run", "description", "epochs", "val", "test", "per_class", "train_s")) -> str:
    """A Markdown table of :func:`record_row` dicts. ``columns``: keys of :data:`COLUMNS`;
    ``per_class`` is one column ``test IoU a / b / ...``, ``classes`` one column per class
    (``clays+accessories`` shown as ``clay``); a missing IoU (class absent) shows as ``–``."""
    rows = list(rows)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; choose from {list(COLUMNS)}")
    classes = rows[0]["class_names"] if rows else []
    iou = _num(".3f")
    heads, cells = [], []
    for col in columns:
        if col == "per_class":
            heads.append("test IoU " + " / ".join(_short(c) for c in classes))
            cells.append(lambda r: " / ".join(iou(r["per_class"].get(c)) for c in classes))
        elif col == "classes":
            for c in classes:
                heads.append(_short(c))
                cells.append(lambda r, c=c: iou(r["per_class"].get(c)))
        else:
            head, cell = COLUMNS[col]
            heads.append(head)
            cells.append(cell)
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(cell(r) for cell in cells) + " |" for r in rows]
    return "\n".join(lines)
