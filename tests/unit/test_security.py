"""Static checks of the toolkit's source: it never unpickles, evaluates or runs foreign code.

The toolkit reads models as safetensors/GGUF, corpora as text/JSON/parquet, and writes
only parquet, JSON, HTML and safetensors. These tests parse every module of the
package and the experiments (comments and docstrings, which may *mention* pickle, are
not code and are ignored) and fail on any construct that could execute data.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "stages_of_inference").rglob("*.py"), *(REPO / "experiments").rglob("*.py")])

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}
UNSAFE_METHODS = {"read_pickle", "to_pickle", "loads_pickle"}


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def findings(source: str, filename: str = "<test>") -> list[str]:
    """Every unsafe construct in ``source``, as ``file:line: what``."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            problems += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            problems.append(f"{where}: from {node.module} import")
        elif isinstance(node, ast.Name) and node.id in UNSAFE_MODULES:
            problems.append(f"{where}: uses {node.id}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_BUILTINS:
                problems.append(f"{where}: calls {node.func.id}()")
            if name.split(".")[-1] in UNSAFE_METHODS:
                problems.append(f"{where}: calls {name}()")
            if name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
                problems.append(f"{where}: torch.load without weights_only=True")
            if name.endswith(("np.load", "numpy.load")) and _is_true(_keyword(node, "allow_pickle")):
                problems.append(f"{where}: {name}(allow_pickle=True)")
            if _is_true(_keyword(node, "trust_remote_code")):
                problems.append(f"{where}: trust_remote_code=True hard-coded")
            if name in {"os.system", "os.popen"} or _is_true(_keyword(node, "shell")):
                problems.append(f"{where}: runs a shell ({name})")
    return problems


def test_the_sources_are_found() -> None:
    names = {path.name for path in SOURCES}
    assert {"folder.py", "gguf.py", "atomic.py", "corpus.py", "sweep.py", "runner.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_no_pickle_eval_exec_or_unsafe_torch_load(path: Path) -> None:
    assert findings(path.read_text(encoding="utf-8"), _relative(path)) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "from pickle import loads",
        "import dill as d",
        "x = eval('1')",
        "exec('x = 1')",
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "pd.read_pickle(path)",
        "table.to_pickle(path)",
        "np.load(path, allow_pickle=True)",
        "AutoModel.from_pretrained(p, trust_remote_code=True)",
        "os.system('ls')",
        "subprocess.run('ls', shell=True)",
    ],
)
def test_the_checker_catches_each_unsafe_construct(snippet: str) -> None:
    assert findings(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "model.eval()",
        "torch.load(path, weights_only=True)",
        '"""Never pickle: nothing is unpickled."""',
        "# eval(x) in a comment",
        "load_model(name, trust_remote_code=trust_remote_code)",
        "np.load(path)",
    ],
)
def test_the_checker_ignores_safe_lookalikes(snippet: str) -> None:
    assert findings(snippet) == []


def test_results_writers_only_write_parquet_json_and_text() -> None:
    from stages_of_inference.runs import atomic

    writers = sorted(name for name in vars(atomic) if name.startswith("write_"))
    assert writers == ["write_json", "write_parquet", "write_text"]
