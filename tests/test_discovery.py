"""Which folders discovery walks: output folders are skipped, a package that happens to share their name is not."""

from __future__ import annotations

from pathlib import Path

from stagegraph import source


def _found(root: Path) -> set[str]:
    return {f.relpath for f in source.discover([root]).files}


def test_a_package_named_build_is_analysed_but_build_output_is_not(tmp_path: Path) -> None:
    (tmp_path / "store" / "build").mkdir(parents=True)
    (tmp_path / "store" / "__init__.py").write_text("")
    (tmp_path / "store" / "build" / "__init__.py").write_text("")
    (tmp_path / "store" / "build" / "steps.py").write_text("def init_db():\n    pass\n")
    (tmp_path / "build" / "lib").mkdir(parents=True)
    (tmp_path / "build" / "lib" / "copy.py").write_text("x = 1\n")
    found = _found(tmp_path)
    assert "store/build/steps.py" in found
    assert not any(p.startswith("build/") for p in found)
