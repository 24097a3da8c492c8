"""`rsviz theory --n N --pa P`: the paper's eq. (5) threshold (exact and as printed) and eq. (6)."""

from __future__ import annotations

import argparse

NAME = "theory"
HELP = "eq. (5) π0 threshold for a level-P_a adversarial example and eq. (6) extra distance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, required=True, help="votes per query of g_{σ,n}")
    parser.add_argument("--pa", type=float, required=True, help="level P_a of eq. (4)")
    parser.add_argument("--sigma", type=float, default=None, help="σ, for the eq. (6) distance")
    parser.add_argument("--p-lower", type=float, default=None,
                        help="p̲_A at x_o, for R(x_o, σ) and the eq. (6) minimal distance")


def run(args: argparse.Namespace) -> dict:
    from rsviz.config import check_sigma
    from rsviz.theory import theory_summary

    if args.sigma is not None:
        check_sigma(args.sigma)
    out = theory_summary(args.n, args.pa, args.sigma,
                         args.p_lower if args.sigma is not None else None)
    out["notes"] = {
        "threshold_exact": "largest π0(x_a) with P[strict majority of n votes wrong] ≥ P_a, "
                           "from the binomial tail, k = ⌊n/2⌋ + 1",
        "threshold_random_tie": "same with rsviz's rule: a tie of the n votes counts ½",
        "threshold_paper": "paper's closed form 1 − I^{-1}_{P_a}(ñ, ñ), ñ = 1 + ⌊n/2⌋: exact "
                           "for odd n, the threshold of n + 1 votes for even n",
        "threshold_paper_fr": "French version, ñ = 1 + ⌈n/2⌉: the threshold of n + 2 votes for "
                              "odd n",
        "shortcut_wrong_votes": "paper's experimental shortcut: ⌈n·P_a⌉ wrong votes",
    }
    if args.sigma is not None:
        out["notes"]["extra_distance"] = "eq. (6): σ Φ^{-1}(1 − threshold_exact), added to R"
    return out


def render(result: dict) -> str:
    lines = [f"n = {result['n']}, P_a = {result['pa']}",
             f"  π0 threshold, exact (strict majority):   {result['threshold_exact']:.6f}",
             f"  π0 threshold, random tie-break (rsviz):  {result['threshold_random_tie']:.6f}",
             f"  π0 threshold, paper eq. (5), ⌊n/2⌋:      {result['threshold_paper']:.6f}",
             f"  π0 threshold, paper (French), ⌈n/2⌉:     {result['threshold_paper_fr']:.6f}",
             f"  shortcut: ⌈n·P_a⌉ = {result['shortcut_wrong_votes']} wrong votes of {result['n']}"]
    if "extra_distance" in result:
        lines.append(f"  eq. (6) extra distance at σ = {result['sigma']}: "
                     f"{result['extra_distance']:.4f} (paper's form {result['extra_distance_paper']:.4f})")
    if "radius" in result:
        lines.append(f"  R(x_o, σ) = {result['radius']:.4f}; ‖x_o − x_a‖ ≥ {result['min_distance']:.4f}")
    return "\n".join(lines)
