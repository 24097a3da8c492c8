"""What every attack yields and how it is driven.

An attack is a small class configured in `__init__` (its published hyper-parameters) whose
`steps(oracle, x_o, generator)` yields a frozen `AttackState` after each outer iteration. The
oracle, not the attack, counts queries and enforces the budget; when the budget runs out the
oracle raises `BudgetExhausted` and `run_steps` ends the iteration cleanly.

The best point of a state is the closest point to x_o that the criterion accepted so far (the
oracle keeps it): it is always an accepted point and its distortion never increases, whatever
the attack's own iterate does against a random classifier.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch

from rsviz.attacks.oracle import Oracle
from rsviz.errors import BudgetExhausted

MAX_IDLE_STATES = 50  # states in a row without a new query: the attack is stuck, stop it


class Stalled(Exception):
    """Thrown into an attack's generator by `run_steps` when it stopped querying."""


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
        current_l2: ‖x − x_o‖₂ of the attack's own iterate x (inf when it has none); it may
            exceed `l2`, and against g_{σ,n} it may even go up.
    """

    iteration: int
    queries: int
    forward_passes: int
    x_adv: torch.Tensor | None
    l2: float
    linf: float
    phase: str
    current_l2: float = float("inf")

    @property
    def success(self) -> bool:
        return self.x_adv is not None


class Attack(Protocol):
    """A decision-based attack."""

    name: str

    def steps(self, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]: ...


def signature_defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of `cls.__init__`, the one place an attack's hyper-parameters are
    written: a subclass whose `__init__` passes `**kwargs` on gets its base classes' too (its
    own win). Parameters without a default (e.g. a wrapped attack) are left out."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        for p in params:
            if p.default is not p.empty:
                found.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return found


def distortions(x: torch.Tensor, x_o: torch.Tensor) -> tuple[float, float]:
    """(L2, L∞) norms of x − x_o."""
    delta = (x.to(x_o.device, torch.float32) - x_o).flatten()
    return float(delta.norm()), float(delta.abs().max())


def make_state(oracle: Oracle, iteration: int, x_adv: torch.Tensor | None,
               phase: str) -> AttackState:
    """State with the oracle's counters and its best accepted point.

    `x_adv` is the attack's own current iterate: only its distance is recorded
    (`current_l2`); the reported best point is `oracle.best_x`, the closest point the
    criterion accepted, so it is always adversarial by the criterion and never gets worse.
    """
    best = oracle.best_x
    l2, linf = distortions(best, oracle.x_o) if best is not None else (float("inf"),) * 2
    current = distortions(x_adv, oracle.x_o)[0] if x_adv is not None else float("inf")
    return AttackState(iteration=iteration, queries=oracle.queries,
                       forward_passes=oracle.forward_passes,
                       x_adv=None if best is None else best.detach().clone(),
                       l2=l2, linf=linf, phase=phase, current_l2=current)


def run_steps(attack: Attack, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
    """Iterate an attack, ending cleanly (with a final state) when the budget is exhausted.

    Also stops an attack that yields `MAX_IDLE_STATES` states in a row without querying
    (a guard against loops that make no progress): `Stalled` is thrown into its generator, so
    a wrapper can still end properly (the RS-aware variants run their final check and push
    and yield their final state). Only the first state yielded after `Stalled` is passed on,
    then the generator is closed; an attack that does not catch it just stops.
    """
    last: AttackState | None = None
    idle = 0
    steps = attack.steps(oracle, x_o, generator)
    try:
        for state in steps:
            idle = idle + 1 if last is not None and state.queries == last.queries else 0
            last = state
            yield state
            if idle >= MAX_IDLE_STATES:
                break
        else:
            return
        if not hasattr(steps, "throw"):  # a plain iterator, not a generator: just stop
            return
        try:
            final = steps.throw(Stalled(f"no query in {MAX_IDLE_STATES} states"))
        except (Stalled, StopIteration):
            return
        yield final
        steps.close()
    except BudgetExhausted:
        yield make_state(oracle, (last.iteration + 1) if last else 0, None, "budget exhausted")
