# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Every source file of the project says its licence (pyproject: Apache-2.0, LICENSE)."""

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
_SOURCE = re.compile(r"(\.(py|cc|h|sh|bzl)|(^|/)BUILD|^Makefile|^\.ci/run)$")
_VENDORED = ("third_party/litert/include/",)


def test_every_source_file_starts_with_the_licence_line():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sources = [f for f in files if _SOURCE.search(f) and (ROOT / f).is_file()]
    assert len(sources) > 100
    # Vendored public headers keep their authors' notice; their folder holds the licence.
    vendored = [f for f in sources if f.startswith(_VENDORED)]
    assert vendored and (ROOT / "third_party" / "litert" / "LICENSE").is_file()
    assert all("Licensed under the Apache License, Version 2.0" in (ROOT / f).read_text()[:800]
               for f in vendored)
    sources = [f for f in sources if not f.startswith(_VENDORED)]
    missing = [f for f in sources
               if "Licensed under the Apache License 2.0." not in "".join(
                   (ROOT / f).read_text().splitlines(True)[:2])]
    assert not missing, f"no licence line in the first two lines of: {', '.join(missing)}"
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
