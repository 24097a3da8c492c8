"""The noise of the votes: seeded generators and batch-size independent Gaussian draws.

Noise is drawn from the caller's generator in fixed chunks of `NOISE_CHUNK` images, so the
k-th noisy sample does not depend on the forward batch size. It is added in pixel space,
before the model's normalisation, without clipping (Cohen et al.).
"""

from __future__ import annotations

import torch

NOISE_CHUNK = 16


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


class NoiseStream:
    """N(0, I) images drawn in fixed chunks of NOISE_CHUNK: batch-size independent."""

    def __init__(self, shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device) -> None:
        self.shape, self.generator, self.device = shape, generator, device
        self._spare: torch.Tensor | None = None

    def _chunk(self, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randn((NOISE_CHUNK, *self.shape), generator=self.generator,
                           device=self.device, out=out)

    def take(self, size: int) -> torch.Tensor:
        """The next `size` noise images of the stream."""
        out = torch.empty((size, *self.shape), device=self.device)
        filled = 0
        if self._spare is not None:
            filled = min(len(self._spare), size)
            out[:filled].copy_(self._spare[:filled])
            self._spare = self._spare[filled:] if filled < len(self._spare) else None
        while size - filled >= NOISE_CHUNK:
            self._chunk(out[filled:filled + NOISE_CHUNK])
            filled += NOISE_CHUNK
        if filled < size:
            chunk = self._chunk()
            out[filled:].copy_(chunk[:size - filled])
            self._spare = chunk[size - filled:]
        return out


def noisy_batch(points: torch.Tensor, index: torch.Tensor, noise: torch.Tensor, sigma: float,
                channels_last: bool) -> torch.Tensor:
    """points[index] + σ·noise, written straight into the layout the model prefers."""
    base = points.expand(len(index), *points.shape[1:]) if len(points) == 1 \
        else points.index_select(0, index)
    layout = torch.channels_last if channels_last and noise.dim() == 4 else torch.contiguous_format
    out = torch.empty_like(noise, memory_format=layout)
    return torch.add(base, noise, alpha=sigma, out=out)
