"""Device choice, autocast and batch-size defaults. Nothing here hard-codes CUDA.

The arithmetic a result was computed in is settled by the engine decision
(`rsviz.engines.precision_of`, `rsviz.identity`), not by CPU flags here."""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Iterator

import torch

# Input values (3·160·160) from which a forward pass counts as large: CPU batches are sized for
# it, and forward engines are measured for it (below it eager fp32 is fast enough).
LARGE_INPUT = 3 * 160 * 160


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """Human-readable description, e.g. 'CPU (2 threads)' or 'cuda:0 — NVIDIA H100'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} — {torch.cuda.get_device_name(index)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # pragma: no cover - very old torch
        return False
    if "AVX512" not in capability and "AMX" not in capability:
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Autocast context for a concrete precision ("fp32" is a no-op)."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def physical_cores(sysfs: str = "/sys/devices/system/cpu") -> int:
    """Physical cores among the CPUs this process may run on (its affinity mask).

    Hyperthread siblings share one core (`topology/core_cpus_list`), so a 4-core machine with
    SMT reports 8 logical CPUs here counted as 4. Falls back to the logical count when sysfs
    does not say (containers, other OSes)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
    groups = set()
    for cpu in cpus:
        try:
            with open(f"{sysfs}/cpu{cpu}/topology/core_cpus_list", encoding="utf-8") as handle:
                groups.add(handle.read().strip())
        except OSError:
            return max(1, len(cpus))
    return max(1, len(groups))


@functools.lru_cache(maxsize=1)
def tcmalloc_loaded() -> bool:
    """True when tcmalloc is preloaded (it cannot change during the process)."""
    from rsviz.allocator import tcmalloc_in_process

    return tcmalloc_in_process()


def default_batch_size(device: torch.device, input_numel: int) -> int:
    """A forward batch size that keeps the device busy without exhausting memory.

    On CPU with glibc's allocator, 224-pixel batches above ~32 get slower (measured on an
    AVX512-BF16 machine: Lite0 bf16 139 img/s at 16, 65 at 128; docs/smoothing.md); with tcmalloc preloaded 64 is as good as any.
    Tiny inputs get bigger batches. On CUDA the batch is sized from free memory.
    `rsviz.smoothing.BatchTuner` refines this by measuring.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        per_image = input_numel * 4 * 60  # activations of a ResNet50-sized model, generous
        return int(max(16, min(1024, free // 2 // max(per_image, 1))))
    if input_numel >= LARGE_INPUT:
        return 64 if tcmalloc_loaded() else 16
    return int(min(4096, max(64, (3 * 224 * 224 * 64) // max(input_numel, 1))))
