"""Mixed precision: what `auto` picks, every model under every policy, runs that record it."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.errors import RocksegError
from rockseg.models.precision import cpu_flags, native_bf16_cpu, resolve_precision

pytest.importorskip("tensorflow")

from _checks import assert_beats_majority_guess  # noqa: E402

TINY = dict(depth=2, base_filters=4)
MODELS = {
    "unet": TINY, "resunet": TINY, "attention_unet": TINY,
    "sm_unet": dict(backbone="resnet18", regime="scratch"),
    "sm_linknet": dict(backbone="resnet18", regime="scratch"),
    "vgg_unet": dict(regime="scratch", decoder_filters=(8, 8, 8, 8)),
    "pix2pix": dict(gen_depth=2, gen_filters=4, disc_filters=4, disc_layers=1),
}


@pytest.mark.parametrize("flags, gpus, expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, [], "bfloat16"),  # Cooper Lake / Zen 4
    ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, [], "bfloat16"),  # Sapphire Rapids
    ({"avx2", "avx512f"}, [], "float32"),  # AVX-512 without BF16: emulated, slower
    ({"avx2", "fma"}, [], "float32"),  # older CPUs and many notebook runtimes
    (set(), [(9, 0)], "bfloat16"),  # H100 / H200
    (set(), [(8, 0)], "bfloat16"),  # A100
    (set(), [(7, 5)], "float16"),  # T4: tensor cores without bfloat16
    (set(), [(8, 6), (7, 0)], "float16"),  # mixed: the weakest decides
])
def test_auto_picks_native_precisions_only(flags, gpus, expected):
    assert resolve_precision("auto", flags=flags, gpus=gpus) == expected
    assert resolve_precision("float32", flags=flags, gpus=gpus) == "float32"
    assert resolve_precision("bfloat16", flags=flags, gpus=gpus) == "bfloat16"  # asked for: given


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert {"avx2", "avx512_bf16"} <= cpu_flags(info)
    assert native_bf16_cpu(cpu_flags(info)) and not native_bf16_cpu({"avx2"})
    assert cpu_flags(tmp_path / "absent") == frozenset()
    with pytest.raises(RocksegError, match="unknown precision 'fp8'"):
        resolve_precision("fp8")
    here = resolve_precision("auto")
    assert here == ("bfloat16" if native_bf16_cpu() else "float32") or here == "float16"


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_every_registry_model_trains_under_each_policy(name, precision):
    from rockseg._tf import keras
    from rockseg.models import Pix2Pix, build_model
    from rockseg.models.precision import model_precision, precision_scope

    rng = np.random.default_rng(0)
    x = rng.random((2, 32, 32, 1), dtype=np.float32)
    y = (x[..., 0] * 4).astype(np.int32).clip(0, 3)
    with precision_scope(precision):
        model = build_model(name, 4, (None, None, 1), **MODELS[name])
        if isinstance(model, Pix2Pix):
            losses = model.train_step(x, y)
            assert all(np.isfinite(float(v)) for v in losses.values())
            model = model.segmenter()
        else:
            model.compile(keras().optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
            assert np.isfinite(model.train_on_batch(x, y))
    assert keras().mixed_precision.global_policy().name == "float32"  # restored
    assert model_precision(model) == precision
    out = model(x, training=False).numpy()
    assert out.dtype == np.float32 and out.shape == (2, 32, 32, 4)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-3)


def test_a_model_is_rebuilt_under_another_precision_with_the_same_weights():
    from rockseg.models import build_model
    from rockseg.models.precision import model_precision, with_precision

    model = build_model("attention_unet", 4, (None, None, 1), **TINY)
    x = np.random.default_rng(1).random((1, 48, 40, 1), dtype=np.float32)
    bf16 = with_precision(model, "bfloat16")
    assert model_precision(bf16) == "bfloat16" and bf16.get_layer("softmax").dtype_policy.name == "float32"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), bf16.get_weights()))
    p32, p16 = model(x).numpy(), bf16(x).numpy()
    assert np.abs(p32 - p16).max() < 0.05 and (p32.argmax(-1) == p16.argmax(-1)).mean() > 0.95
    back = with_precision(bf16, "float32")
    np.testing.assert_array_equal(back(x).numpy(), p32)  # float32 again: the same numbers
    assert with_precision(model, "float32") is model


def test_a_bfloat16_run_records_it_reproduces_and_predicts_under_float32(tmp_path):
    from rockseg.cli import main
    from rockseg.evaluation import evaluate_run, load_run
    from rockseg.inference import load_predictor, sliding_window_predict

    args = ["train", "--dataset", "synthetic-sandstone", "--profile", "smoke", "--quiet", "--epochs", "1",
            "--precision", "bfloat16", "--set", "train_steps_per_epoch=60", "--set", "train_batch_size=8",
            "--set", "train_lr=0.005"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    assert a["precision"] == {"train": "bfloat16", "eval": "bfloat16"}
    assert a["config"]["train_precision"] == "bfloat16"
    assert a["metrics"]["test"]["confusion"] == b["metrics"]["test"]["confusion"]  # same seed and precision
    assert_beats_majority_guess(a)
    pred16 = load_predictor(tmp_path / "a")
    pred32 = load_predictor(tmp_path / "a", precision="float32")
    assert (pred16.precision, pred32.precision) == ("bfloat16", "float32")
    from rockseg.data import load_dataset

    image = load_dataset("synthetic-sandstone", profile="smoke").images[a["dataset"]["split"]["test"][0]]
    l16 = sliding_window_predict(image, pred16).argmax(-1)
    l32 = sliding_window_predict(image, pred32).argmax(-1)
    assert (l16 == l32).mean() > 0.97
    again = evaluate_run(tmp_path / "a", precision="float32", write=True)
    rec = load_run(tmp_path / "a")
    assert rec["metrics_float32"]["test"]["confusion"] == again["test"]["confusion"]
    assert rec["metrics"]["test"]["confusion"] == a["metrics"]["test"]["confusion"]  # untouched
