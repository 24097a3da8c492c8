"""Forward engines for the no-grad forward passes of the vote sampler.

An engine computes float32 logits of f on a batch of pixel-space images, exactly like
`Classifier.__call__` would, but possibly faster: torch eager in a chosen memory layout and
precision, `torch.compile`, or OpenVINO. Gradients and attacks against f never use an engine;
they keep the fp32 torch module. `rsviz.engines.select` decides which engine to use by
measuring speed and label agreement with eager fp32.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from rsviz.device import autocast, cpu_supports_bf16, physical_cores
from rsviz.engines.attached import detach
from rsviz.models import Classifier


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (package missing, wrong device, conversion failed)."""


class Engine:
    """Eager torch fp32 as rsviz has always run it (channels_last for convnets).

    Subclasses override `prepare` and `logits`. `precision` names the arithmetic ("fp32",
    "bf16", "fp16"); `batch_size` is set by the selection once measured. `identity_name` and
    `version` go into the forward identity of every result (`rsviz.identity.Forward`).
    """

    name = "eager"
    precision = "fp32"
    version = ""  # the engine's own version where it is not torch's
    layout = "channels_last"
    in_auto = True  # False: only used when forced (e.g. torch.compile's minute-long compile)

    def __init__(self, model: Classifier, input_shape: tuple[int, ...]) -> None:
        self.model = model
        self.input_shape = tuple(input_shape)
        self.batch_size: int | None = None
        self.net: torch.nn.Module = model

    @classmethod
    def unavailable(cls, device: torch.device) -> str | None:
        """Why this engine cannot run on `device` (None when it can)."""
        return None

    @property
    def identity_name(self) -> str:
        """The engine's name in a forward identity: runs of the same arithmetic share it."""
        return self.name

    def _is_conv(self) -> bool:
        return any(isinstance(m, torch.nn.Conv2d) for m in self.model.modules())

    def _copy(self) -> torch.nn.Module:
        """A copy of the model without its attached engine (OpenVINO objects do not copy)."""
        saved = detach(self.model)
        try:
            return copy.deepcopy(self.model)
        finally:
            self.model.__dict__.update(saved)

    def prepare(self) -> None:
        """One-time setup (copies, conversion, compilation)."""
        if self.layout == "channels_last" and self._is_conv():
            self.net = self._copy().to(memory_format=torch.channels_last)
        elif self.layout == "nchw":
            self.net = self._copy().to(memory_format=torch.contiguous_format)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.model.device, dtype=torch.float32)
        if x.dim() == 4 and self.layout == "channels_last" and self._is_conv():
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits of f on the batch x (no gradients)."""
        with torch.inference_mode(), autocast(self.model.device, self.precision):
            return self.net(self._input(x)).float()


class EagerNCHW(Engine):
    """Eager torch fp32 in the default NCHW layout (the baseline of the benchmarks)."""

    name = "eager_nchw"
    layout = "nchw"
    in_auto = False


class EagerLowPrecision(Engine):
    """Eager channels_last under autocast bf16 (CPU/GPU) or fp16 (GPU), only where native."""

    def __init__(self, model: Classifier, input_shape: tuple[int, ...], precision: str) -> None:
        super().__init__(model, input_shape)
        self.precision = precision
        self.name = f"eager_{precision}"

    @property
    def identity_name(self) -> str:
        """"eager": the same arithmetic as the sampler's own eager path under autocast."""
        return "eager"

    @classmethod
    def unavailable_for(cls, device: torch.device, precision: str) -> str | None:
        if device.type == "cuda":
            if precision == "bf16" and not torch.cuda.is_bf16_supported():
                return "this GPU has no native bf16"
            return None
        if precision == "bf16" and cpu_supports_bf16():
            return None
        return f"no native {precision} matrix instructions on this CPU"


class Compiled(Engine):
    """`torch.compile` of the channels_last model: about a minute of compilation per batch
    shape on a 2-core CPU, so it is only used when forced."""

    name = "compile"
    in_auto = False

    def prepare(self) -> None:
        super().prepare()
        self.net = torch.compile(self.net, dynamic=False)


def _ir_path(model: Classifier, input_shape: tuple[int, ...], folder: Path) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.info.model_id)[:80]
    digest = hashlib.sha1(model.info.model_id.encode()).hexdigest()[:8]
    shape = "x".join(str(s) for s in input_shape)
    return folder / f"{safe}-{digest}-{shape}.xml"


def openvino_config(threads: int | None = None) -> dict:
    """OpenVINO CPU settings that keep to this process's torch thread budget.

    Left to itself OpenVINO takes every core of the machine and pins its threads: in a Ray
    worker or a background job given one thread, it would still start one stream per core, and
    two such processes pinned their streams to the same cores. So: as many threads as torch
    has (`torch.get_num_threads()`, which a Ray worker sets to its CPU share), and pinning only
    when the process owns every physical core it may run on (torch's default on a machine with
    hyperthreads is one thread per physical core, so comparing to logical CPUs never pinned)."""
    threads = threads or torch.get_num_threads()
    cores = physical_cores()
    return {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": threads >= cores}


class OpenVINO(Engine):
    """OpenVINO CPU inference, fp32 (THROUGHPUT hint, one async request per stream).

    The torch model is converted once (seconds) and the OpenVINO IR is kept in
    `cache/engines/` so later processes only compile it (under a second).
    """

    name = "openvino"
    layout = "nchw"
    ir_folder: Path | None = None  # set by the selection (cache/engines/openvino)

    @property
    def version(self) -> str:  # type: ignore[override]
        import openvino
        return openvino.__version__.split("-")[0]

    @classmethod
    def unavailable(cls, device: torch.device) -> str | None:
        if device.type != "cpu":
            return "OpenVINO is used on CPU only"
        try:
            import openvino  # noqa: F401
        except ImportError:
            return "the openvino package is not installed"
        from rsviz.device import tcmalloc_loaded
        if tcmalloc_loaded():
            return "OpenVINO aborts with tcmalloc preloaded (LD_PRELOAD); start without it"
        return None

    def prepare(self) -> None:
        """Compile the cached IR, or convert the model and cache its IR with a checksum. A
        cached IR that fails its checksum or does not compile is moved aside (`*.corrupt`,
        logged) and rebuilt at once."""
        import logging

        import openvino as ov

        core = ov.Core()
        path = _ir_path(self.model, self.input_shape, self.ir_folder) if self.ir_folder else None
        files = [path, path.with_suffix(".bin"), path.with_suffix(".sha256")] if path else []

        def checksum() -> str:
            digest = hashlib.sha256()
            for part in files[:2]:
                digest.update(part.read_bytes())
            return digest.hexdigest()

        self.compiled = None
        if path is not None and path.exists():
            try:
                if not files[2].exists() or files[2].read_text().strip() != checksum():
                    raise ValueError("no checksum, or not the one it was saved with")
                self.compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                                   openvino_config())
            except Exception as error:  # noqa: BLE001 - a damaged cache is rebuilt, not fatal
                for part in files:
                    if part.exists():
                        part.replace(part.with_name(part.name + ".corrupt"))
                logging.getLogger(__name__).warning(
                    "OpenVINO IR %s is unusable (%s): moved it aside (*.corrupt) and rebuilt the "
                    "cache", path, error)
        try:
            if self.compiled is None:
                example = torch.rand((1, *self.input_shape))
                with warnings.catch_warnings():  # torch.jit.trace deprecation notices
                    warnings.simplefilter("ignore")
                    ir = ov.convert_model(self.model, example_input=example,
                                          input=[(-1, *self.input_shape)])
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ov.save_model(ir, str(path), compress_to_fp16=False)
                    files[2].write_text(checksum())
                self.compiled = core.compile_model(ir, "CPU", openvino_config())
        except Exception as error:  # conversion of an unusual model: say why, fall back
            raise EngineUnavailable(f"OpenVINO could not convert the model: {error}") from error
        self.requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
        self.queue.set_callback(self._collect)
        self._out: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def _collect(self, request, index: int) -> None:
        self._out[index] = request.get_output_tensor(0).data.copy()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits through the infer queue; one call at a time (its output dict and queue are
        shared, and the app's job worker and page threads share the attached engine)."""
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        chunks = np.array_split(array, min(self.requests, len(array)))
        with self._lock:
            self._out = {}
            for index, chunk in enumerate(chunks):
                self.queue.start_async({0: chunk}, userdata=index)
            self.queue.wait_all()
            return torch.from_numpy(np.concatenate([self._out[i] for i in range(len(chunks))]))


def candidates(model: Classifier, input_shape: tuple[int, ...]) -> list[Engine]:
    """Every engine worth trying for this model and device, eager fp32 first."""
    device = model.device
    found: list[Engine] = [Engine(model, input_shape), EagerNCHW(model, input_shape)]
    for precision in ("bf16", "fp16"):
        if EagerLowPrecision.unavailable_for(device, precision) is None:
            found.append(EagerLowPrecision(model, input_shape, precision))
    found += [Compiled(model, input_shape), OpenVINO(model, input_shape)]
    return found



