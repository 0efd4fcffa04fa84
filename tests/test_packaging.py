"""The grammar ships inside a real (non-editable) wheel and is loaded from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import ROOT


def test_wheel_contains_and_loads_the_grammar(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("stratlang-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "stratlang/grammar/stratlang.lark" in names
    assert "stratlang/solvers/graphs.py" in names
    assert not any(n.startswith(("solvers/", "grammar/")) for n in names)  # no top-level squatting
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--target", str(site), str(wheel)], capture_output=True, text=True,
                             timeout=300)
    assert install.returncode == 0, install.stderr
    probe = ("import stratlang, stratlang.language.syntax as s; "
             "print(stratlang.__file__); "
             "print(len(stratlang.load('response y ~ squared').text))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    location, length = out.stdout.split()
    assert location.startswith(str(site)) and int(length) > 0
