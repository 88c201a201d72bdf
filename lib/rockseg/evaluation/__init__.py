"""Evaluation: metrics, run records, scoring whole held-out slices, ensembles, results tables.

    from rockseg.evaluation import evaluate_run, load_run, results_table
"""
from rockseg.evaluation.ensemble import ensemble_run, tune_weights
from rockseg.evaluation.evaluate import (
    evaluate_labels,
    evaluate_run,
    keras_label_predictor,
    load_label_predictor,
    load_prob_predictor,
)
from rockseg.evaluation.metrics import ConfusionAccumulator, confusion_matrix, evaluate, mean_iou, per_class_iou
from rockseg.evaluation.records import (
    RUN_FILE,
    SCHEMA,
    clear_run_dir,
    load_run,
    now_iso,
    package_versions,
    prepare_run_dir,
    write_run,
)
from rockseg.evaluation.rules import rule_scores
from rockseg.evaluation.tables import find_runs, format_metrics, results_table, weights_used

__all__ = [
    "RUN_FILE", "SCHEMA", "ConfusionAccumulator", "clear_run_dir", "confusion_matrix", "ensemble_run", "evaluate",
    "evaluate_labels", "evaluate_run", "find_runs", "format_metrics", "keras_label_predictor",
    "load_label_predictor", "load_prob_predictor", "load_run", "mean_iou", "now_iso", "package_versions",
    "per_class_iou", "prepare_run_dir", "results_table", "rule_scores", "tune_weights", "weights_used",
    "write_run",
]
