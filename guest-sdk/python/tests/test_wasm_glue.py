"""The gateway glue (`wssgate._wasm`) converts between the SDK's types and the bindings componentize-py generates
from the shipped contract, for history and storage. The bindings are pure Python, so this runs natively: the test
generates them (`componentize-py bindings`, well under a second), puts fakes in place of the gateway's imports, and
drives the glue's host calls and exported events as the component would."""

import importlib
import subprocess
import sys

import pytest

import wssgate
from wssgate import Connection, Refused, StorageError, StorageRequest, _host, history, storage
from wssgate.build import WIT, componentize_py
from wssgate.history import HistoryEntry, HistoryPage, Position
from wssgate.storage import StoredValue

#: The modules the generated bindings and the glue bring; each test starts and ends without them.
GENERATED = ("wit_world", "componentize_py_types", "wssgate._wasm")


def _forget_generated():
    for name in list(sys.modules):
        if name.split(".")[0] in GENERATED[:2] or name == GENERATED[2]:
            del sys.modules[name]


class Plugin(wssgate.Plugin):
    """Records what its storage and history events get."""

    def __init__(self):
        self.got = []

    def on_appended(self, request, result, connections):
        self.got.append((request, request.owner, result))

    def on_history(self, request, result, connections):
        self.got.append((request, request.owner, result))

    def on_read(self, request, result, connections):
        self.got.append((request, request.owner, result))

    def on_written(self, request, result, connections):
        self.got.append((request, request.owner, result))


@pytest.fixture
def glue(tmp_path, request):
    """`wssgate._wasm` serving `Plugin` over freshly generated bindings of the world the test names (plugin-full
    unless marked otherwise); yields (glue, bindings' imports, calls the fakes recorded)."""
    world = getattr(request, "param", "plugin-full")
    out = tmp_path / "bindings"
    done = subprocess.run([componentize_py(), "-d", str(WIT), "-w", world, "bindings", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _forget_generated()
    sys.path.insert(0, str(out))
    previous_host = _host.install(None)
    try:
        wasm = importlib.import_module("wssgate._wasm")
        imports = importlib.import_module("wit_world.imports")
        calls = []
        if world == "plugin-full":
            _fake_imports(imports, calls)
        wasm.serve(Plugin)
        yield wasm, imports, calls
    finally:
        sys.path.remove(str(out))
        _forget_generated()
        _host.install(previous_host)


def _fake_imports(imports, calls):
    """Puts recorders in place of the gateway's history and storage imports: each records its arguments and
    returns a request id, except that a group or key named "refuse" is refused with too-many-pending."""
    from componentize_py_types import Err

    hist = importlib.import_module("wit_world.imports.history")
    stor = importlib.import_module("wit_world.imports.storage")
    types = importlib.import_module("wit_world.imports.storage_types")

    def fake(name):
        def call(*args):
            calls.append((name, args))
            if args[0] == "refuse":
                raise Err(types.StorageRefusal.TOO_MANY_PENDING)
            return 40 + len(calls)
        return call

    for module, names in ((hist, ("append", "read")), (stor, ("get", "set", "remove"))):
        for name in names:
            setattr(module, name, fake(f"{module.__name__.rsplit('.', 1)[1]}.{name}"))


def test_host_calls_reach_the_imports_with_the_bindings_types(glue):
    wasm, imports, calls = glue
    t = importlib.import_module("wit_world.imports.types")
    hist = importlib.import_module("wit_world.imports.history")
    conn = Connection(5)
    assert history.append("g", "hi", owner=conn) == StorageRequest(41, conn)
    history.append("g", b"\x00")
    history.read("g", Position(3, "e"), 50, owner=conn)
    history.read("g")
    storage.get("k", owner=conn)
    storage.set("k", "é", ttl=1.5, if_revision=0)
    storage.remove("k", if_revision=9, owner=conn)
    assert calls == [
        ("history.append", ("g", t.Message_Text("hi"), 5)),
        ("history.append", ("g", t.Message_Binary(b"\x00"), None)),
        ("history.read", ("g", hist.Position(3, "e"), 50, 5)),
        ("history.read", ("g", None, 100, None)),
        ("storage.get", ("k", 5)),
        ("storage.set", ("k", "é".encode(), 1500, 0, None)),
        ("storage.remove", ("k", 9, 5)),
    ]


def test_a_refusal_raises_refused_with_the_contracts_name(glue):
    for call in (lambda: history.append("refuse", "m"), lambda: history.read("refuse"),
                 lambda: storage.get("refuse"), lambda: storage.set("refuse", "v"), lambda: storage.remove("refuse")):
        with pytest.raises(Refused) as refused:
            call()
        assert refused.value.reason == "too-many-pending"


def test_history_events_reach_the_plugin_as_the_sdks_types(glue):
    wasm, imports, _ = glue
    from componentize_py_types import Err, Ok

    t = importlib.import_module("wit_world.imports.types")
    hist = importlib.import_module("wit_world.imports.history")
    st = importlib.import_module("wit_world.imports.storage_types")
    events = wasm.HistoryEvents()
    events.on_appended(7, 5, Ok(hist.Position(3, "e")))
    events.on_appended(8, None, Err(st.StorageError_QuotaExceeded()))
    entries = [hist.HistoryEntry(1, t.Message_Text("a"), 10), hist.HistoryEntry(2, t.Message_Binary(b"b"), 20)]
    events.on_history(9, 5, Ok(hist.HistoryPage("e", entries, False)))
    events.on_history(10, None, Err(st.StorageError_Unavailable("broker away")))
    assert wasm._runtime.plugin.got == [
        (StorageRequest(7), Connection(5), Position(3, "e")),
        (StorageRequest(8), None, StorageError.quota_exceeded()),
        (StorageRequest(9), Connection(5),
         HistoryPage("e", [HistoryEntry(1, "a", 10), HistoryEntry(2, b"b", 20)], False)),
        (StorageRequest(10), None, StorageError.unavailable("broker away")),
    ]


def test_storage_events_reach_the_plugin_as_the_sdks_types(glue):
    wasm, imports, _ = glue
    from componentize_py_types import Err, Ok

    stor = importlib.import_module("wit_world.imports.storage")
    st = importlib.import_module("wit_world.imports.storage_types")
    events = wasm.StorageEvents()
    events.on_read(1, None, Ok(None))
    events.on_read(2, 5, Ok(stor.StoredValue(b"v", 3, 6000)))
    events.on_read(3, None, Err(st.StorageError_Unavailable("disk")))
    events.on_written(4, 5, Ok(11))
    events.on_written(5, None, Err(st.StorageError_Conflict(0)))
    assert [(r.id, o, v) for r, o, v in wasm._runtime.plugin.got] == [
        (1, None, None),
        (2, Connection(5), StoredValue(b"v", 3, 6000)),
        (3, None, StorageError.unavailable("disk")),
        (4, Connection(5), 11),
        (5, None, StorageError.conflict(0)),
    ]


@pytest.mark.parametrize("glue", ["plugin"], indirect=True)
def test_a_component_without_the_events_says_what_to_define(glue):
    with pytest.raises(RuntimeError, match="defines neither on_appended nor on_history"):
        history.append("g", "m")
    with pytest.raises(RuntimeError, match="defines neither on_read nor on_written"):
        storage.get("k")
