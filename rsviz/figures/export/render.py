"""Static export (PNG, SVG, PDF) through kaleido 1.x and the system Chromium.

One browser is kept alive per process (`_Renderer`): the first export pays the start (~2 s),
later ones ~0.2 s. A failed render disables static export for a while, with one sentence that
says why (`static_export_available`).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import threading
import time
from typing import Any

import plotly.graph_objects as go

from rsviz.figures.export.bundle import ExportError


STATIC_FORMATS = ("png", "svg", "pdf")
RENDER_TIMEOUT_S = 60.0
FAILURE_MEMORY_S = 120.0  # a failed render disables static export this long, then retries
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium_path() -> str | None:
    """The browser kaleido drives: $RSVIZ_CHROMIUM, $BROWSER_PATH, else chromium on PATH."""
    for var in ("RSVIZ_CHROMIUM", "BROWSER_PATH"):
        if os.environ.get(var):
            path = os.environ[var]
            return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    for name in _BROWSER_NAMES:
        if found := shutil.which(name):
            return found
    return next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if os.access(p, os.X_OK)), None)


def static_export_available() -> tuple[bool, str]:
    """Whether PNG/SVG/PDF export can work here, and why not (a sentence for the user)."""
    if os.environ.get("RSVIZ_STATIC_EXPORT", "1") == "0":
        return False, "Static export is switched off (RSVIZ_STATIC_EXPORT=0)."
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False, "The kaleido package is not installed (pip install kaleido)."
    path = chromium_path()
    if path is None:
        where = os.environ.get("RSVIZ_CHROMIUM") or os.environ.get("BROWSER_PATH")
        detail = f"no browser at {where}" if where else "Chromium is not installed"
        return False, (f"PNG/SVG/PDF export needs a Chromium browser ({detail}). Install the "
                       "Debian package 'chromium' or set RSVIZ_CHROMIUM=/path/to/chromium.")
    if (_RENDERER.failure and _RENDERER.failure_path == path
            and time.monotonic() - _RENDERER.failure_at < FAILURE_MEMORY_S):
        return False, f"Chromium failed to render: {_RENDERER.failure}"
    return True, f"Chromium at {path}"


class _Renderer:
    """One headless Chromium (kaleido) on its own event-loop thread, shared by all callers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido: Any = None
        self._path: str | None = None
        self.failure: str | None = None
        self.failure_path: str | None = None
        self.failure_at = 0.0
        self.starts = 0

    def _start(self, path: str) -> None:
        import kaleido

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True, name="rsviz-kaleido").start()

        async def open_browser() -> Any:
            k = kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, path=path)
            await k.open()
            return k

        try:
            self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(60)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            raise
        self._loop, self._path = loop, path
        self.starts += 1

    def close(self) -> None:
        with self._lock:
            loop, k, self._loop, self._kaleido = self._loop, self._kaleido, None, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(k.close(), loop).result(10)
        except Exception:  # noqa: BLE001 - closing a browser that already died
            pass
        loop.call_soon_threadsafe(loop.stop)

    def render(self, fig_dict: dict, opts: dict, path: str) -> bytes:
        for attempt in range(2):  # a crashed browser is restarted once
            with self._lock:
                if self._loop is None or self._path != path:
                    if self._loop is not None:
                        self._lock.release()
                        try:
                            self.close()
                        finally:
                            self._lock.acquire()
                    self._start(path)
                loop, k = self._loop, self._kaleido
            try:
                future = asyncio.run_coroutine_threadsafe(k.calc_fig(fig_dict, opts=opts), loop)
                return future.result(RENDER_TIMEOUT_S + 10)
            except Exception:
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


_RENDERER = _Renderer()
atexit.register(_RENDERER.close)


def render_static(fig: go.Figure, fmt: str, width: int, height: int, scale: float = 1.0) -> bytes:
    """Raw PNG/SVG/PDF bytes of `fig` from Chromium (no metadata); ExportError if impossible.

    With RSVIZ_KALEIDO_SERVER=0 every call starts its own browser (kaleido's one-shot path).
    """
    if fmt not in STATIC_FORMATS:
        raise ExportError(f"Unknown static format {fmt!r}; choose png, svg or pdf.")
    ok, reason = static_export_available()
    if not ok:
        raise ExportError(reason)
    path = chromium_path()
    opts = dict(format=fmt, width=int(width), height=int(height), scale=float(scale))
    fig_dict = json.loads(fig.to_json())
    try:
        if os.environ.get("RSVIZ_KALEIDO_SERVER", "1") == "0":
            import kaleido

            out = kaleido.calc_fig_sync(fig_dict, opts=opts,
                                        kopts=dict(mathjax=False, path=path))
        else:
            out = _RENDERER.render(fig_dict, opts, path)
    except Exception as exc:  # noqa: BLE001 - any browser failure becomes one clear message
        text = str(exc.args[0]) if exc.args else str(exc)
        first = (text.splitlines() or [""])[0][:200]
        _RENDERER.failure, _RENDERER.failure_path = f"{type(exc).__name__}: {first}", path
        _RENDERER.failure_at = time.monotonic()
        raise ExportError(f"Static export failed in Chromium ({type(exc).__name__}: {first}).") \
            from exc
    _RENDERER.failure = None
    return out if isinstance(out, bytes) else bytes(out)
