"""Disk cache of expensive results (diskcache under cache/, RSVIZ_CACHE_DIR overrides).

Keys are stable hashes of (kind, version, model id, image hash, config dataclass): each view
passes its own VERSION (rsviz/views/, docs/architecture.md). A corrupt or unreadable entry
counts as a miss and is recomputed; a corrupt database (cache.db) is moved aside and rebuilt
empty at once; a full disk degrades to "not cached" with a warning, never to a lost result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

import diskcache

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_SIZE_LIMIT = 4 * 2**30
_MISSING = object()


def cache_dir() -> Path:
    """Folder of the disk cache: $RSVIZ_CACHE_DIR, else cache/ beside the package."""
    env = os.environ.get("RSVIZ_CACHE_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "cache"


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **{
            f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return repr(value)


def make_key(kind: str, *parts: Any) -> str:
    """Stable hash of a kind and any JSON-able parts (dataclasses included). Callers put the
    version of what they compute among the parts (a view's VERSION)."""
    payload = json.dumps([kind, _canonical(list(parts))], sort_keys=True)
    return f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


class DiskCache:
    """A thin, failure-tolerant wrapper around diskcache.Cache."""

    def __init__(self, directory: str | Path | None = None,
                 size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory) if directory else cache_dir()
        self.size_limit = size_limit
        self._cache: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self.last_warning: str | None = None
        self.notice: str | None = None  # set when the database was rebuilt, for the app to say

    def _open(self) -> diskcache.Cache | None:
        with self._lock:
            if self._cache is None:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._cache = self._connect()
                except Exception as exc:  # noqa: BLE001 - unusable folder: run without a cache
                    if _corrupt(exc):
                        return self._rebuild(exc)
                    self.last_warning = f"Disk cache unavailable ({exc}); results are not saved."
                    log.warning(self.last_warning)
                    return None
            return self._cache

    def _connect(self) -> diskcache.Cache:
        return diskcache.Cache(str(self.directory), size_limit=self.size_limit)

    def _rebuild(self, error: BaseException) -> diskcache.Cache | None:
        """Move the corrupt database aside (cache.db -> cache.db.corrupt) and open an empty one.
        Called with the lock held."""
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception:  # noqa: BLE001 - closing a broken database
                pass
            self._cache = None
        try:
            for suffix in ("", "-wal", "-shm"):
                db = self.directory / f"cache.db{suffix}"
                if db.exists():
                    db.replace(db.with_name(db.name + ".corrupt"))
            self._cache = self._connect()
        except Exception as exc:  # noqa: BLE001 - cannot rebuild: run without a cache
            self.last_warning = f"Disk cache unavailable ({exc}); results are not saved."
            log.warning(self.last_warning)
            return None
        log.warning("disk cache %s/cache.db was corrupt (%s): moved it to cache.db.corrupt and "
                    "rebuilt the cache", self.directory, error)
        self.notice = ("The disk cache was corrupt: moved it aside and rebuilt the cache "
                       "(earlier results are computed again).")
        return self._cache

    def _heal(self, error: BaseException) -> bool:
        """Rebuild after a database error; True when the cache was rebuilt."""
        if not _corrupt(error):
            return False
        with self._lock:
            return self._rebuild(error) is not None

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default` when absent or unreadable."""
        cache = self._open()
        if cache is None:
            return default
        try:
            value = cache.get(key, default=_MISSING)
        except Exception as exc:  # noqa: BLE001 - corrupt entry: drop it, recompute
            if self._heal(exc):
                return default
            log.warning("cache entry %s unreadable (%s); recomputing", key, exc)
            self.delete(key)
            return default
        return default if value is _MISSING else value

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def set(self, key: str, value: Any) -> bool:
        """Store a value; False (with `last_warning` set) when the disk refuses it."""
        for attempt in range(2):
            cache = self._open()
            if cache is None:
                return False
            try:
                cache.set(key, value)
                return True
            except Exception as exc:  # noqa: BLE001 - full disk, permissions: keep it in memory
                if attempt == 0 and self._heal(exc):
                    continue
                self.last_warning = f"Could not save the result to the disk cache ({exc})."
                log.warning(self.last_warning)
                return False
        return False

    def delete(self, key: str) -> None:
        cache = self._open()
        if cache is not None:
            try:
                cache.delete(key)
            except Exception:  # noqa: BLE001
                pass

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        """Return the cached value for key, computing and storing it on a miss."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        value = compute()
        self.set(key, value)
        return value

    def clear(self) -> None:
        cache = self._open()
        if cache is not None:
            cache.clear()

    def volume(self) -> int:
        """Bytes used on disk."""
        cache = self._open()
        return int(cache.volume()) if cache is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None


def _corrupt(error: BaseException) -> bool:
    """A database that is not one or is malformed (not a locked or read-only one)."""
    name = getattr(error, "sqlite_errorname", "") or ""
    return isinstance(error, sqlite3.DatabaseError) and name.startswith(
        ("SQLITE_CORRUPT", "SQLITE_NOTADB"))


_default: DiskCache | None = None
_default_lock = threading.Lock()


def default_cache() -> DiskCache:
    """The process-wide cache at cache_dir() (re-created when RSVIZ_CACHE_DIR changes)."""
    global _default
    with _default_lock:
        if _default is None or _default.directory != cache_dir():
            _default = DiskCache()
        return _default
