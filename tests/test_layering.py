"""The house's layers: helpers.facemodel (inference) sits below both trainers, lesson 05's model above them."""

import ast
import subprocess
import sys
from pathlib import Path

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
TRAINERS = ("helpers.swap", "helpers.ugatit")


def imported_modules(path: Path, package: str = "helpers.facemodel") -> set[str]:
    """Every module a file of `package` imports, at the top or inside a function, as absolute names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rstrip(".").split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # "from .. import swap"
    return names


def test_no_module_of_facemodel_imports_a_trainer():
    for path in sorted((HELPERS / "facemodel").glob("*.py")):
        bad = {m for m in imported_modules(path) if m.startswith(TRAINERS)}
        assert not bad, f"{path.name} imports {sorted(bad)}: helpers.facemodel must stay below the trainers"


def test_the_import_scan_sees_a_trainer_import(tmp_path):
    """The check above can fail: the old lessons.py, which imported helpers.swap inside a function, is caught."""
    old = tmp_path / "lessons.py"
    old.write_text("def train():\n    from ..swap import train_swap\n    from .. import ugatit\n")
    assert {"helpers.swap", "helpers.ugatit"} <= imported_modules(old)


def test_importing_facemodel_loads_neither_trainer_and_old_names_still_work():
    code = ("import sys, helpers.facemodel as fm; "
            "print(sorted(m for m in sys.modules if m in ('helpers.swap', 'helpers.ugatit', 'helpers.lesson_model'))); "
            "from helpers.facemodel import model_for_render, translate_only, portrait_crops; "
            "from helpers.swap import checkpoint_config, Swapper, load_swapper; "
            "print(model_for_render.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HELPERS.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first == "[]"  # helpers.facemodel alone pulls in no trainer
    assert second == "helpers.lesson_model"  # lesson 05's model, found above the trainers
