"""One CERTIFY, one seed rule: an image certified alone (image page, certification view,
`rsviz certify IMAGE`) and inside a set (`rsviz certify --images`, run_certification, a
study's tasks) gives the same numbers for the same base seed and σ, whatever its place in
the set; checked against CERTIFY run by hand with the seed rule written out."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from rsviz.certification import (CertificationConfig, certify_seed, read_tsv,
                                 run_certification)
from rsviz.images import load_sample, tensor_hash
from rsviz.imagesets import ImageSetSpec, from_folder
from rsviz.smoothing import certify, forward_labels, make_generator
from rsviz.study import StudyPlan, build_tasks, execute_task, image_refs
from rsviz.study.tasks import CertifyTask
from rsviz.views.base import inputs
from rsviz.views.certification import CertifyRequest
from rsviz.views.image import VotesRequest
from rsviz.views.inputs import load_image

pytestmark = pytest.mark.usefixtures("one_thread")

SEED, SIGMAS, N0, N, ALPHA = 3, (0.25, 0.5), 16, 64, 0.001
SETTINGS = CertificationConfig(sigmas=SIGMAS, n0=N0, n=N, alpha=ALPHA, seed=SEED)
CLI = ["--model", "tiny_cnn", "--device", "cpu", "--engine", "eager", "--n0", str(N0),
       "--n", str(N), "--alpha", str(ALPHA), "--seed", str(SEED),
       "--sigma", *map(str, SIGMAS), "--json"]


def written_rule(seed: int, sigma: float, image_hash: str) -> int:
    """The documented rule, spelled out: sha256 of "seed␟hash␟certify␟float(σ)", first 8
    bytes big-endian, shifted right by one (63 bits)."""
    text = "\x1f".join([str(seed), image_hash, "certify", repr(float(sigma))])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def test_seed_rule_is_the_written_one_and_ignores_position():
    assert certify_seed(7, 0.25, "abc") == written_rule(7, 0.25, "abc")
    assert certify_seed(7, 1, "abc") == certify_seed(7, 1.0, "abc")  # σ as a float
    seeds = {certify_seed(7, 0.25, "abc"), certify_seed(8, 0.25, "abc"),
             certify_seed(7, 0.5, "abc"), certify_seed(7, 0.25, "abd")}
    assert len(seeds) == 4  # base seed, σ and image each change the noise


@pytest.fixture
def coffee_set(tiny_model, tmp_path):
    """A folder of two images labelled by tiny_cnn, the coffee sample second (index 1)."""
    folder = tmp_path / "set"
    folder.mkdir()
    lines = []
    for name, sample in (("a_chelsea.png", "chelsea"), ("b_coffee.png", "coffee")):
        load_sample(sample).original.save(folder / name)
        x, _ = load_image(str(folder / name), tiny_model)
        lines.append(f"{name},{int(forward_labels(tiny_model, x[None])[0])}")
    (folder / "labels.csv").write_text("filename,class_index\n" + "\n".join(lines) + "\n")
    return folder


def test_same_image_same_numbers_alone_and_in_a_set(tiny_model, coffee_set, tmp_path, capsys):
    from rsviz.cli import main

    x, _ = load_image("sample:coffee", tiny_model)
    image_hash = tensor_hash(x)
    ids = inputs(tiny_model, x)

    # the reference: CERTIFY by hand, its generator seeded by the written rule
    expected = {}
    for sigma in SIGMAS:
        generator = make_generator(written_rule(SEED, sigma, image_hash), tiny_model.device)
        r = certify(tiny_model, x, sigma, N0, N, ALPHA, generator)
        expected[sigma] = (r.predict, r.radius, r.p_lower, r.counts0.tolist(), r.counts.tolist())
    assert any(e[1] > 0 for e in expected.values())  # a certified case, not only abstentions
    numbers = {sigma: e[:3] for sigma, e in expected.items()}

    # image page: the recorded votes and the CERTIFY block of its summary
    for sigma in SIGMAS:
        request = VotesRequest(**ids, sigma=sigma, n_samples=N, n0=N0, seed=SEED, alpha=ALPHA)
        sampled = request.run(tiny_model, x)
        counts = np.bincount(sampled["labels"], minlength=sampled["num_classes"]).tolist()
        assert (sampled["counts0"].tolist(), counts) == expected[sigma][3:]
        block = request.summary(sampled)["certify"]
        assert (block["predict"], block["radius"], block["p_lower_one_sided"]) == numbers[sigma]

    # certification view (what `rsviz certify IMAGE` runs) and the CLI itself
    rows = CertifyRequest(**ids, config=SETTINGS).run(tiny_model, x)
    assert {s: (r.predict, r.radius, r.p_lower) for s, r in zip(SIGMAS, rows)} == numbers
    assert main(["certify", "sample:coffee", *CLI]) == 0
    single = json.loads(capsys.readouterr().out)
    assert {r["sigma"]: (r["predict"], r["radius"], r["p_lower"])
            for r in single["runs"]} == numbers

    # a set, the coffee image at index 1: run_certification, `rsviz certify --images`
    images = from_folder(coffee_set, class_names=tiny_model.info.class_names)
    assert [e.name for e in images.entries] == ["a_chelsea.png", "b_coffee.png"]
    run = run_certification(tiny_model, images, SETTINGS)
    assert {s: (rows[1].predict, rows[1].radius, rows[1].p_lower)
            for s, rows in run.runs.items()} == numbers
    assert main(["certify", "--images", str(coffee_set), "--out", str(tmp_path / "r.tsv"),
                 *CLI]) == 0
    capsys.readouterr()
    for sigma in SIGMAS:
        row = read_tsv(tmp_path / f"r_sigma{sigma:g}.tsv")[1]
        assert (row.predict, row.radius) == numbers[sigma][:2]

    # a study over the same set, its plan's seed the base seed
    plan = StudyPlan(name="one-rule", models=("tiny_cnn",),
                     images=ImageSetSpec("folder", str(coffee_set)), sigmas=SIGMAS, ns=(3,),
                     attacks=("hsja",), budget=10, seed=SEED,
                     certify=CertificationConfig(n0=N0, n=N, alpha=ALPHA))
    info = tiny_model.info
    refs = image_refs(images, images.tensors(info.input_size, info.resize, info.interpolation),
                      "tiny_cnn")
    assert refs[1].hash == image_hash
    tasks = [t for t in build_tasks(plan, refs, "tiny_cnn")
             if isinstance(t, CertifyTask) and t.image.idx == 1]
    results = {t.sigma: execute_task(t, tiny_model, x) for t in tasks}
    assert {s: (r["predict"], r["radius"], r["p_lower"]) for s, r in results.items()} == numbers
    assert all(r["seed"] == written_rule(SEED, s, image_hash) for s, r in results.items())


def test_rs_aware_radius_is_the_certification_views(tiny_model):
    """The RS-aware figure's R(x_o) (`geometry`) is the certification view's radius for the
    same image, σ, seed and votes (n0 and α the defaults), and its cost counts those passes."""
    from rsviz.attacks.rs_aware.geometry import geometry, geometry_cost

    x, _ = load_image("sample:coffee", tiny_model)
    settings = CertificationConfig(sigmas=(0.5,), n=N, seed=SEED)
    row = CertifyRequest(**inputs(tiny_model, x), config=settings).run(tiny_model, x)[0]
    assert row.predict != -1 and row.radius > 0
    geo = geometry(tiny_model, x, row.predict, 0.5, None, cert_n=N, seed=SEED)
    assert geo == {"radius": row.radius, "cert_n": N, "boundary": None}
    assert geometry(tiny_model, x, row.predict + 1, 0.5, None, cert_n=N, seed=SEED)["radius"] == 0
    assert geometry_cost(N, votes=0) == row.forward_passes - 1  # the view adds f's label
