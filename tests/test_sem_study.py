"""The SEM/QEMSCAN study set (rockseg.preprocess.qemscan.study): fields, masks, writer."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.errors import DataError, OutputExistsError
from rockseg.preprocess import qemscan
from rockseg.preprocess.qemscan import UNKNOWN, save_study, sem_study_fields


@pytest.fixture(scope="module")
def study():
    return sem_study_fields(3, (256, 256), seed=7)


def _iou(a, b, c):
    inter = np.sum((a == c) & (b == c))
    union = np.sum((a == c) | (b == c))
    return inter / union


def test_fields_are_named_and_shaped(study):
    assert study.names == ["field_1", "field_2", "field_3"]
    assert study.class_names == ["pore", "quartz", "albite", "clays+accessories"]
    for f in study.fields:
        assert f.sem.shape == f.mask.shape == f.true_mask.shape == (256, 256)
        assert f.sem.dtype == f.mask.dtype == np.uint8
        assert set(np.unique(f.mask)) == {0, 1, 2, 3, UNKNOWN}  # all four classes and the ignore value
        assert set(np.unique(f.true_mask)) == {0, 1, 2, 3}
    # each field its own seed and its own misregistration
    assert len({f.seed for f in study.fields}) == 3
    assert len({f.true_shift for f in study.fields}) == 3
    assert all(1 <= np.hypot(*f.true_shift) <= 4 for f in study.fields)


def test_deterministic_for_a_seed(study):
    again = sem_study_fields(3, (256, 256), seed=7)
    for a, b in zip(study.fields, again.fields):
        assert a.seed == b.seed and a.true_shift == b.true_shift
        np.testing.assert_array_equal(a.sem, b.sem)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.estimated_shift == b.estimated_shift
    other = sem_study_fields(1, (256, 256), seed=8)
    assert other.fields[0].seed != study.fields[0].seed
    assert not np.array_equal(other.fields[0].sem, study.fields[0].sem)


def test_registration_undoes_the_misregistration(study):
    for f in study.fields:
        # the correction is minus the misregistration (measured errors 0.0-0.57 px)
        assert f.shift_error < 1.0, (f.name, f.true_shift, f.estimated_shift)
        assert f.registration.converged


def test_masks_agree_with_the_truth(study):
    # measured: 0.984-0.985 of labelled pixels agree; without registration 0.91-0.93, with
    # the correction's sign flipped 0.79-0.84
    for f in study.fields:
        assert f.agreement > 0.97, (f.name, f.agreement)
        valid = f.mask != UNKNOWN
        # a swapped or wrong merge fails here: each class matches its true class (measured IoU
        # 0.90-0.98; quartz and albite swapped drops the agreement to 0.23-0.32)
        for c in range(4):
            assert _iou(f.mask[valid], f.true_mask[valid], c) > 0.85, (f.name, study.class_names[c])


def test_ignore_band_sits_on_class_boundaries(study):
    f = study.fields[0]
    ignored = f.mask == UNKNOWN
    # measured: 13-16 % of a 256² field (1-px band each side of every boundary, plus unmapped edges)
    assert 0.08 < ignored.mean() < 0.25
    # no two labelled 4-neighbours carry different classes: the band separates every boundary
    m = f.mask
    for a, b in ((m[1:, :], m[:-1, :]), (m[:, 1:], m[:, :-1])):
        both = (a != UNKNOWN) & (b != UNKNOWN)
        assert not (a[both] != b[both]).any()


def test_workflow_without_registration_would_fail_the_threshold(study):
    """The agreement threshold above is one a broken registration does not reach."""
    from rockseg.data.synth import synthetic_sem_qemscan

    f = study.fields[1]
    pair = synthetic_sem_qemscan((256, 256), seed=f.seed, scale=4, shift=f.true_shift, n_minerals=12)
    labels, _ = qemscan.rgb_to_classes(pair["qemscan_rgb"], pair["palette"], tolerance=10)
    hr = qemscan.upsample_labels(labels, 4, shape=(256, 256))
    clean = qemscan.fill_holes(qemscan.remove_specks(hr, 16), 16, classes=range(12))
    merged, _ = qemscan.merge_classes(clean, pair["mineral_names"], study.merge_table)
    unregistered = qemscan.apply_ignore_band(merged, 1)
    valid = unregistered != UNKNOWN
    assert float((unregistered[valid] == f.true_mask[valid]).mean()) < 0.95


def test_save_study_writes_pairs_and_refuses_to_overwrite(study, tmp_path):
    from rockseg.data.classmap import read_class_map
    from rockseg.data.io import read_image, read_json

    paths = save_study(study, tmp_path / "set")
    for f in study.fields:
        np.testing.assert_array_equal(read_image(paths["images"] / f"{f.name}.png"), f.sem)
        np.testing.assert_array_equal(read_image(paths["masks"] / f"{f.name}.png"), f.mask)
    assert sorted(p.name for p in paths["images"].iterdir()) == ["field_1.png", "field_2.png", "field_3.png"]
    assert sorted(p.name for p in paths["masks"].iterdir()) == ["field_1.png", "field_2.png", "field_3.png"]
    cm = read_class_map(paths["class_map"])
    assert cm.names == study.class_names and cm.ignore == [UNKNOWN]
    rec = read_json(paths["study"])
    assert [r["name"] for r in rec["fields"]] == study.names
    assert rec["fields"][0]["agreement_with_truth"] == pytest.approx(study.fields[0].agreement)
    assert rec["merge_table"]["mapping"]["kaolinite"] == "clays+accessories"

    before = (paths["masks"] / "field_1.png").read_bytes()
    with pytest.raises(OutputExistsError, match="refusing to overwrite"):
        save_study(study, tmp_path / "set")
    assert (paths["masks"] / "field_1.png").read_bytes() == before
    # one existing file is enough to refuse, and nothing is written before the check
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "study.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="study.json"):
        save_study(study, tmp_path / "other")
    assert not (tmp_path / "other" / "images").exists()


def test_saved_set_loads_as_a_user_folder(study, tmp_path):
    from rockseg.data import load_folder
    from rockseg.data.classmap import read_class_map

    paths = save_study(study, tmp_path / "set")
    ds = load_folder(paths["images"], paths["masks"], class_map=read_class_map(paths["class_map"]))
    assert ds.n_classes == 4
    assert [str(i) for i in ds.ids] == ["field_1", "field_2", "field_3"]
    np.testing.assert_array_equal(np.asarray(ds.masks[0]), study.fields[0].mask)


def test_bad_arguments_are_named():
    with pytest.raises(DataError, match="n_fields"):
        sem_study_fields(0, (256, 256))
    with pytest.raises(DataError, match="shape"):
        sem_study_fields(1, (32, 32))
    with pytest.raises(DataError, match="max_shift=1 allows only 4"):
        sem_study_fields(5, (256, 256), max_shift=1)
