"""The course notebooks keep their conventions; the tools that keep them work."""
from __future__ import annotations

import copy
import json

import pytest
from rockseg.course import colab
from rockseg.course import notebooks as nbs
from rockseg.course.reproduce import record_time

URL = "https://github.com/rockseg/rockseg"


def test_the_repository_address_has_one_source():
    assert nbs.repo_url() == URL
    assert nbs.colab_url("00_quickstart.ipynb") == \
        "https://colab.research.google.com/github/rockseg/rockseg/blob/main/notebooks/00_quickstart.ipynb"
    cell = nbs.install_cell()
    assert f'"{URL}"' in cell and "check=True" in cell and "check=False" not in cell


def test_the_course_has_its_notebooks_in_order():
    names = [p.name for p in nbs.notebook_paths()]
    assert names == sorted(names) and len(set(n[:2] for n in names)) == len(names)
    assert {"00_quickstart.ipynb", "01_data.ipynb", "02_preprocessing.ipynb"} <= set(names)


@pytest.mark.parametrize("path", nbs.notebook_paths(), ids=lambda p: p.name)
def test_every_notebook_keeps_the_conventions(path):
    problems = nbs.check(path)
    assert not problems, f"{path.name}: " + "; ".join(problems)


def _good(tmp_path):
    """A minimal notebook that keeps every convention (built from the first real one)."""
    source = next(p for p in nbs.notebook_paths() if not nbs.check(p))
    nb = nbs.read(source)
    path = tmp_path / source.name
    nbs.write(nb, path)
    assert nbs.check(path) == []
    return nb, path


@pytest.mark.parametrize("breakage, message", [
    (lambda nb: nb["cells"].insert(3, {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
                                       "source": 'profile = "cpu"\n', "outputs": [], "execution_count": None}),
     "papermill"),
    (lambda nb: nb["cells"][0].update(source=nb["cells"][0]["source"].replace("**Prerequisites**", "Prereq")
                                      if isinstance(nb["cells"][0]["source"], str)
                                      else "".join(nb["cells"][0]["source"]).replace("**Prerequisites**", "P")),
     "header lacks **Prerequisites**"),
    (lambda nb: nb["cells"][0].update(source="".join(nb["cells"][0]["source"]).replace("rockseg/rockseg", "x/y")),
     "header lacks the badge"),
    (lambda nb: [c for c in nb["cells"] if c["cell_type"] == "code"][0].update(source="print('hi')\n"),
     "install cell"),
    (lambda nb: [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])][0].update(
        source='profile = "cpu"\ndataset = "auto"\nseed = 0\n'), "profile does not default to $ROCKSEG_PROFILE"),
    (lambda nb: [c for c in nb["cells"] if c["cell_type"] == "code"][-1].update(
        outputs=[{"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]),
     "error output"),
    (lambda nb: [c.update(outputs=[]) for c in nb["cells"] if c["cell_type"] == "code"], "no committed outputs"),
    (lambda nb: nb["cells"].pop(), "Exercises"),
])
def test_the_convention_check_catches_each_breakage(tmp_path, breakage, message):
    nb, path = _good(tmp_path)
    bad = copy.deepcopy(nb)
    breakage(bad)
    nbs.write(bad, path)
    assert any(message in p for p in nbs.check(path)), nbs.check(path)


def test_clean_removes_what_papermill_adds_and_keeps_outputs(tmp_path):
    nb, _ = _good(tmp_path)
    dirty = copy.deepcopy(nb)
    dirty["metadata"]["papermill"] = {"parameters": {"profile": "cpu"}}
    dirty["cells"].insert(3, {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
                              "source": 'profile = "cpu"\n', "outputs": [], "execution_count": 1})
    for c in dirty["cells"]:
        c["metadata"]["papermill"] = {"duration": 1.0}
        c["metadata"]["execution"] = {"iopub.status.busy": "2026-12-04"}
    assert nbs.clean(dirty) == nb


def test_meta_rewrites_badge_install_cell_and_run_time(tmp_path):
    nb, path = _good(tmp_path)
    stale = copy.deepcopy(nb)
    code = [c for c in stale["cells"] if c["cell_type"] == "code"]
    code[0]["source"] = nbs.INSTALL_MARK + " (old)\nsubprocess.run(['git', 'clone', 'x'], check=False)\n"
    nbs.write(stale, path)
    times = {path.name: {"cpu": {"seconds": 312.0, "machine": "2 CPU cores"}, "smoke": {"seconds": 41.0}}}
    assert nbs.update_meta(path, times=times) is True
    head = "".join(nbs.read(path)["cells"][0]["source"])
    assert "**Run time** (measured, 2 CPU cores): `cpu` profile 5 min, `smoke` profile 41 s." in head
    assert nbs.check(path) == []
    assert nbs.update_meta(path, times=times) is False  # idempotent


def test_record_time_keeps_other_notebooks_and_profiles(tmp_path):
    f = tmp_path / "times.json"
    record_time("01_data.ipynb", "cpu", 100.04, f)
    record_time("01_data.ipynb", "smoke", 20, f)
    record_time("00_quickstart.ipynb", "cpu", 5, f)
    got = json.loads(f.read_text())
    assert list(got) == ["00_quickstart.ipynb", "01_data.ipynb"]
    assert got["01_data.ipynb"]["cpu"]["seconds"] == 100.0 and got["01_data.ipynb"]["smoke"]["seconds"] == 20


def test_colab_install_keeps_installed_packages_and_pins_the_rest(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "constraints.txt").write_text(
        "# pins\ntensorflow==2.19.0\ntf_keras==2.19.0\nsegmentation-models==1.0.1\nporespy==2.4.2\n")
    lines, kept = colab.constraints_for(tmp_path, {"tensorflow": "2.18.1", "tf-keras": "2.18.0"})
    assert lines == ["segmentation-models==1.0.1", "porespy==2.4.2"]
    assert kept == ["tensorflow 2.18.1", "tf_keras 2.18.0"]
    assert colab.main([str(tmp_path / "nowhere")]) == 2


def test_results_gather_the_notebooks_run_records(tmp_path):
    """A leaderboard and a report from run folders laid out as the notebooks write them."""
    from rockseg import training as train
    from rockseg.course.results import collect, write_results

    runs = tmp_path / "runs"
    for method in ("otsu", "rf"):
        train.baseline_run(method, out=runs / "03_classical_baselines-smoke" / method, dataset="synthetic-sandstone",
                           profile="smoke", options={"n_estimators": 5} if method == "rf" else None)
    (runs / "scratch-smoke" / "x").mkdir(parents=True)  # not a notebook folder: ignored
    recs = collect(runs, "smoke")
    assert sorted(r["model"]["name"] for r in recs) == ["otsu", "rf"]
    assert collect(runs, "cpu") == []
    report = write_results(runs, tmp_path / "results", profile="smoke")
    text = report.read_text()
    rows = (tmp_path / "results" / "leaderboard_synthetic-sandstone.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("model,notebook,run")
    best = max(recs, key=lambda r: r["metrics"]["test"]["miou"])
    assert rows[1].startswith(best["model"]["name"])  # sorted by test mIoU
    assert f"{best['metrics']['test']['miou']:.4f}" in text
    assert (tmp_path / "results" / "leaderboard_synthetic-sandstone.png").stat().st_size > 10_000


def test_generated_parts_are_current(tmp_path):
    """README table, badges, install cells and run-time lines match their sources
    (else: `make notebooks-meta`)."""
    readme = tmp_path / "README.md"
    readme.write_text((nbs.ROOT / "README.md").read_text())
    assert nbs.update_readme(readme) is False, "README notebook table is stale: run `make notebooks-meta`"
    for path in nbs.notebook_paths():
        copy = tmp_path / path.name
        copy.write_text(path.read_text())
        assert nbs.update_meta(copy) is False, f"{path.name} is stale: run `make notebooks-meta`"
    from rockseg.course.results import update_readme_results

    assert update_readme_results(readme) is False, "README results block is stale: run `rockseg reproduce`"


def test_readme_results_block_is_read_from_the_leaderboards(tmp_path):
    """Best rows of the main protocol first, then each other protocol's best, numbers as in the CSVs;
    the block is replaced between its markers and nothing else in the README changes."""
    import csv

    from rockseg.course.results import README_RESULTS, readme_excerpt, update_readme_results

    cols = ["model", "notebook", "run", "parameters", "test_miou", "test_iou_pore", "test_iou_clay", "train_seconds"]
    boards = {"sandstone-versa": [("attention_unet", "07_attention_unet", 2010808, 0.9123, 0.98, 0.71, 205.2),
                                  ("pix2pix (softmax)", "benchmark:pix2pix", 6298344, 0.9001, 0.97, 0.70, 562.0),
                                  ("unet", "04_unet", 1945284, 0.8757, 0.979, 0.586, 194.0)],
              "thin-sections-philliec459": [("rf", "10_thin_sections", 751000, 0.9306, 0.946, 0.935, 47.0),
                                            ("unet", "10_thin_sections", 1945284, 0.5, 0.5, 0.5, 10.0)]}
    for name, rows in boards.items():
        with open(tmp_path / f"leaderboard_{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows([(m, nb, "r", p, t, a, b, s) for m, nb, p, t, a, b, s in rows])
    text = readme_excerpt(tmp_path, k=2)
    table = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| protocol")]
    assert [ln.split(" | ")[1] for ln in table] == ["attention_unet", "pix2pix (softmax)", "rf"]  # k=2, then the best
    assert "| sandstone-versa | attention_unet | notebook 07 | 0.9123 | pore 0.980, clay 0.710 | 2.01 M | 205 s |" in table
    assert "benchmark pix2pix" in table[1] and "unet" not in " ".join(table).replace("attention_unet", "")
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n\n{README_RESULTS[0]}\nold\n{README_RESULTS[1]}\n\n## tail\n")
    assert update_readme_results(readme, tmp_path) is True
    block = readme_excerpt(tmp_path)
    assert readme.read_text() == f"# top\n\n{README_RESULTS[0]}\n{block}\n{README_RESULTS[1]}\n\n## tail\n"
    assert update_readme_results(readme, tmp_path) is False
    assert readme_excerpt(tmp_path / "none") == "No results yet: run `make reproduce`."


def _tiny_notebook(path, body):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('import os\nprofile = os.environ.get("ROCKSEG_PROFILE", "cpu")',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_reproduce_runs_in_order_cleans_records_and_never_overwrites_on_failure(tmp_path):
    """Executed copies carry the profile and no papermill trace; a failing notebook stops the run
    with its name and leaves its committed copy as it was."""
    from rockseg.course.reproduce import reproduce
    from rockseg.errors import RocksegError

    folder = tmp_path / "notebooks"
    folder.mkdir()
    _tiny_notebook(folder / "00_first.ipynb", 'print("profile is", profile)')
    _tiny_notebook(folder / "01_broken.ipynb", 'raise ValueError("boom")')
    times = tmp_path / "times.json"
    lines = []
    got = reproduce("smoke", only=["00"], folder=folder, times_file=times, log=lines.append)
    assert list(got) == ["00_first.ipynb"] and lines[0].startswith("[1/1] 00_first.ipynb")
    nb = nbs.read(folder / "00_first.ipynb")
    assert "profile is smoke" in "".join(nb["cells"][-1]["outputs"][0]["text"])
    assert nbs.clean(json.loads(json.dumps(nb))) == nb  # nothing of papermill's left
    assert json.loads(times.read_text())["00_first.ipynb"]["smoke"]["seconds"] > 0
    before = (folder / "01_broken.ipynb").read_text()
    with pytest.raises(RocksegError, match="01_broken.ipynb failed in profile smoke"):
        reproduce("smoke", only=["01"], folder=folder, times_file=times, log=lines.append)
    assert (folder / "01_broken.ipynb").read_text() == before
    with pytest.raises(RocksegError, match="no notebook matches"):
        reproduce("smoke", only=["07"], folder=folder, times_file=times)


def _fake(name, dataset, val, test, notebook="04_unet", run=None):
    return {"model": {"name": name, "options": {}}, "notebook": notebook, "run_dir": f"/x/{run or name}",
            "dataset": {"name": dataset, "split": {"train": [0, 1], "val": [2], "test": [3, 4]},
                        "split_info": {"method": "registry"}},
            "metrics": {"val": {"miou": val}, "test": {"miou": test, "per_class_iou": {"pore": test, "clay": test}}}}


def test_the_originals_sit_beside_our_network_chosen_on_validation():
    from rockseg.course.results import comparison, originals

    projects = originals()
    assert {p["key"] for p in projects} >= {"unet_256", "resnet34_unet", "attention_unet", "sem_qemscan"}
    unet = next(p for p in projects if p["key"] == "unet_256")
    assert unet["miou"] == 0.8798 and unet["per_class_iou"]["clay"] == 0.761 and "random" in unet["protocol"]
    records = [_fake("unet", "sandstone-versa", 0.80, 0.95, run="lucky-on-test"),
               _fake("unet", "sandstone-versa", 0.90, 0.85, run="best-on-val"),
               _fake("rf", "sandstone-versa", 0.99, 0.99),  # a baseline is no network of the family
               _fake("unet", "synthetic-sandstone", 0.99, 0.99, run="other-dataset")]
    rows = {r["project"]: r for r in comparison(records, [unet, next(p for p in projects if p["key"] == "resnet34_unet")])}
    ours = rows[unet["project"]]["ours"]
    assert ours["run"] == "best-on-val" and ours["test_miou"] == 0.85 and ours["protocol"] == "registry split 2/1/2"
    assert all(r["ours"] is None for k, r in rows.items() if k != unet["project"])  # no sm_unet run: says so
    from rockseg.course.results import comparison_markdown

    thin = next(p for p in projects if p["key"] == "thin_sections_vgg_unet")
    table = comparison_markdown(comparison(records, [thin, unet]))
    assert "notebook 10 trains it with the original script" in table  # why there is no row, where to look
    assert "not run in this profile" not in table and "| unet [04_unet] | 0.8500 |" in table


def test_results_figures_check_their_input():
    import numpy as np
    from rockseg.analysis import plot_confusion, plot_iou_heatmap

    with pytest.raises(ValueError, match="3×3"):
        plot_confusion(np.ones((2, 2)), ["a", "b", "c"])
    fig = plot_confusion([[8, 2], [0, 0]], ["a", "b"])
    shown = [t.get_text() for t in fig.axes[0].texts]
    assert shown == ["0.80", "0.20", "0.00", "0.00"]  # normalised per true class, an empty class stays 0
    fig = plot_iou_heatmap([{"model": "m", "test_miou": 0.5, "test_iou_a": 0.25}], ["a", "b"])
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.250", "0.500"]  # b unscored: blank, not 0


def test_gallery_window_is_the_centre_of_the_image():
    from rockseg.course.results import centre_window

    assert centre_window((1024, 996), 384) == (slice(320, 704), slice(306, 690))
    assert centre_window((100, 996, 3), 384) == (slice(0, 100), slice(306, 690))  # a short side is kept whole
    assert centre_window((50, 60), None) == (slice(None), slice(None))


def test_leaderboard_labels_a_default_mode_and_a_fallback_regime():
    from rockseg.course.results import leaderboard

    gan = _fake("pix2pix", "sandstone-versa", 0.9, 0.9, run="colour")
    gan["model"]["info"] = {"options": {"mode": "colour", "gen_filters": 16}}  # mode left at its default
    enc = _fake("sm_unet", "sandstone-versa", 0.8, 0.8, run="enc")
    enc["model"]["options"] = {"backbone": "resnet34", "regime": "imagenet"}
    enc["model"]["info"] = {"weights": "random (fallback: ImageNet weights unavailable: offline)"}
    rows = leaderboard([gan, enc])["sandstone-versa"]
    assert [r["model"] for r in rows] == ["pix2pix (colour)",
                                          "sm_unet (resnet34, imagenet, random init (ImageNet weights unavailable))"]
