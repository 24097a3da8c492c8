"""The forward identity of a result: which classifier arithmetic actually produced it.

A vote of f on a noisy input depends on the device (noise is drawn there), the arithmetic
(fp32, bf16, fp16) and the engine that runs the forward pass (eager torch, OpenVINO, ...).
Two results with the same parameters but different identities are different results, so the
identity is part of every cache key, vote record, CLI JSON, figure's metadata and study task.

    forward = Forward.parse("cpu/openvino-2026.4.1/fp32/torch-2.14.1")
    forward.describe(batch=4)            # "OpenVINO fp32, batch 4, CPU"
    forward.with_precision("bf16")       # eager bf16: an engine serves only its own precision

It is resolved once, when the model and its engine are set up (`rsviz.engines.forward_of`);
"auto" never reaches a key. This module imports nothing heavy (keys are built without torch).
"""

from __future__ import annotations

from dataclasses import dataclass

from rsviz.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
ENGINE_WORDS = {"eager": "eager torch", "openvino": "OpenVINO", "compile": "torch.compile",
                "eager_nchw": "eager torch (NCHW)"}
LEGACY = "legacy"  # results stored before identities existed (read back, labelled as such)


@dataclass(frozen=True)
class Forward:
    """(device, arithmetic, engine and its version, torch version) of f's forward passes."""

    device: str  # "cpu", "cuda" (the device type: noise drawn there)
    precision: str  # what actually ran: "fp32", "bf16" or "fp16"
    engine: str = "eager"  # "eager" (torch, autocast at `precision`), "openvino", "compile", ...
    engine_version: str = ""  # e.g. OpenVINO's version; "" for torch engines
    torch: str = ""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"A forward identity needs a concrete precision, not "
                              f"{self.precision!r} ({', '.join(PRECISIONS)}).")
        if "/" in "".join((self.device, self.engine, self.engine_version, self.torch)):
            raise ConfigError("A forward identity's parts cannot contain '/'.")

    def tag(self) -> str:
        """The identity as one string, e.g. 'cpu/openvino-2026.4.1/fp32/torch-2.14.1'."""
        engine = f"{self.engine}-{self.engine_version}" if self.engine_version else self.engine
        return f"{self.device}/{engine}/{self.precision}/torch-{self.torch}"

    @classmethod
    def parse(cls, tag: str) -> "Forward":
        """The inverse of `tag()`."""
        try:
            device, engine, precision, torch_part = tag.split("/")
        except ValueError:
            raise ConfigError(f"Not a forward identity: {tag!r}.") from None
        name, _, version = engine.partition("-")
        return cls(device, precision, name, version, torch_part.removeprefix("torch-"))

    def with_precision(self, precision: str) -> "Forward":
        """The identity of a run at `precision`: an engine serves only its own precision;
        any other runs eager torch under autocast (`rsviz.smoothing.batching.vote_engine`)."""
        if precision in ("auto", self.precision):
            return self
        return Forward(self.device, precision, "eager", "", self.torch)

    def describe(self, batch: int | None = None) -> str:
        """In words: 'OpenVINO fp32, batch 4, CPU'."""
        engine = ENGINE_WORDS.get(self.engine, self.engine)
        parts = [f"{engine} {self.precision}"]
        if batch:
            parts.append(f"batch {batch}")
        parts.append(self.device.upper() if self.device == "cpu" else self.device)
        return ", ".join(parts)


def describe_tag(tag: str, batch: int | None = None) -> str:
    """`Forward.describe` of a stored tag ("results stored before identities" for legacy)."""
    if not tag or tag == LEGACY:
        return "not recorded (stored before forward identities)"
    return Forward.parse(tag).describe(batch)
