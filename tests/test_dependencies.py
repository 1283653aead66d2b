"""Dependencies earn their place: the default install carries what the default path imports, and
every other part of the package names the extra it needs.

* every third-party import in ``src/marginalia`` (deferred ones too) comes from a distribution that
  ``pyproject.toml`` declares: a default dependency, or — only in the parts listed in :data:`PARTS`
  — the extra that part needs; and every default dependency is imported outside those parts;
* in a process where nothing of the optional extras is importable (what ``pip install marginalia``
  gives), ``marginalia demo`` runs, every module of the package imports except the optional parts,
  and those fail with one :class:`~marginalia.extras.MissingExtra` naming their extra;
* ``marginalia mcp`` / ``marginalia worker`` without their extra: one line naming it, exit 2.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "marginalia"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]

#: the parts of the package that need an extra (a package or a module) -> that extra
PARTS = {
    "marginalia.search.mcp_server": "mcp",
    "marginalia.temporal": "temporal",
    "marginalia.testing.s3_server": "testing",
}


def _requirements(extra: str | None) -> list[Requirement]:
    """The requirements of the default install (``None``) or of one extra, self-references expanded."""
    found: list[Requirement] = []
    for line in PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]:
        req = Requirement(line)
        if canonicalize_name(req.name) == "marginalia":
            for inner in sorted(req.extras):
                found += _requirements(inner)
        else:
            found.append(req)
    return found


def _declared(extra: str | None) -> set[str]:
    return {canonicalize_name(r.name) for r in _requirements(extra)}


@cache
def _owners() -> dict[str, str]:
    """Importable module name -> the installed distribution whose files hold it."""
    owners: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
                continue
            if file.suffix == ".py":
                module = parts[:-1] if parts[-1] == "__init__.py" else (*parts[:-1], file.stem)
            elif file.suffix in (".so", ".pyd"):
                module = (*parts[:-1], file.name.split(".")[0])
            else:
                continue
            if module:
                owners.setdefault(".".join(module), name)
    return owners


def _owner(module: str) -> str | None:
    owners, parts = _owners(), module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in owners:
            return owners[".".join(parts[:n])]
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _part_of(module: str) -> str | None:
    return next((extra for part, extra in PARTS.items() if module == part or module.startswith(part + ".")), None)


def _runs(node: ast.AST) -> list[ast.AST]:
    """``node``'s children, leaving out ``if TYPE_CHECKING:`` bodies (annotations only: never imported)."""
    if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
        return list(node.orelse)
    return list(ast.iter_child_nodes(node))


def _third_party_imports(path: Path) -> set[str]:
    names: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text("utf-8"))]
    while todo:
        node = todo.pop()
        todo += _runs(node)
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    top = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] != "marginalia"}
    return {n for n in top if n.split(".")[0] != "__future__"}


def test_every_import_comes_from_a_declared_distribution_and_every_default_one_is_used():
    default = _declared(None)
    used_by_default_path: set[str] = set()
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module_name(path)
        extra = _part_of(module)
        allowed = default | (_declared(extra) if extra else set())
        for name in sorted(_third_party_imports(path)):
            dist = _owner(name)
            if dist is None or dist not in allowed:
                wrong.append(
                    f"{path.relative_to(ROOT)}: import {name} (from {dist}) is not in {extra or 'the default'} install"
                )
            elif extra is None:
                used_by_default_path.add(dist)
    assert not wrong, "\n".join(wrong)
    assert default - used_by_default_path == set(), "default dependencies nothing outside the extras imports"


def test_the_optional_parts_are_not_in_the_default_install():
    default = _declared(None)
    for extra in ("mcp", "temporal", "testing", "studio", "notebooks", "bench"):
        assert _declared(extra), extra
        assert not _declared(extra) & default, f"'{extra}' packages are also default dependencies"
    dev = _declared("dev")
    for extra in PROJECT["optional-dependencies"]:
        assert _declared(extra) <= dev, f"'dev' (the README's test install) lacks part of '{extra}'"


def _closure(requirements: list[Requirement]) -> set[str]:
    """The installed distributions ``requirements`` pull in, transitively (markers evaluated)."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]
    while todo:  # a requirement's marker is evaluated against the extras its parent was asked for
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for line in dist.requires or ():
            inner = Requirement(line)
            if inner.marker and not any(inner.marker.evaluate({"extra": e}) for e in (set(extras) | {""})):
                continue
            todo.append((inner, frozenset(inner.extras)))
    return {k.split("[")[0] for k in seen}


def _not_in_a_default_install() -> list[str]:
    """Top-level modules only the extras bring (never one a default dependency also owns)."""
    default = _closure(_requirements(None))
    optional = _closure([r for e in PROJECT["optional-dependencies"] for r in _requirements(e)]) - default
    tops: dict[str, set[str]] = {}
    for module, dist in _owners().items():
        tops.setdefault(module.split(".")[0], set()).add(dist)
    return sorted(top for top, dists in tops.items() if dists <= optional)


#: a process in which the listed top-level modules are "not installed"
BLOCKER = """
import importlib.abc, sys
BLOCKED = set({blocked!r})
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""

CHECK_DEFAULT_INSTALL = """
import importlib, json, pkgutil, sys
from marginalia.extras import MissingExtra
from marginalia.testing.cli import run_cli
code, out, err = run_cli("demo")
result = {"demo": [code, err[-2000:]], "imports": {}}
import marginalia
for info in pkgutil.walk_packages(marginalia.__path__, "marginalia."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
        result["imports"][info.name] = None
    except MissingExtra as exc:
        result["imports"][info.name] = ["MissingExtra", exc.extra, str(exc)]
    except BaseException as exc:
        result["imports"][info.name] = [type(exc).__name__, getattr(exc, "name", None), str(exc)]
print(json.dumps(result))
"""


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="200")
    return env


def test_default_install_runs_the_demo_and_optional_parts_name_their_extra(tmp_path):
    blocked = _not_in_a_default_install()
    assert {"mcp", "moto", "werkzeug", "temporalio", "langgraph_api", "duckdb", "papermill"} <= set(blocked)
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked) + CHECK_DEFAULT_INSTALL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["demo"][0] == 0, result["demo"][1]
    failures = {name: why for name, why in result["imports"].items() if why is not None}
    for name, why in failures.items():
        extra = _part_of(name)
        assert extra is not None, f"{name} does not import without the extras: {why}"
        assert why[:2] == ["MissingExtra", extra], f"{name}: {why}"
        assert f"pip install 'marginalia[{extra}]'" in why[2], why[2]
    parts_that_fail = {_part_of(name) for name in failures}
    assert parts_that_fail == set(PARTS.values())  # each optional part really needs its extra
    assert "marginalia.testing.cli" in result["imports"] and result["imports"]["marginalia.testing.cli"] is None


def test_a_command_without_its_extra_names_it_in_one_line(tmp_path):
    for argv, extra in ((["mcp"], "mcp"), (["worker"], "temporal")):
        blocked = {"mcp": ["mcp"], "temporal": ["temporalio"]}[extra]
        script = BLOCKER.format(blocked=blocked) + f"import sys\nsys.argv = ['marginalia', *{argv!r}]\n"
        script += "from marginalia.cli import main\nmain()\n"
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=_clean_env(tmp_path), timeout=300
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (argv, proc.stderr[-2000:])
        assert lines[0].startswith("error:") and f"pip install 'marginalia[{extra}]'" in lines[0], lines[0]


def test_the_extras_table_names_what_pyproject_installs():
    """``marginalia.extras.EXTRAS`` (what a MissingExtra is raised for) agrees with pyproject's extras."""
    from marginalia.extras import EXTRAS

    assert set(PARTS.values()) <= set(EXTRAS)
    for extra, modules in EXTRAS.items():
        for module in modules:
            assert _owner(module) in _declared(extra), f"{module} does not come with marginalia[{extra}]"
