"""CIFAR-10 end to end: the official python batch format (a tiny fake batch built here), class-
named PNG folders, and a 32×32 CIFAR-10-shaped model (Cohen et al.'s CIFAR ResNet layout at
depth 8, random weights) through every CLI view, a study and figure export."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from rsviz.imagesets import (ImageSetError, ImageSetSpec, export_pngs, from_cifar10, from_folder,
                             read_cifar10_batch)
from rsviz.models import CIFAR10_CLASSES

pytestmark = pytest.mark.usefixtures("one_thread")
MODEL = ["--model", "cifar10_resnet8_random", "--device", "cpu", "--engine", "eager"]


def fake_batch(path, count: int = 6, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """A batch file as CIFAR-10's python version holds it: a pickled dict with bytes keys,
    b'data' uint8 [N, 3072] (1024 red, 1024 green, 1024 blue values, rows of 32), b'labels'."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=count)]
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(count)]}
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    return data, labels


def test_batch_file_is_read_pixel_for_pixel(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data, labels = fake_batch(folder / "test_batch")
    images = from_cifar10(folder)  # the folder: its test_batch
    assert len(images) == 6 and [e.label for e in images.entries] == labels
    assert images.entries[0].class_name == CIFAR10_CLASSES[labels[0]]
    img = images.entries[4].load()
    assert img.size == (32, 32)
    pixels = np.asarray(img)
    assert pixels[0, 0, 0] == data[4, 0] and pixels[0, 0, 1] == data[4, 1024]
    assert pixels[31, 31, 2] == data[4, 3071] and pixels[2, 5, 1] == data[4, 1024 + 2 * 32 + 5]
    spec = ImageSetSpec("cifar10", str(folder / "test_batch"), subset=3, seed=1)
    assert len(spec.resolve(CIFAR10_CLASSES)) == 3
    x = images.tensors(32, 32, "bilinear")[4]  # 32x32 in, 32x32 out: the pixels themselves
    assert np.array_equal((x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), pixels)


def test_batch_reader_refuses_other_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(ImageSetError, match="refused global builtins.print"):
        read_cifar10_batch(str(path))
    path = tmp_path / "data_batch_2"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ImageSetError, match=r"expected b'data' uint8 \[N, 3072\]"):
        read_cifar10_batch(str(path))
    with pytest.raises(ImageSetError, match="no CIFAR-10 batch here"):
        from_cifar10(tmp_path / "nothing")


def test_png_folder_with_class_named_subfolders(tmp_path):
    for i, name in enumerate(("cat", "ship", "cat")):
        (tmp_path / name).mkdir(exist_ok=True)
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(tmp_path / name / f"{i}.png")
    images = from_folder(tmp_path, class_names=CIFAR10_CLASSES)
    assert [(e.label, e.class_name) for e in images.entries] == [(3, "cat"), (3, "cat"),
                                                                 (8, "ship")]


def run(args, capsys) -> dict:
    from rsviz.cli import main

    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_every_view_runs_on_a_32x32_cifar10_model(tmp_path, capsys):
    data, labels = fake_batch(tmp_path / "test_batch", count=4)
    pngs = export_pngs(from_cifar10(tmp_path / "test_batch"), tmp_path / "pngs")
    image = str(sorted(pngs.glob("*.png"))[0])
    assert Image.open(image).size == (32, 32)

    top = run(["predict", image, *MODEL], capsys)
    assert top["model"] == "cifar10_resnet8_random" and top["top5"][0]["name"] in CIFAR10_CLASSES
    cert = run(["certify", image, *MODEL, "--n0", "8", "--n", "32", "--sigma", "0.12", "0.25"],
               capsys)
    assert cert["image"] == image
    sl = run(["slice", image, *MODEL, "--grid", "5", "--n", "5", "--no-png",
              "--out", str(tmp_path / "slice")], capsys)
    assert sl["image"] == image
    prof = run(["profile", image, *MODEL, "--samples", "16", "--points", "4", "--n", "5",
                "--attack-iters", "20", "--lanczos-steps", "3", "--probes", "2",
                "--slq-steps", "2"], capsys)
    assert prof["image"] == image
    dich = run(["dichotomy", image, *MODEL, "--n", "5", "--trials", "10", "--steps", "4",
                "--grid", "8", "--samples", "16", "--segment", "towards"], capsys)
    assert dich["image"] == image
    att = run(["attack", image, *MODEL, "--attack", "hsja", "--budget", "60", "--sigma", "0.25",
               "--n", "5"], capsys)
    assert att["image"] == image

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: cifar\nmodel: cifar10_resnet8_random\n"
        f"images: {{source: cifar10, folder: {tmp_path / 'test_batch'}, subset: 2}}\n"
        "sigmas: [0.25]\nns: [5]\nattacks: [hsja]\nbudget: 30\n"
        "certify: {n0: 8, n: 32, alpha: 0.001}\n")
    study = run(["study", str(plan), "--device", "cpu", "--engine", "eager",
                 "--out", str(tmp_path / "study")], capsys)
    assert (tmp_path / "study" / "plan.json").is_file() and study
    assert list((tmp_path / "slice").glob("*.html")), "the slice exported no figure"


def test_example_cifar10_plan_parses_and_names_what_is_missing():
    from rsviz.errors import ConfigError
    from rsviz.study import check_plan, load_plan
    from tests.conftest import ROOT

    plan = load_plan(ROOT / "examples" / "plan_cifar10.yaml")
    assert plan.sigmas == (0.12, 0.25, 0.5, 1.0) and plan.images.source == "cifar10"
    assert plan.certify.n == 100_000 and plan.models[0].startswith("checkpoint:")
    with pytest.raises(ConfigError, match="no checkpoint file at .*noise_0.25/checkpoint.pth.tar"):
        check_plan(plan)
