# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""The installed layout: one top-level package, importable from anywhere.

`trainers` and `benchmarks` at the repository root are only the checkout's
command names (`python -m trainers.pkkd`); `custom_ops` is the build tree.
"""

import ast
import importlib.util
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECKOUT_ONLY = ("trainers", "benchmarks", "custom_ops")

_WALK = """
import importlib, json, pkgutil, sys
import addernet_tf
names = [m.name for m in pkgutil.walk_packages(addernet_tf.__path__, "addernet_tf.")
         if not m.name.endswith(("_child", "._adder_ops", "._adder_litert"))]
# (tf_keras / LiteRT scripts; the op and LiteRT libraries, loaded by path, not imported)
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "imported": names,
    "checkout_only_found": [n for n in %r if importlib.util.find_spec(n) is not None],
    "checkout_only_loaded": sorted({m.split(".")[0] for m in sys.modules} & set(%r)),
}))
""" % (CHECKOUT_ONLY, CHECKOUT_ONLY)


def test_every_installed_module_imports_outside_the_checkout(tmp_path):
    proc = subprocess.run([sys.executable, "-P", "-c", _WALK], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                       "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("addernet_tf.trainers.pkkd", "addernet_tf.trainers.tune",
                 "addernet_tf.benchmarks.adder_conv", "addernet_tf.export.qat"):
        assert name in found["imported"]
    assert found["checkout_only_found"] == []
    assert found["checkout_only_loaded"] == []


def test_checkout_command_names_reach_the_installed_modules():
    pkg = ROOT / "addernet_tf"
    for alias, origin in [("trainers.pkkd", pkg / "trainers" / "pkkd.py"),
                          ("trainers.tune", pkg / "trainers" / "tune.py"),
                          ("benchmarks.adder_conv", pkg / "benchmarks" / "adder_conv.py"),
                          ("benchmarks.adder_conv_gpu", ROOT / "benchmarks" / "adder_conv_gpu.py")]:
        spec = importlib.util.find_spec(alias)
        assert spec is not None and pathlib.Path(spec.origin) == origin, (alias, spec)


def _top_level_imports(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_code_imports_the_package_not_the_checkout_aliases():
    # One name per module: a module imported as both trainers.x and
    # addernet_tf.trainers.x would be two modules (flags defined twice).
    offenders = []
    for path in sorted((ROOT / "addernet_tf").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py")):
        bad = set(_top_level_imports(path)) & {"trainers", "benchmarks"}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert not offenders
    installed = [p for p in (ROOT / "addernet_tf").rglob("*.py")
                 if "custom_ops" in set(_top_level_imports(p))]
    assert not installed
