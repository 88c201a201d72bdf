"""Numeric precision of training and inference: float32, bfloat16 or float16 mixed precision.

``precision`` is one of :data:`PRECISIONS`:

* ``float32``: everything in float32;
* ``bfloat16``: Keras' ``mixed_bfloat16`` policy (compute in bfloat16, variables float32);
* ``float16``: ``mixed_float16`` (GPUs; ``Model.compile`` adds loss scaling);
* ``auto``: :func:`resolve_precision` picks ``bfloat16`` on CPUs that compute it natively
  (AMX-BF16 or AVX-512 BF16 in the CPU flags) and on GPUs that support it (compute
  capability 8.0 or newer), ``float16`` on other CUDA GPUs, and ``float32`` otherwise.
  Without native support bfloat16 is emulated and slower than float32, so ``auto`` never
  picks it there.

Every registry model ends in a float32 layer (softmax, crop), so outputs stay float32 under
any policy, as the Keras mixed-precision guide does. A saved model is rebuilt under another
policy with :func:`with_precision` (same weights). The flag reading needs no TensorFlow.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from rockseg.errors import RocksegError

__all__ = ["PRECISIONS", "cpu_flags", "native_bf16_cpu", "policy_name", "precision_scope", "rebuild",
           "resolve_precision", "with_precision"]

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags(cpuinfo="/proc/cpuinfo") -> frozenset:
    """The CPU feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16_cpu(flags=None) -> bool:
    """True when the CPU computes bfloat16 natively (AMX-BF16 or AVX-512 BF16)."""
    return bool(BF16_CPU_FLAGS & set(cpu_flags() if flags is None else flags))


def _gpu_capabilities() -> list:
    """Compute capabilities ``(major, minor)`` of the visible GPUs (TensorFlow's view)."""
    from rockseg._tf import tf

    out = []
    for gpu in tf().config.list_physical_devices("GPU"):
        cc = tf().config.experimental.get_device_details(gpu).get("compute_capability")
        out.append(tuple(cc) if cc else (0, 0))
    return out


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise RocksegError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str = "auto", *, flags=None, gpus=None) -> str:
    """``float32``, ``bfloat16`` or ``float16`` for ``precision`` on this machine.

    ``flags`` (CPU flags) and ``gpus`` (compute capabilities) default to this machine's;
    pass them to ask what ``auto`` would pick elsewhere.
    """
    check_precision(precision)
    if precision != "auto":
        return precision
    gpus = _gpu_capabilities() if gpus is None else list(gpus)
    if gpus:
        return "bfloat16" if all(tuple(cc) >= (8, 0) for cc in gpus) else "float16"
    return "bfloat16" if native_bf16_cpu(flags) else "float32"


def policy_name(precision: str) -> str:
    """The Keras dtype policy of a resolved precision."""
    return _POLICIES[resolve_precision(precision)]


@contextlib.contextmanager
def precision_scope(precision: str):
    """Build (and train) models under ``precision``'s Keras policy; the previous global
    policy is restored afterwards. Yields the resolved precision."""
    from rockseg._tf import keras

    resolved = resolve_precision(precision)
    mp = keras().mixed_precision
    before = mp.global_policy()
    mp.set_global_policy(_POLICIES[resolved])
    try:
        yield resolved
    finally:
        mp.set_global_policy(before)


def model_precision(model) -> str:
    """The precision a Keras model computes in (from its layers' dtype policies)."""
    names = {getattr(getattr(layer, "dtype_policy", None), "name", "float32") for layer in _walk(model)}
    for precision, policy in (("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")):
        if policy in names:
            return precision
    return "float32"


def _walk(model):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk(layer)


# layers built with dtype="float32" on purpose: they keep float32 under a mixed policy
FLOAT32_LAYERS = ("softmax", "crop_to_input", "g_tanh", "g_softmax", "d_logits", "nearest_class_colour")


def _retype(config, policy: str):
    """A copy of a Keras (functional) model config with every layer's dtype policy set to
    ``policy``, except input layers and :data:`FLOAT32_LAYERS`, which stay float32."""
    if isinstance(config, list):
        return [_retype(v, policy) for v in config]
    if not isinstance(config, dict):
        return config
    out = {k: _retype(v, policy) for k, v in config.items()}
    inner = out.get("config")
    if "class_name" in out and isinstance(inner, dict) and "dtype" in inner and out["class_name"] != "InputLayer":
        keep = str(inner.get("name", "")).startswith(FLOAT32_LAYERS)
        inner["dtype"] = "float32" if keep else policy
    return out


def with_precision(model, precision: str):
    """``model`` itself if it already computes in ``precision``, else the same network
    rebuilt under that policy with the same weights (the float32 output layers stay float32)."""
    resolved = resolve_precision(precision)
    if model_precision(model) == resolved:
        return model
    return rebuild(model, resolved)


def rebuild(model, precision: str | None = None):
    """A new, plain copy of ``model`` (outside any distribution strategy) with its weights,
    under ``precision`` (default: the model's own)."""
    from rockseg._tf import keras

    import rockseg.models.registry  # noqa: F401  (the custom layers)

    resolved = model_precision(model) if precision is None else resolve_precision(precision)
    with precision_scope(resolved):
        clone = keras().Model.from_config(_retype(model.get_config(), _POLICIES[resolved]))
    clone.set_weights(model.get_weights())
    return clone
