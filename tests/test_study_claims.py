"""The claim checks on hand-made results: each verdict where the numbers put it."""

from __future__ import annotations

import numpy as np

from rsviz.study.claims import claims, markdown, paired_ratio


def results(gain: float, n_gain: float, spread: float, images: int = 20, seed: int = 0):
    """f, g_{0.05,1} and g_{0.05,10} (P_a 0.5 and 0.8) attacked by hsja and rays: g's L2 is
    f's × gain (× n_gain more at n = 1), RayS is not affected; plus certificates."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(images):
        base = 10 + 5 * rng.random()
        for attack in ("hsja", "rays"):
            for sigma, n, p_a in ((None, None, None), (0.05, 1, 0.5), (0.05, 10, 0.5),
                                  (0.05, 10, 0.8)):
                factor = 1.0 if sigma is None or attack == "rays" else gain * (
                    n_gain if n == 1 else 1.0)
                l2 = base * factor * float(np.exp(spread * rng.standard_normal()))
                out.append({"kind": "attack", "model": "m", "attack": attack, "sigma": sigma,
                            "n": n, "p_a": p_a, "criterion": "shortcut", "image": f"im{i}",
                            "image_hash": f"h{i}", "start_correct": True, "success": True,
                            "l2": l2, "configuration": f"{sigma}-{n}-{p_a}"})
        out.append({"kind": "certify", "model": "m", "image_hash": f"h{i}", "sigma": 0.05,
                    "correct": True, "radius": 0.1})
    return out


def verdicts(rows):
    return {(r["claim"], r["attack"], r["setting"]): r["verdict"] for r in rows}


def test_clear_effects_are_reproduced_and_reversed_ones_refuted():
    rows = claims(results(gain=2.0, n_gain=1.5, spread=0.05))
    v = verdicts(rows)
    assert v[("RS forces larger distortions than f", "hsja", "σ=0.05, n=10 vs f")] == "reproduced"
    assert v[("smaller n defends better", "hsja", "σ=0.05: n=1 vs n=10")] == "reproduced"
    assert v[("P_a hardly matters", "hsja", "σ=0.05, n=10: P_a=0.5 vs 0.8")] == "reproduced"
    assert v[("RayS is the least affected by RS", "hsja",
              "σ=0.05, n=10: gain of hsja vs gain of RayS")] == "reproduced"
    assert v[("distortion ≥ 30× the certified radius", "all",
              "every successful attack on a certified image")] == "reproduced"
    reversed_ = verdicts(claims(results(gain=0.5, n_gain=0.6, spread=0.05)))
    assert reversed_[("RS forces larger distortions than f", "hsja",
                      "σ=0.05, n=10 vs f")] == "refuted"
    assert reversed_[("smaller n defends better", "hsja", "σ=0.05: n=1 vs n=10")] == "refuted"
    assert "| claim |" in markdown(rows)


def test_noise_and_tiny_samples_are_not_resolved():
    v = verdicts(claims(results(gain=1.05, n_gain=1.0, spread=0.8, images=20)))
    assert v[("RS forces larger distortions than f", "hsja",
              "σ=0.05, n=10 vs f")] == "not resolved at this size"
    assert paired_ratio({"a": 1.0}, {"a": 2.0}) is None
    ratio, low, high, k = paired_ratio({"a": 2.0, "b": 4.0}, {"a": 1.0, "b": 2.0})
    assert (ratio, low, high, k) == (2.0, 2.0, 2.0, 2)


def test_plain_and_rs_aware_attacks_never_share_a_row():
    """Results of both variants on the same images and configurations: the summary has one
    row per variant (the RS-aware ones 3× larger here), and the claims compare each variant
    only with itself (results without a variant count as plain)."""
    from rsviz.figures.study import distortion_figure
    from rsviz.study.aggregate import summarize

    plain = [{"linf": 0.1, "queries": 100, "forward_passes": 100, **r}
             for r in results(gain=2.0, n_gain=1.5, spread=0.05)]
    aware = [{**r, "variant": "rs-aware", "l2": 3 * r["l2"]} for r in plain
             if r["kind"] == "attack" and r["sigma"] is not None]
    aware += [{**r, "variant": "rs-aware"} for r in plain
              if r["kind"] == "attack" and r["sigma"] is None]
    rows = summarize(plain + aware)
    assert len(rows) == 2 * len(summarize(plain))
    key = lambda r: (r["attack"], r["sigma"], r["n"], r["p_a"])  # noqa: E731
    by = {(r["variant"], *key(r)): r for r in rows}
    for r in summarize(plain):
        assert by[("plain", *key(r))]["mean_l2"] == r["mean_l2"]
        factor = 1 if r["sigma"] is None else 3
        assert np.isclose(by[("rs-aware", *key(r))]["mean_l2"], factor * r["mean_l2"])
    v = {(r["claim"], r["model"], r["attack"], r["setting"]): r for r in claims(plain + aware)}
    setting = "σ=0.05, n=10 vs f"
    ratio = lambda row: float(row["ratio [95% CI]"].split()[0])  # noqa: E731
    plain_gain = ratio(v[("RS forces larger distortions than f", "m", "hsja", setting)])
    aware_gain = ratio(v[("RS forces larger distortions than f", "m (rs-aware)", "hsja",
                          setting)])
    assert np.isclose(aware_gain, 3 * plain_gain, rtol=0.01)  # the table rounds to 0.01
    titles = [a.text for a in distortion_figure(rows).layout.annotations]
    assert "hsja" in titles and "hsja (rs-aware)" in titles


def test_few_images_give_no_verdict_and_rays_gets_no_direction():
    """A clear effect on 6 images is not a verdict (bootstrap intervals under-cover there);
    RayS's own RS-vs-f row carries no verdict (the paper claims none)."""
    rows = claims(results(gain=2.0, n_gain=1.5, spread=0.05, images=6))
    v = verdicts(rows)
    assert v[("RS forces larger distortions than f", "hsja", "σ=0.05, n=10 vs f")] == \
        "not resolved at this size (6 paired images, 10 needed)"
    rays = [r for r in claims(results(gain=2.0, n_gain=1.5, spread=0.05))
            if r["attack"] == "rays" and r["setting"].endswith("vs f")]
    assert len(rays) == 2 and all(r["verdict"] == "—" for r in rays)  # n = 1 and n = 10
    assert all(r["claim"].startswith("RS vs f for RayS") for r in rays)


def test_rays_gain_is_compared_at_every_n_and_the_radius_claim_is_per_model():
    """Fig. 5 shows RayS against HSJA at each n; a study of two models gets one "30×" row
    each (a model far below 30× must not hide behind the other's ratios)."""
    one = results(gain=2.0, n_gain=1.5, spread=0.05)
    other = [dict(r, model="m2") for r in results(gain=2.0, n_gain=1.5, spread=0.05, seed=1)]
    for r in other:
        if r["kind"] == "certify":
            r["radius"] = 1.0  # L2 ≈ 10–30 over a radius of 1: below 30× on most images
    rows = claims(one + other)
    v = verdicts([r for r in rows if r["model"] == "m"])
    for n in (1, 10):
        assert v[("RayS is the least affected by RS", "hsja",
                  f"σ=0.05, n={n}: gain of hsja vs gain of RayS")] == "reproduced"
    radius = {r["model"]: r["verdict"] for r in rows
              if r["claim"] == "distortion ≥ 30× the certified radius"}
    assert radius == {"m": "reproduced", "m2": "refuted"}
