"""Builds a plugin into a WebAssembly component the gateway loads:

    python -m wssgate.build APP_DIR OUTPUT.wasm [--module NAME]

APP_DIR holds the plugin's module (the one top-level ``.py`` file that is not a test, or the one `--module` names),
which defines exactly one subclass of `wssgate.Plugin`. The world the component targets follows from what that
class defines: ``on_timer`` imports the gateway's timers and exports their events, ``on_http_response`` likewise
for HTTP, ``on_appended`` or ``on_history`` for history, ``on_read`` or ``on_written`` for storage, ``init``
exports the lifecycle; a plugin without them asks for none of it. The tool writes that world
into a temporary folder next to a copy of the contract (`wit/plugin.wit`, shipped in this package), with an entry
module that hands the class to the SDK's glue, and runs componentize-py (0.25.1) on it. Packages installed in the
running Python's environment can be imported by the plugin (pure Python only).
"""

import argparse
import importlib
import importlib.metadata
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import traceback
from pathlib import Path

from ._runtime import exports_of, uses_history, uses_storage
from .plugin import Plugin

COMPONENTIZE_PY = "0.25.1"

#: Module names the component's own code uses: a plugin module by one of these names would shadow it.
RESERVED = {"wssgate", "wit_world", "componentize_py_types", "componentize_py_runtime",
            "componentize_py_async_support", "poll_loop", "wssgate_entry"}

#: Each event method and how many arguments it takes after `self`.
ARITY = {"on_connect": 2, "on_message": 3, "on_close": 3, "init": 1, "on_timer": 2, "on_http_response": 3,
         "on_appended": 3, "on_history": 3, "on_read": 3, "on_written": 3}

WIT = Path(__file__).parent / "wit" / "plugin.wit"


class BuildError(Exception):
    """A plugin that cannot be built, with what to change."""


def find_module(app_dir: Path) -> str:
    """The plugin's module: the one top-level `.py` file of `app_dir` that is not a test or a pytest conftest."""
    candidates = sorted(
        p.stem for p in app_dir.glob("*.py")
        if not (p.name.startswith("test_") or p.name.endswith("_test.py") or p.name in ("conftest.py", "setup.py"))
    )
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise BuildError(f"{app_dir} must hold exactly one plugin module (found: {found}); name it with --module")
    return candidates[0]


def find_plugin(app_dir: Path, module_name: str):
    """Imports the plugin module natively and returns its one `Plugin` subclass, checked."""
    if module_name in RESERVED or module_name.startswith("componentize_py"):
        raise BuildError(f"the plugin module cannot be named {module_name!r}: the component uses that name; rename it")
    if module_name in sys.stdlib_module_names:
        raise BuildError(f"the plugin module cannot be named {module_name!r}: it would hide Python's own module; rename it")
    sys.path.insert(0, str(app_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception:
        detail = traceback.format_exc(limit=-3)
        raise BuildError(f"importing the plugin module {module_name!r} from {app_dir} failed:\n{detail}") from None
    finally:
        sys.path.remove(str(app_dir))
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, Plugin) and c is not Plugin and c.__module__ == module_name]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise BuildError(f"{module_name}.py must define exactly one subclass of wssgate.Plugin (found: {names})")
    check_methods(classes[0])
    return classes[0]


def check_methods(cls) -> None:
    """Each event the class defines must be a plain method taking the event's arguments."""
    for name, arity in ARITY.items():
        method = getattr(cls, name, None)
        if method is None:
            continue
        where = f"{cls.__name__}.{name}"
        if not inspect.isfunction(method):
            raise BuildError(f"{where} must be a method (def {name}(self, ...)), not {type(method).__name__}")
        if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method):
            raise BuildError(f"{where} is async: events are plain methods (the gateway does not run an event loop)")
        if inspect.isgeneratorfunction(method):
            raise BuildError(f"{where} is a generator (it uses yield): events are plain methods")
        try:
            inspect.signature(method).bind(None, *([None] * arity))
        except TypeError:
            raise BuildError(f"{where} must take self and {arity} argument(s), not {inspect.signature(method)}") from None


def world(exports: dict) -> str:
    """The WIT world a plugin with these optional events targets."""
    lines = ["    include plugin;"]
    if exports["on_timer"]:
        lines += ["    import timers;", "    export timer-events;"]
    if exports["on_http_response"]:
        lines += ["    import http;", "    export http-events;"]
    if uses_history(exports):
        lines += ["    import history;", "    export history-events;"]
    if uses_storage(exports):
        lines += ["    import storage;", "    export storage-events;"]
    if exports["init"]:
        lines.append("    export lifecycle;")
    body = "\n".join(lines)
    # In the package of plugin.wit, which sits beside it (and alone declares the package).
    return f"// Generated by wssgate.build: the world of one plugin.\n\nworld generated {{\n{body}\n}}\n"


def entry(module_name: str, class_name: str, exports: dict) -> str:
    """The component's entry module: hands the plugin class to the SDK's glue and names the exported interfaces."""
    names = ["ConnectionEvents"]
    names += ["Lifecycle"] * exports["init"] + ["TimerEvents"] * exports["on_timer"]
    names += ["HttpEvents"] * exports["on_http_response"]
    names += ["HistoryEvents"] * uses_history(exports) + ["StorageEvents"] * uses_storage(exports)
    return (
        f'"""Generated by wssgate.build: the entry point of plugin {module_name}.{class_name}."""\n'
        "from wssgate import _wasm\n"
        f"import {module_name}\n\n"
        f"_wasm.serve({module_name}.{class_name})\n"
        f"from wssgate._wasm import {', '.join(names)}  # noqa: E402\n"
    )


def componentize_py() -> str:
    """The componentize-py of this environment, checked to be the pinned version."""
    try:
        version = importlib.metadata.version("componentize-py")
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"componentize-py is not installed: pip install componentize-py=={COMPONENTIZE_PY}") from None
    if version != COMPONENTIZE_PY:
        raise BuildError(f"componentize-py {version} is installed; this SDK builds with {COMPONENTIZE_PY}")
    beside = Path(sys.executable).parent / "componentize-py"
    found = str(beside) if beside.exists() else shutil.which("componentize-py")
    if found is None:
        raise BuildError("the componentize-py command is not on PATH")
    return found


def build(app_dir, output, module_name=None) -> dict:
    """Builds the plugin in `app_dir` into `output`; returns which optional events it exports."""
    app_dir = Path(app_dir).resolve()
    output = Path(output).resolve()
    if not app_dir.is_dir():
        raise BuildError(f"{app_dir} is not a folder")
    module_name = module_name or find_module(app_dir)
    cls = find_plugin(app_dir, module_name)
    exports = exports_of(cls)
    tool = componentize_py()
    sdk_root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="wssgate-build-") as tmp:
        tmp = Path(tmp)
        (tmp / "wit").mkdir()
        shutil.copy(WIT, tmp / "wit" / "plugin.wit")
        (tmp / "wit" / "generated.wit").write_text(world(exports))
        (tmp / "wssgate_entry.py").write_text(entry(module_name, cls.__name__, exports))
        output.parent.mkdir(parents=True, exist_ok=True)
        command = [tool, "-q", "-d", str(tmp / "wit"), "-w", "generated", "componentize",
                   "-p", str(tmp), "-p", str(app_dir), "-p", str(sdk_root),
                   "-p", sysconfig.get_paths()["purelib"], "wssgate_entry", "-o", str(output)]
        # The Python path above is the whole of it: no site-packages of another environment.
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"componentize-py failed:\n{done.stderr or done.stdout}")
    output.write_bytes(with_language(output.read_bytes(), "python"))
    return exports


def with_language(component: bytes, language: str) -> bytes:
    """The component with a custom section `wssgate-language` saying `language`, right after its 8-byte header: the
    gateway reads it for what differs by language. A custom section is id 0, its size (LEB128), then its name
    (LEB128 length and bytes) and its contents."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    name = b"wssgate-language"
    contents = leb(len(name)) + name + language.encode()
    return component[:8] + b"\x00" + leb(len(contents)) + contents + component[8:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wssgate.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("app_dir", help="the folder holding the plugin module")
    parser.add_argument("output", help="the component to write, e.g. dist/my-plugin.wasm")
    parser.add_argument("--module", help="the plugin module's name, when the folder holds several")
    args = parser.parse_args(argv)
    try:
        exports = build(args.app_dir, args.output, args.module)
    except BuildError as e:
        print(f"wssgate.build: error: {e}", file=sys.stderr)
        return 1
    optional = [name for name, present in exports.items() if present]
    print(f"built {args.output} (optional events: {', '.join(optional) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
