"""The plugin installs the two ways FiftyOne users install plugins, and then works in fresh
processes that do not see this checkout:

1. ``pip install`` of the package (here: a wheel built from the checkout's files, installed with
   ``pip install --target``) and ``detection-debugger plugin install`` (link, or ``--copy``);
2. ``fiftyone plugins download <zip URL>`` (a zip of the checkout's files served on 127.0.0.1)
   and ``fiftyone plugins requirements ... --ensure`` (the ``requirements.txt`` it reads).

The fresh processes run with a ``sitecustomize`` that removes this checkout's editable install
(its finder on ``sys.meta_path``, its path hook), so ``detection_debugger`` is importable only
from the wheel (path 1) or not at all until FiftyOne loads the plugin folder (path 2); each one
asserts that before doing anything else.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import uuid
import zipfile
from pathlib import Path

import pytest
import tomllib

from detection_debugger.cli.main import main

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "@datacentric/detection-debugger"

_SITECUSTOMIZE = """
import sys

def _ours(obj):
    return "__editable___detection_debugger" in (getattr(obj, "__module__", None) or "")

sys.meta_path[:] = [f for f in sys.meta_path if not _ours(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not _ours(h)]
sys.path[:] = [p for p in sys.path if "__editable__" not in p]
sys.path_importer_cache.clear()
"""

# Run in the fresh process first: where ``detection_debugger`` would come from, and no
# entry of sys.path is this checkout.
_PREAMBLE = """
import importlib.util, json, os, sys
from pathlib import Path
repo = Path({repo!r})
assert all(Path(p or os.getcwd()).resolve() != repo for p in sys.path), sys.path
spec = importlib.util.find_spec("detection_debugger")
origin = None if spec is None else str(Path(spec.origin).resolve())
"""

_EVALUATE = """
import fiftyone as fo
from fiftyone.operators import execute_operator
ds = fo.load_dataset({dataset!r})
out = execute_operator(
    {uri!r}, ctx={{"dataset": ds, "params": {{"pred_field": "predictions", "eval_key": {key!r}}}}}
)
assert out.error is None, out.error
loaded = str(Path(sys.modules["detection_debugger"].__file__).resolve())
print(json.dumps({{"origin": origin, "loaded": loaded, "AP": out.result["stats"]["AP"]}}))
"""

_LOAD_RUN = """
if origin is None:  # not installed: importable once FiftyOne loads the plugin folder
    from fiftyone.plugins.context import build_plugin_contexts
    build_plugin_contexts()
import fiftyone as fo
run = fo.load_dataset({dataset!r}).load_evaluation_results({key!r})
print(json.dumps({{"origin": origin, "class": type(run).__name__, "AP": run.mAP()}}))
"""


# --- requirements.txt and pyproject.toml -------------------------------------------------


def _requirement_lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_requirements_txt_has_the_runtime_dependencies_of_pyproject():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    requirements = _requirement_lines((REPO_ROOT / "requirements.txt").read_text())
    assert requirements == pyproject["project"]["dependencies"]


def test_the_wheel_ships_the_manifest():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "fiftyone.yml" in pyproject["tool"]["setuptools"]["package-data"]["detection_debugger"]


# --- detection-debugger plugin install, in process ---------------------------------------


def test_plugin_install_links_and_is_idempotent(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    assert main(["plugin", "install", "--plugins-dir", str(plugins)]) == 0
    link = plugins / "detection-debugger"
    assert link.is_symlink() and link.resolve() == REPO_ROOT
    assert main(["plugin", "install", "--plugins-dir", str(plugins)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{PLUGIN}: linked {link}", f"{PLUGIN}: already linked {link}"]


def test_plugin_install_copy_replaces_the_link_and_copies_the_package(tmp_path):
    plugins = tmp_path / "plugins"
    assert main(["plugin", "install", "--plugins-dir", str(plugins)]) == 0
    assert main(["plugin", "install", "--plugins-dir", str(plugins), "--copy"]) == 0
    copy = plugins / "detection-debugger"
    assert copy.is_dir() and not copy.is_symlink()
    copied = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    assert {"fiftyone.yml", "__init__.py", "cli/plugin.py", "operators/__init__.py"} <= copied
    assert not any(p.split("/")[0] in {"tests", "bench", "scripts", ".venv"} for p in copied)
    assert main(["plugin", "install", "--plugins-dir", str(plugins), "--copy"]) == 0  # again
    assert main(["plugin", "install", "--plugins-dir", str(plugins)]) == 0  # back to a link
    assert copy.is_symlink()


def test_plugin_install_refuses_what_is_not_its_own(tmp_path, capsys):
    foreign = tmp_path / "a" / "detection-debugger"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    assert main(["plugin", "install", "--plugins-dir", str(tmp_path / "a")]) == 2
    downloaded = tmp_path / "b" / "@datacentric" / "detection-debugger"
    downloaded.mkdir(parents=True)
    (downloaded / "fiftyone.yml").write_text(f'name: "{PLUGIN}"\n')
    assert main(["plugin", "install", "--plugins-dir", str(tmp_path / "b")]) == 2
    (tmp_path / "c").write_text("a file")
    assert main(["plugin", "install", "--plugins-dir", str(tmp_path / "c")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(e.startswith("detection-debugger: error: ") for e in errors)
    assert "exists and is not this plugin" in errors[0] and (foreign / "notes.txt").exists()
    assert "already installed there" in errors[1] and str(downloaded) in errors[1]
    assert "not a directory" in errors[2]


# --- the two paths, end to end in fresh processes ----------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    import fiftyone as fo

    from detection_debugger import LabelSource, apply_import, plan_import
    from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

    config = SyntheticConfig(
        num_images=6, num_classes=2, image_size=(160, 120), seed=5, class_names=("car", "bike")
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("install"), gt, results, gt_format="coco")
    sources = [
        LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
        LabelSource(paths["pred"], "tao", "predictions", predictions=True),
    ]
    ds = apply_import(plan_import(f"install-{uuid.uuid4().hex[:8]}", paths["images"], sources))
    ds.persistent = True  # the fresh processes load it by name
    yield ds.name
    fo.load_dataset(ds.name).delete()


def _checkout_files() -> list[str]:
    """This checkout's files as a commit of it would hold them: tracked, and new ones not
    ignored (a clean clone: its tracked files), with the working tree's contents."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [f for f in out.split("\0") if f and (REPO_ROOT / f).is_file()]


def _fresh_env(tmp_path: Path, plugins: Path, *pythonpath: Path) -> dict:
    site = tmp_path / "isolate"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in (site, *pythonpath)),
        PYTHONNOUSERSITE="1",
        FIFTYONE_PLUGINS_DIR=str(plugins),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def _run(env: dict, cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _shell(*args) -> None:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _fiftyone(env: dict, cwd: Path, *commands: list[str]) -> list[str]:
    """Runs ``fiftyone`` commands, one after the other in one fresh process (importing
    FiftyOne costs seconds); returns the output of each."""
    code = (
        "import json, sys\n"
        "from fiftyone.core.cli import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['fiftyone', *argv]\n"
        "    print('=== fiftyone', *argv, flush=True)\n"
        "    main()\n"
        "    sys.stdout.flush()\n"
    )
    out = _run(env, cwd, "-c", code, json.dumps(commands))
    return [part.split("\n", 1)[1] for part in out.split("=== fiftyone ")[1:]]


def _python(env: dict, cwd: Path, *parts: str, **values) -> dict:
    code = "".join(part.format(repo=str(REPO_ROOT), **values) for part in (_PREAMBLE, *parts))
    return json.loads(_run(env, cwd, "-c", code).strip().splitlines()[-1])


def _check_the_plugin_works(env, cwd, dataset, plugin_dir, package, listed, operators, load=True):
    """``fiftyone plugins list`` and ``operators list`` (their outputs) show the plugin; its
    operator runs; its stored run loads in the next process (unless not ``load``).
    ``package``: the folder ``detection_debugger`` is installed in (None: not installed, the
    plugin folder registers itself)."""
    assert re.search(rf"^{re.escape(PLUGIN)}\s", listed, re.M), listed
    assert f"{PLUGIN}/evaluate_detections" in operators and f"{PLUGIN}/search" in operators
    key = f"k{uuid.uuid4().hex[:6]}"
    values = {"dataset": dataset, "key": key, "uri": f"{PLUGIN}/evaluate_detections"}
    ran = _python(env, cwd, _EVALUATE, **values)
    where = package or plugin_dir.resolve()
    assert ran["origin"] == (None if package is None else str(package / "__init__.py"))
    assert ran["loaded"] == str(where / "__init__.py")
    assert 0 < ran["AP"] <= 1
    if not load:
        return None
    run = _python(env, cwd, _LOAD_RUN, **values)
    assert run["class"] == "DebuggerResults" and run["AP"] == pytest.approx(ran["AP"], abs=1e-12)
    return run


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """``pip install`` of a wheel built from this checkout's files, into its own folder."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    for name in _checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((REPO_ROOT / name).read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels, site = tmp_path / "wheel", tmp_path / "site"
    _shell(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, source)
    (wheel,) = wheels.glob("detection_debugger-*.whl")
    assert "detection_debugger/fiftyone.yml" in zipfile.ZipFile(wheel).namelist()
    _shell(*pip, "install", "--no-deps", "--no-index", "--target", site, wheel)
    return site


@pytest.mark.fiftyone
@pytest.mark.parametrize("copy", [False, True], ids=["link", "copy"])
def test_pip_install_then_plugin_install(dataset, wheel_site, tmp_path, copy):
    site = wheel_site
    plugins = tmp_path / "plugins"
    env = _fresh_env(tmp_path, plugins, site)
    command = ["-m", "detection_debugger.cli.main", "plugin", "install"]
    out = _run(env, tmp_path, *command, *(["--copy"] if copy else []))
    plugin_dir = plugins / "detection-debugger"
    assert str(plugin_dir) in out and plugin_dir.is_symlink() is not copy
    assert (plugin_dir / "fiftyone.yml").is_file()
    listed, operators = _fiftyone(env, tmp_path, ["plugins", "list"], ["operators", "list"])
    package = site / "detection_debugger"
    # The run's classes come from the installed package, linked or copied: loaded once.
    check = (env, tmp_path, dataset, plugin_dir, package, listed, operators)
    _check_the_plugin_works(*check, load=not copy)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.fiftyone
def test_fiftyone_plugins_download_then_requirements(dataset, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "detection-debugger.zip", "w") as archive:
        for name in _checkout_files():
            archive.write(REPO_ROOT / name, f"detection-debugger-main/{name}")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    plugins = tmp_path / "plugins"
    env = _fresh_env(tmp_path, plugins)
    url = f"http://127.0.0.1:{server.server_port}/detection-debugger.zip"
    try:
        outputs = _fiftyone(
            env,
            tmp_path,
            ["plugins", "download", url, "--plugin-names", PLUGIN],
            ["plugins", "requirements", PLUGIN, "--print"],
            # --install runs pip on the same file; --ensure checks this environment has it all
            ["plugins", "requirements", PLUGIN, "--ensure", "--error-level", "0"],
            ["plugins", "list"],
            ["operators", "list"],
        )
    finally:
        server.shutdown()
        server.server_close()
    plugin_dir = plugins / "@datacentric" / "detection-debugger"
    assert (plugin_dir / "fiftyone.yml").is_file() and (plugin_dir / "requirements.txt").is_file()
    wanted = _requirement_lines((REPO_ROOT / "requirements.txt").read_text())
    assert set(wanted) <= set(_requirement_lines(outputs[1])), outputs[1]
    run = _check_the_plugin_works(env, tmp_path, dataset, plugin_dir, None, *outputs[3:])
    assert run["origin"] is None  # not installed: FiftyOne's plugin loading makes it importable
