"""The checkout is a FiftyOne plugin: FiftyOne finds it, and its manifest is complete."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import detection_debugger

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((REPO_ROOT / "fiftyone.yml").read_text())


class RecordingPluginContext:
    """Stands in for the registration context FiftyOne passes to ``register(p)``."""

    def __init__(self):
        self.registered = []

    def register(self, component):
        self.registered.append(component)


def _registered_names():
    p = RecordingPluginContext()
    detection_debugger.register(p)
    return sorted(component().config.name for component in p.registered)


def test_manifest_names_the_plugin():
    assert MANIFEST["name"] == "@datacentric/detection-debugger"
    assert "version" in MANIFEST


def test_manifest_lists_exactly_what_register_registers():
    listed = sorted((MANIFEST.get("operators") or []) + (MANIFEST.get("panels") or []))
    assert listed == _registered_names()


@pytest.mark.fiftyone
def test_fiftyone_discovers_the_plugin():
    import fiftyone.plugins as fop

    plugins = {plugin.name: plugin for plugin in fop.list_plugins(enabled="all")}
    assert "@datacentric/detection-debugger" in plugins
    plugin = plugins["@datacentric/detection-debugger"]
    assert Path(plugin.directory).resolve() == REPO_ROOT
    assert sorted(plugin.operators) == _registered_names()  # FiftyOne lists panels here too


@pytest.mark.fiftyone
def test_fiftyone_loads_the_plugin_without_errors():
    from fiftyone.plugins.context import build_plugin_contexts

    contexts = {c.name: c for c in build_plugin_contexts(enabled="all")}
    context = contexts["@datacentric/detection-debugger"]
    assert context.errors == []
    loaded = sorted(instance.config.name for instance in context.instances)
    assert loaded == _registered_names()
