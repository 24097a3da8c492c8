"""Disk cache: stable keys, hits survive a restart, corrupt entries and full disks are not fatal."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np
import pytest

from rsviz.cache import DiskCache, default_cache, make_key
from rsviz.config import SmoothingConfig


def test_keys_are_stable_and_sensitive():
    a = make_key("votes", "lite0", "abc", SmoothingConfig(sigma=0.25))
    assert a == make_key("votes", "lite0", "abc", SmoothingConfig(sigma=0.25))
    assert a != make_key("votes", "lite0", "abc", SmoothingConfig(sigma=0.26))
    assert a != make_key("votes", "lite0", "abd", SmoothingConfig(sigma=0.25))
    assert a != make_key("slice", "lite0", "abc", SmoothingConfig(sigma=0.25))
    assert make_key("k", {"b": 1, "a": 2}) == make_key("k", {"a": 2, "b": 1})


def test_hit_miss_and_restart(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"array": np.arange(5)}

    cache = DiskCache(tmp_path / "c")
    first = cache.get_or_compute("k", compute)
    second = cache.get_or_compute("k", compute)
    assert len(calls) == 1 and np.array_equal(first["array"], second["array"])
    cache.close()
    reopened = DiskCache(tmp_path / "c")  # a server restart
    assert "k" in reopened and np.array_equal(reopened.get("k")["array"], np.arange(5))


@dataclass
class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("boom")


def test_corrupt_entry_is_recomputed(tmp_path):
    cache = DiskCache(tmp_path / "c")
    cache.set("k", np.arange(10_000))  # large enough to be stored as a file
    cache.close()
    for path in (tmp_path / "c").rglob("*.val"):
        path.write_bytes(b"garbage")
    cache = DiskCache(tmp_path / "c")
    assert cache.get("k") is None
    assert cache.get_or_compute("k", lambda: 42) == 42


def test_corrupt_database_is_moved_aside_and_rebuilt(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "cache.db").write_bytes(b"this is not sqlite" * 100)
    cache = DiskCache(folder)
    assert cache.get("k") is None
    assert cache.get_or_compute("k", lambda: 7) == 7
    assert cache.get("k") == 7  # stored in the rebuilt database
    assert (folder / "cache.db.corrupt").read_bytes() == b"this is not sqlite" * 100
    assert "rebuilt the cache" in cache.notice and cache.last_warning is None


def test_full_disk_keeps_the_result(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path / "c")
    cache._open()

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cache._cache, "set", full)
    assert cache.get_or_compute("k", lambda: "result") == "result"
    assert "disk" in cache.last_warning


def test_size_limit_evicts(tmp_path):
    cache = DiskCache(tmp_path / "c", size_limit=200_000)
    for i in range(20):
        cache.set(f"k{i}", np.zeros(10_000, dtype=np.uint8) + i)
    assert cache.volume() < 400_000
    assert cache.get("k19") is not None


def test_default_cache_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RSVIZ_CACHE_DIR", str(tmp_path / "other"))
    assert default_cache().directory == tmp_path / "other"
