"""Library internals stay behind their seams: no module of agents/, graph/ or db/ but a
`*_compat.py` one imports or touches a private name (`_x`) of a third-party package, or
overrides one; and each compat module refuses a library version it was not verified
with."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agents", "graph", "db")
#: Top-level names that are this project's, not a third party's.
OWN = {*PACKAGES, "tests", "benchmarks", "scripts"}
#: Each seam, and the distributions whose version it checks (`version(name)`).
SEAMS = {
    "agents.runtime.dbos_compat": ("dbos",),
    "agents.llm.langchain_compat": ("langchain-core", "langchain-openai"),
    "graph.api.strawberry_compat": ("strawberry-graphql",),
    "graph.transport.uvicorn_compat": ("uvicorn",),
    "db.broadcaster_compat": ("broadcaster",),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _third_party(module: str | None) -> bool:
    top = (module or "").split(".")[0]
    return bool(top) and top not in OWN and top not in sys.stdlib_module_names


def _sources() -> Iterator[tuple[str, Path]]:
    """(dotted module name, path) of every module of the packages but the seams."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.endswith("_compat.py") or "static" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _defined_names() -> set[str]:
    """Every name the project itself defines (functions, classes, assignment targets,
    attributes it sets, parameters, imports' local names): a private attribute read
    with one of these names may be the project's own."""
    names: set[str] = set()
    for _, path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if not _touches_import(node):
                    names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and not node.name.startswith("_"):
                names.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def _touches_import(node: ast.Attribute) -> bool:
    """Set on a module or class (not on `self` or a local object): decided later."""
    return isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls")


def _third_party_names(tree: ast.Module) -> set[str]:
    """Local names bound to a third-party module or to a name imported from one."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name):
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _third_party(node.module):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _violations(name: str, path: Path, own: set[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported = _third_party_names(tree)
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name) and any(map(_private, alias.name.split("."))):
                    yield f"{where} imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _third_party(node.module):
            module = node.module or ""
            if any(map(_private, module.split("."))):
                yield f"{where} imports from {module}"
            for alias in node.names:
                if _private(alias.name):
                    yield f"{where} imports {alias.name} from {module}"
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in imported:
                yield f"{where} touches {base.id}.{node.attr}"
            elif isinstance(base, ast.Call) and isinstance(base.func, ast.Name):
                if base.func.id == "super" and node.attr not in own:
                    yield f"{where} calls super().{node.attr}"
            elif not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                if node.attr not in own:
                    yield f"{where} touches .{node.attr}, a name the project does not define"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "setattr", "hasattr", "delattr") and node.args[1:]:
                key = node.args[1]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    if _private(key.value) and key.value not in own:
                        yield f"{where} {node.func.id}(..., {key.value!r})"


def test_no_private_name_of_a_library_outside_the_seams() -> None:
    own = _defined_names()
    found = [v for name, path in _sources() for v in _violations(name, path, own)]
    assert not found, "\n".join(found)


def _written(cls: type) -> set[str]:
    """The names the source of `cls` defines in its body or uses on its instances
    (`self.x`, `cls.x`)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return set()
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in ("self", "cls"):
                names.add(node.attr)
    return names


def _library_names(cls: type) -> set[str]:
    """The names a library class has: its attributes (pydantic's private ones too) and
    what its source uses on its instances."""
    return set(vars(cls)) | set(getattr(cls, "__private_attributes__", {})) | _written(cls)


def _classes() -> Iterator[type]:
    for name, _ in _sources():
        if name.startswith("db.migrations") or name.endswith("__main__"):
            continue  # alembic's scripts, and a module that runs the CLI
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name:
                yield value


def _clashes(cls: type) -> Iterator[str]:
    """Private names `cls` (through its own project classes) shares with a third-party
    class it derives from: an override of, or a reach into, the library's internals."""
    own = [c for c in cls.__mro__ if c.__module__.split(".")[0] in PACKAGES]
    theirs = [c for c in cls.__mro__ if _third_party(c.__module__) and c is not object]
    if not theirs:
        return
    ours = {n for c in own if not c.__module__.endswith("_compat") for n in _written(c)}
    for base in theirs:
        shared = sorted(n for n in ours & _library_names(base) if _private(n))
        ours_name = f"{cls.__module__}.{cls.__qualname__}"
        for attr in shared:
            yield f"{ours_name}: {attr} of {base.__module__}.{base.__name__}"


def test_no_subclass_overrides_or_reads_a_library_private_name() -> None:
    found = sorted({c for cls in _classes() for c in _clashes(cls)})
    assert not found, "\n".join(found)


def _load_fresh(module: str) -> None:
    """Run `module`'s file anew, as another module (the imported one is untouched)."""
    path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(f"_fresh_{module.replace('.', '_')}", path)
    assert spec and spec.loader
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.parametrize("module", sorted(SEAMS))
def test_a_seam_loads_with_the_installed_versions(module: str) -> None:
    _load_fresh(module)


@pytest.mark.parametrize(
    ("module", "distribution"),
    sorted((module, name) for module, names in SEAMS.items() for name in names),
)
def test_a_seam_refuses_an_unverified_version(
    module: str, distribution: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.metadata.version

    def version(name: str) -> str:
        return "999.0.0" if name == distribution else real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(ImportError, match=rf"{distribution} 999\.0\.0 is installed"):
        _load_fresh(module)


def test_every_seam_is_listed() -> None:
    found = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for package in PACKAGES
        for p in (ROOT / package).rglob("*_compat.py")
    }
    assert found == set(SEAMS)


def test_every_seam_checks_its_versions_through_one_function() -> None:
    """Each seam calls `db.compat.require_verified` for each distribution it knows, so
    one function decides what "verified" means and how the error reads."""
    for module, names in SEAMS.items():
        source = ROOT.joinpath(*module.split(".")).with_suffix(".py").read_text()
        assert "require_verified(" in source, module
        assert "startswith(" not in source.split("require_verified(")[0], module
        for name in names:
            assert f'"{name}"' in source, (module, name)


def test_require_verified_admits_the_specifier_and_names_what_to_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from db.compat import require_verified

    installed = {"lib": "3.4.0"}
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed[name])
    assert require_verified("lib", "==3.4.*", seam="x_compat.py", check="lib._x") == "3.4.0"
    installed["lib"] = "3.4.1rc1"  # a pre-release of a verified line counts, as a prefix did
    assert require_verified("lib", "==3.4.*", seam="x_compat.py", check="lib._x") == "3.4.1rc1"
    for unverified in ("3.5.0", "3.40.0", "not a version"):
        installed["lib"] = unverified
        with pytest.raises(ImportError) as error:
            require_verified("lib", "==3.4.*", seam="x_compat.py", check="lib._x")
        message = str(error.value)
        assert message.startswith(f"lib {unverified} is installed; x_compat.py")
        assert "lib==3.4.*" in message and "check lib._x" in message
        assert "widen SUPPORTED" in message
