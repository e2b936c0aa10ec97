"""The build tool: the world follows from what the plugin defines, and a malformed plugin is a clear error before
componentize-py runs. (The test plugins' build.sh scripts run the whole build.)"""

from pathlib import Path

import pytest

from wssgate import build
from wssgate.build import BuildError
from wssgate.plugin import OPTIONAL_METHODS

REPO = Path(__file__).resolve().parents[3]


def app(tmp_path, source, name="plugin_mod"):
    """An app folder holding one plugin module, plus a test module the tool must ignore."""
    (tmp_path / f"{name}.py").write_text("import wssgate\n" + source)
    (tmp_path / f"test_{name}.py").write_text("")
    return tmp_path


def defines(*methods):
    """The optional events of a plugin that defines `methods`, as `exports_of` reports them."""
    return {name: name in methods for name in OPTIONAL_METHODS}


def test_the_world_has_only_what_the_plugin_defines():
    none = build.world(defines())
    for absent in ("timers", "http", "lifecycle", "history", "storage"):
        assert absent not in none, absent
    assert "include plugin;" in none
    timers = build.world(defines("on_timer"))
    assert "import timers;" in timers and "export timer-events;" in timers and "http" not in timers
    full = build.world(defines(*OPTIONAL_METHODS))
    for line in ("import http;", "export http-events;", "export lifecycle;", "import history;",
                 "export history-events;", "import storage;", "export storage-events;"):
        assert line in full


@pytest.mark.parametrize("method,interface,other", [
    ("on_appended", "history", "storage"), ("on_history", "history", "storage"),
    ("on_read", "storage", "history"), ("on_written", "storage", "history"),
])
def test_either_event_of_history_or_storage_brings_its_interface_and_only_it(method, interface, other):
    world = build.world(defines(method))
    assert f"import {interface};" in world and f"export {interface}-events;" in world
    assert other not in world
    entry = build.entry("m", "M", defines(method))
    assert f"{interface.capitalize()}Events" in entry and f"{other.capitalize()}Events" not in entry


def test_the_entry_exports_what_the_world_has():
    text = build.entry("echo", "Echo", defines("init", "on_http_response"))
    assert "_wasm.serve(echo.Echo)" in text
    assert "import ConnectionEvents, Lifecycle, HttpEvents" in text and "TimerEvents" not in text
    both = build.entry("echo", "Echo", defines("on_history", "on_written"))
    assert "import ConnectionEvents, HistoryEvents, StorageEvents" in both


def test_the_plugin_module_and_class_are_found(tmp_path):
    folder = app(tmp_path, "class Echo(wssgate.Plugin):\n    def on_timer(self, timer, connections): pass\n")
    assert build.find_module(folder) == "plugin_mod"
    cls = build.find_plugin(folder, "plugin_mod")
    assert cls.__name__ == "Echo" and build.exports_of(cls)["on_timer"]


@pytest.mark.parametrize("source,message", [
    ("x = 1\n", "exactly one subclass of wssgate.Plugin (found: none)"),
    ("class A(wssgate.Plugin): pass\nclass B(wssgate.Plugin): pass\n", "found: A, B"),
    ("class A(wssgate.Plugin):\n    async def on_message(self, conn, state, message): pass\n", "is async"),
    ("class A(wssgate.Plugin):\n    def on_message(self, conn, message): pass\n", "must take self and 3"),
    ("class A(wssgate.Plugin):\n    def on_timer(self, timer, conns):\n        yield 1\n", "generator"),
    ("class A(wssgate.Plugin):\n    def on_read(self, request, result): pass\n", "on_read must take self and 3"),
    ("class A(wssgate.Plugin):\n    on_close = 3\n", "must be a method"),
    ("class A(wssgate.Plugin)\n", "SyntaxError"),
    ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
])
def test_a_malformed_plugin_is_a_clear_build_error(tmp_path, source, message):
    folder = app(tmp_path, source, name=f"malformed_{abs(hash(source))}")
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build.build(folder, tmp_path / "out.wasm")
    assert not (tmp_path / "out.wasm").exists()


def test_a_folder_with_several_modules_or_a_reserved_name_is_refused(tmp_path):
    (tmp_path / "one.py").write_text("")
    (tmp_path / "two.py").write_text("")
    with pytest.raises(BuildError, match="found: one, two"):
        build.find_module(tmp_path)
    with pytest.raises(BuildError, match="cannot be named 'wit_world'"):
        build.find_plugin(tmp_path, "wit_world")
    with pytest.raises(BuildError, match="would hide Python's own module"):
        build.find_plugin(tmp_path, "http")


def test_the_cli_reports_an_error_and_fails(tmp_path, capsys):
    assert build.main([str(tmp_path), str(tmp_path / "out.wasm")]) == 1
    assert "exactly one plugin module" in capsys.readouterr().err


def test_the_shipped_contract_is_the_repository_one():
    repo_wit = REPO / "wit" / "plugin.wit"
    if not repo_wit.exists():
        pytest.skip("not in a wssgate checkout")
    assert build.WIT.read_text() == repo_wit.read_text(), "copy wit/plugin.wit to guest-sdk/python/wssgate/wit/"


#: The optional interfaces a component may name, imported or exported.
INTERFACES = ("timers", "timer-events", "lifecycle", "http", "http-events", "history", "history-events", "storage",
              "storage-events", "storage-types")


@pytest.mark.parametrize("method,present", [
    ("on_http_response", ("http", "http-events")),
    ("on_appended", ("history", "history-events", "storage-types")),
    ("on_written", ("storage", "storage-events", "storage-types")),
])
def test_a_built_component_imports_and_exports_only_what_its_plugin_defines(tmp_path, method, present):
    """A whole build (about 20 s each): the component's import and export names are plain text in its binary."""
    # A module name of its own: the tool imports it in this process, which keeps what it imported.
    folder = app(tmp_path, "class Uses(wssgate.Plugin):\n"
                           f"    def {method}(self, request, result, connections): pass\n", name=f"uses_{method}")
    out = tmp_path / "dist" / "uses.wasm"
    assert build.build(folder, out) == defines(method)
    component = out.read_bytes()
    for name in ("host", "connection-events") + present:
        assert f"wssgate:plugin/{name}@".encode() in component, name
    for absent in set(INTERFACES) - set(present):
        assert f"wssgate:plugin/{absent}@".encode() not in component, absent
