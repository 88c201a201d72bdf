"""The install paths agree: pyproject ranges, pinned constraints, conda env, Makefile."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_dependency_is_pinned_within_its_range():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency but not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{req.name}=={pins[name]} (constraints.txt) is outside {req.specifier} (pyproject.toml)"
        )


def test_known_good_stack_is_pinned():
    pins = _pins()
    assert pins["tensorflow"].startswith("2.21.")
    assert pins["tf-keras"].startswith("2.21.")
    assert pins["segmentation-models"] == "1.0.1"


def test_conda_environment_delegates_to_the_same_pip_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    version = python.split("=")[1]
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(version + ".0")
    pip_lines = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-c requirements/constraints.txt" in pip_lines
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"pip install -q -c (\S+) -e \"?(\.\[[^\]]+\])", makefile)
    assert install, "Makefile no longer installs with the constraints file"
    assert install.group(1) == "requirements/constraints.txt"
    assert f"-e {install.group(2)}" in pip_lines, "environment.yml and Makefile install different extras"


def test_console_script_is_declared():
    assert PYPROJECT["project"]["scripts"]["rockseg"] == "rockseg.cli:main"


def test_import_is_light_and_silent():
    code = (
        "import os, sys; import rockseg; "
        "assert os.environ['SM_FRAMEWORK'] == 'tf.keras'; "
        "assert os.environ['TF_USE_LEGACY_KERAS'] == '1'; "
        "assert 'tensorflow' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


def test_segmentation_models_uses_the_shared_keras():
    code = (
        "import rockseg._tf as t; sm = t.sm(); k = t.keras(); "
        "m = sm.Unet('resnet18', encoder_weights=None, classes=2, input_shape=(32, 32, 3)); "
        "assert isinstance(m, k.Model), type(m)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "", "importing segmentation_models through rockseg printed something"


def test_committed_notebooks_hold_no_injected_or_error_cells():
    """A papermill-injected cell would pin the profile and keep nbval off the smoke branches."""
    import json

    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        assert not [c for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])], nb.name
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), nb.name
        assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"], nb.name
