"""What every attack yields and how it is driven.

An attack is a small class configured in `__init__` (its published hyper-parameters) whose
`steps(oracle, x_o, generator)` yields a frozen `AttackState` after each outer iteration. The
oracle, not the attack, counts queries and enforces the budget; when the budget runs out the
oracle raises `BudgetExhausted` and `run_steps` ends the iteration cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import torch

from rsviz.attacks.oracle import Oracle
from rsviz.errors import BudgetExhausted


@dataclass(frozen=True)
class AttackState:
    """Snapshot after one outer iteration.

    Attributes:
        iteration: outer iteration index (0 = after initialisation).
        queries: queries to the classifier so far (initialisation included).
        forward_passes: base-model forward passes so far (n per query of g_{σ,n} at most).
        x_adv: best point accepted by the criterion so far, [3,H,W] in pixel space (None before
            one is found).
        l2: ‖x_adv − x_o‖₂ (inf before one is found).
        linf: ‖x_adv − x_o‖∞ (inf before one is found).
        phase: short description of what the attack is doing.
    """

    iteration: int
    queries: int
    forward_passes: int
    x_adv: torch.Tensor | None
    l2: float
    linf: float
    phase: str

    @property
    def success(self) -> bool:
        return self.x_adv is not None


class Attack(Protocol):
    """A decision-based attack."""

    name: str

    def steps(self, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]: ...


def make_state(oracle: Oracle, iteration: int, x_adv: torch.Tensor | None, phase: str) -> AttackState:
    """Build a state with the oracle's counters and distortions measured from its x_o."""
    if x_adv is None:
        l2 = linf = float("inf")
    else:
        delta = (x_adv - oracle.x_o).flatten()
        l2, linf = float(delta.norm()), float(delta.abs().max())
    return AttackState(iteration=iteration, queries=oracle.queries,
                       forward_passes=oracle.forward_passes,
                       x_adv=None if x_adv is None else x_adv.detach().clone(),
                       l2=l2, linf=linf, phase=phase)


def run_steps(attack: Attack, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
    """Iterate an attack, ending cleanly (with a final state) when the budget is exhausted."""
    last: AttackState | None = None
    try:
        for state in attack.steps(oracle, x_o, generator):
            last = state
            yield state
    except BudgetExhausted:
        best = last.x_adv if last is not None else None
        yield make_state(oracle, (last.iteration + 1) if last else 0,
                         oracle.best_x if oracle.best_x is not None else best, "budget exhausted")
