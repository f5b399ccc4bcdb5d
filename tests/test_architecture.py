"""The layers hold (docs/architecture.md): contracts at the bottom, three wings that never import each other.

The import contracts are import-linter's, declared in pyproject.toml
([tool.importlinter]) and run here as the `lint-imports` command. import-linter
takes only packages as roots, so the two places of code that are not packages
-- ``app.py`` (a module) and ``stacks/lambdas/`` (a Lambda's code folder) --
are checked here from their syntax trees. And since an import checker cannot
see code that is *executed* from a file path, a last check looks for that.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGES = ("stscontracts", "stacks", "pipeline_code", "processing_scripts", "stsmon")


def _lint_imports(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    env = dict(env, PYTHONPATH=str(root))  # the tree under test, not the installed copy
    return subprocess.run([exe, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold(repo_root, subprocess_env):
    declared = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    result = _lint_imports(repo_root, subprocess_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(declared)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, contract, broken", [
    # Forbidden imports count transitively: the wings import the contracts, so all three break too.
    ("stscontracts/names.py", "import stsmon.errors", "The contracts import none of the wings", 3),
    ("stacks/common.py", "import stsmon.state", "The cloud definition (stacks, pipeline_code) imports neither", 1),
    ("stsmon/overview.py", "import pipeline_code.placeholders", "The local runtime and CLI import neither", 1),
    ("processing_scripts/steputil.py", "import stsmon.clock", "The step scripts import nothing of the app", 1),
])
def test_a_deliberate_violation_breaks_its_contract(repo_root, subprocess_env, tmp_path, module, line, contract, broken):
    """The same contracts on a copy of the tree with one forbidden import added: the check can fail."""
    for package in PACKAGES:
        shutil.copytree(repo_root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo_root / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(tmp_path, subprocess_env)
    assert result.returncode == 1, result.stdout
    assert f"Contracts: {6 - broken} kept, {broken} broken." in result.stdout, result.stdout
    report = " ".join(result.stdout.partition("Broken contracts")[2].split())
    assert report.startswith(f"---------------- {contract}"), report
    assert f"{module.removesuffix('.py').replace('/', '.')} -> {line.split()[1]}" in report


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__"}


def test_app_py_imports_the_stacks_and_the_contracts_only(repo_root):
    assert _top_level_imports(repo_root / "app.py") == {"aws_cdk", "cdk_nag", "stacks", "stscontracts"}


def test_the_lambda_code_imports_boto3_its_siblings_and_the_contracts_only(repo_root):
    """What the Lambda runtime has (boto3) and what the asset ships (stacks/constructs/custom_resources.py)."""
    folder = repo_root / "stacks" / "lambdas"
    siblings = {p.stem for p in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        assert _top_level_imports(path) <= {"boto3", "botocore", "stscontracts", *siblings}, path.name


#: Where stsmon may run code from a file: the model package's own inference program, as the
#: SageMaker serving container does (stsmon/endpoint/model.py).
EXECUTES_FILES = {"stsmon/endpoint/model.py"}


def test_stsmon_runs_no_code_of_the_other_wings_from_files(repo_root):
    """Before: stsmon/endpoint/handlers.py executed stacks/lambdas/approved_package.py by path (an import
    the checker above cannot see). The logic now lives in stscontracts.served_package."""
    loaders = {"spec_from_file_location", "run_path", "SourceFileLoader", "exec", "exec_module"}
    found = set()
    for path in (repo_root / "stsmon").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in loaders:
                    found.add(path.relative_to(repo_root).as_posix())
    assert found == EXECUTES_FILES
