"""tcmalloc for the command line, as `make run` has it for the app (imports no torch).

With glibc's malloc, CPU forwards of large batches spend much of their time allocating; with
tcmalloc preloaded the same batches run up to 3× faster. `make run` preloads it for the app;
`python -m rsviz` calls `reexec_with_tcmalloc()` first, which restarts the interpreter once with
LD_PRELOAD set when the library is installed and not yet loaded, and OpenVINO is not installed:
OpenVINO aborts when tcmalloc is preloaded, and it is faster than eager torch with tcmalloc.
RSVIZ_TCMALLOC=0 turns it off.

The rule is written once, here: `make run` and `.ci/run` ask this module from the shell,

    python -m rsviz.allocator --preload   # the library `make run` preloads (empty: none)
    python -m rsviz.allocator --path      # the installed library (exit status 1: none)
"""

from __future__ import annotations

import os
import sys

LIBRARIES = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
             "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
             "/usr/lib64/libtcmalloc_minimal.so.4", "/usr/lib/libtcmalloc_minimal.so.4")
GUARD = "RSVIZ_TCMALLOC_REEXEC"  # set in the restarted process: never restart twice


def find_tcmalloc() -> str | None:
    """Path of libtcmalloc_minimal on this system, or None."""
    return next((path for path in LIBRARIES if os.path.exists(path)), None)


def openvino_installed() -> bool:
    """OpenVINO aborts with tcmalloc preloaded ("free(): invalid pointer" when it compiles a
    model, measured with openvino 2026.4.1), and it is the faster engine: no tcmalloc then."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def tcmalloc_in_process() -> bool:
    """True when tcmalloc is loaded in this process (`rsviz.device.tcmalloc_loaded` caches it)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as handle:
            return "tcmalloc" in handle.read()
    except OSError:
        return False


def preload_library(environ: dict[str, str]) -> str | None:
    """The tcmalloc library to preload, or None: not installed, RSVIZ_TCMALLOC=0 in `environ`,
    or OpenVINO installed."""
    if environ.get("RSVIZ_TCMALLOC", "1") == "0" or openvino_installed():
        return None
    return find_tcmalloc()


def reexec_plan(argv: list[str], environ: dict[str, str]) -> tuple[list[str], dict] | None:
    """(command, environment) of the restart with tcmalloc preloaded, or None to keep going."""
    if environ.get(GUARD):
        return None
    library = preload_library(environ)
    if library is None or library in environ.get("LD_PRELOAD", "") or tcmalloc_in_process():
        return None
    env = dict(environ)
    env[GUARD] = "1"
    env["LD_PRELOAD"] = " ".join(p for p in (library, environ.get("LD_PRELOAD", "")) if p)
    if argv and argv[0].endswith("__main__.py"):
        command = [sys.executable, "-m", "rsviz", *argv[1:]]
    else:
        command = [sys.executable, *argv]
    return command, env


def reexec_with_tcmalloc() -> None:
    """Restart this process with tcmalloc preloaded when that helps (see module docstring)."""
    plan = reexec_plan(sys.argv, dict(os.environ))
    if plan is None:
        return
    command, env = plan
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    except OSError:  # cannot exec: carry on with glibc malloc
        return


def main(argv: list[str] | None = None) -> int:
    """`--path`: print the installed library (exit status 1 when there is none); `--preload`:
    print the library to preload, or nothing."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rsviz.allocator", description=main.__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--path", action="store_true", help="the installed libtcmalloc_minimal")
    group.add_argument("--preload", action="store_true", help="the library to preload, if any")
    args = parser.parse_args(argv)
    library = find_tcmalloc() if args.path else preload_library(dict(os.environ))
    if library:
        print(library)
    return 0 if library or args.preload else 1


if __name__ == "__main__":
    sys.exit(main())
