"""Distil the embedded EfficientNet-Lite0 into a noise-robust copy (`efficientnet_lite0_noise`).

Teacher: the clean Lite0, frozen, on an augmented crop x (pixel space [0,1]).
Student: a copy of the same Lite0 on x + σ·N (the noise model of rsviz: no clipping), σ drawn
per image from a mix that includes 0 and the target σ. Loss: KL to the teacher's softened
output (temperature T, scaled by T²) plus a small cross-entropy on the teacher's argmax.
BatchNorm running statistics stay frozen (the student computes the same function in training
and at inference); its affine parameters train.

Crops are deterministic per (image, k) for k < --crops (seeded random resized crop, flip, colour
jitter); epoch e uses crop k = e mod --crops, so each teacher output is computed once and
cached (in the checkpoint). Only the noise is fresh at every visit. A seeded validation split of
the *training* folder (--val images) is held out to pick the best checkpoint; the evaluation set
(imagenet-sample) is never read here.

    nohup nice -n 5 .venv/bin/python -m train.distill_noise --out train/runs/noise \
        --budget-minutes 75 > /dev/null 2>&1 &

Resumable: rerun the same command; it continues from OUT/last.pt (written atomically every
--save-every seconds and at each epoch end). The log is OUT/train.log.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rsviz.images import preprocess
from rsviz.imagesets import ImageEntry, from_folder, shared_folder
from rsviz.models import Classifier, load_model

SIZE, RESIZE = 224, 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_folder("imagenet-train")),
                   help="folder with labels.csv")
    p.add_argument("--out", default="train/runs/noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--warmup", type=int, default=30, help="warm-up steps")
    p.add_argument("--epochs", type=int, default=30, help="planned epochs (re-planned by --budget-minutes)")
    p.add_argument("--budget-minutes", type=float, default=0.0,
                   help="plan the schedule to end after this much training time (0: use --epochs)")
    p.add_argument("--sigmas", default="0,0.12,0.25,0.5")
    p.add_argument("--sigma-weights", default="0.15,0.2,0.45,0.2")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--ce-weight", type=float, default=0.1)
    p.add_argument("--crops", type=int, default=8, help="fixed augmented crops per image")
    p.add_argument("--val", type=int, default=60, help="training images held out for validation")
    p.add_argument("--val-every", type=int, default=3, help="validate every N epochs")
    p.add_argument("--save-every", type=float, default=300.0, help="checkpoint period, seconds")
    p.add_argument("--bn-recal", type=int, default=0,
                   help="re-estimate BN statistics on this many noisy crops before training (0: off)")
    p.add_argument("--freeze-stem", action="store_true")
    p.add_argument("--limit", type=int, default=0, help="use only this many training images (tests)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (tests)")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------ data


def read_folder(folder: str) -> list[ImageEntry]:
    """The labelled images of the folder (rsviz.imagesets.from_folder: labels.csv, sorted)."""
    if "imagenet-sample" in os.path.abspath(folder):
        sys.exit("refusing to train on the evaluation set (imagenet-sample)")
    return list(from_folder(folder).entries)


def validation_split(rows: list[ImageEntry], count: int,
                     seed: int) -> tuple[list[ImageEntry], list[ImageEntry]]:
    """(validation, training) rows: a seeded `count` held out to choose checkpoints (and, in
    train/interpolate.py, the interpolation weight); the rest is trained on."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in order[:count]], [rows[i] for i in order[count:]]


def load_resized(entry: ImageEntry) -> torch.Tensor:
    """uint8 [3,H,W] with the short side RESIZE (bicubic), long side centre-cropped to 1.5×."""
    img = entry.load()
    w, h = img.size
    scale = RESIZE / min(w, h)
    img = img.resize((max(RESIZE, round(w * scale)), max(RESIZE, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    cw, ch = min(w, int(1.5 * RESIZE)), min(h, int(1.5 * RESIZE))
    img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def augmented_crop(image: torch.Tensor, seed: int, index: int, k: int) -> torch.Tensor:
    """The k-th fixed augmented crop of image `index`: float [3,SIZE,SIZE] in [0,1].

    Random resized crop (area 20–100 %, aspect 3/4–4/3), horizontal flip, brightness, contrast
    and saturation ×[0.7, 1.3], all drawn from a generator seeded by (seed, index, k).
    """
    rng = np.random.default_rng([seed, index, k])
    _, h, w = image.shape
    area = h * w * rng.uniform(0.2, 1.0)
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw = min(w, int(round(math.sqrt(area * ratio))))
    ch = min(h, int(round(math.sqrt(area / ratio))))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = image[:, top:top + ch, left:left + cw].float()[None] / 255.0
    crop = F.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", antialias=True,
                         align_corners=False)[0]
    if rng.uniform() < 0.5:
        crop = crop.flip(-1)
    brightness, contrast, saturation = rng.uniform(0.7, 1.3, size=3)
    crop = crop * brightness
    crop = (crop - crop.mean()) * contrast + crop.mean()
    grey = (0.299 * crop[0] + 0.587 * crop[1] + 0.114 * crop[2])[None]
    crop = (crop - grey) * saturation + grey
    return crop.clamp(0, 1)


# ------------------------------------------------------------------------------- the models


def make_models(args: argparse.Namespace) -> tuple[Classifier, Classifier]:
    teacher = load_model("efficientnet_lite0").to(memory_format=torch.channels_last)
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(True)
    if args.freeze_stem:
        for p in [*student.net.conv_stem.parameters(), *student.net.bn1.parameters()]:
            p.requires_grad_(False)
    student.eval()  # frozen BN statistics, no dropout
    return teacher, student


def add_noise(x: torch.Tensor, sigmas: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x + σ_i·N per image (pixel space, no clipping, as rsviz.smoothing)."""
    noise = torch.randn(x.shape, generator=generator)
    return (x + sigmas.view(-1, 1, 1, 1) * noise).contiguous(memory_format=torch.channels_last)


def recalibrate_bn(model: Classifier, crops: list[torch.Tensor], sigmas: torch.Tensor,
                   weights: torch.Tensor, generator: torch.Generator, batch: int) -> None:
    """Re-estimate BN running statistics (cumulative average) on noisy crops."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for s in range(0, len(crops), batch):
            x = torch.stack(crops[s:s + batch])
            sig = sigmas[torch.multinomial(weights, len(x), True, generator=generator)]
            model(add_noise(x, sig, generator))
    for bn in bns:
        bn.momentum = 0.1
        bn.eval()


def validate(model: Classifier, val: list[tuple[torch.Tensor, int]], sigma: float, draws: int,
             seed: int) -> float:
    """Top-1 of f on the validation crops under noise σ (mean over `draws` noise draws)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.stack([v[0] for v in val])
    y = torch.tensor([v[1] for v in val])
    hits = 0
    with torch.inference_mode():
        for _ in range(draws if sigma > 0 else 1):
            for s in range(0, len(x), 32):
                xb = add_noise(x[s:s + 32], torch.full((len(x[s:s + 32]),), sigma), generator)
                hits += int((model(xb).argmax(1) == y[s:s + 32]).sum())
    return hits / (len(x) * (draws if sigma > 0 else 1))


# ------------------------------------------------------------------------------- training


class Log:
    def __init__(self, path: Path) -> None:
        self.handle = open(path, "a", buffering=1)

    def __call__(self, message: str) -> None:
        self.handle.write(f"{time.strftime('%H:%M:%S')} {message}\n")


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def lr_at(step: int, total: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "train.log")
    log(f"start: {json.dumps(vars(args))}")

    rows = read_folder(args.data)
    val_rows, train_rows = validation_split(rows, args.val, args.seed)
    if args.limit:
        train_rows, val_rows = train_rows[:args.limit], val_rows[:max(4, args.limit // 4)]
    t0 = time.time()
    images = [load_resized(entry) for entry in train_rows]
    val = [(preprocess(e.load(), SIZE, RESIZE, "bicubic"), e.label) for e in val_rows]
    log(f"data: {len(images)} training images, {len(val)} validation images, "
        f"decoded in {time.time() - t0:.1f}s")

    sigmas = torch.tensor([float(s) for s in args.sigmas.split(",")])
    weights = torch.tensor([float(w) for w in args.sigma_weights.split(",")])
    teacher, student = make_models(args)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(images) / args.batch)
    state = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0,
             "total_steps": args.epochs * steps_per_epoch, "best": -1.0, "history": []}
    cache: dict[tuple[int, int], torch.Tensor] = {}

    last = out / "last.pt"
    if last.exists():
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        student.load_state_dict(ckpt["student"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state.update(json.loads(ckpt["state"]))
        cache = {(int(i), int(k)): v for (i, k), v in zip(ckpt["cache_keys"].tolist(), ckpt["cache_values"])}
        log(f"resumed at epoch {state['epoch']} batch {state['batch']} step {state['step']} "
            f"({len(cache)} cached teacher outputs)")
    elif args.bn_recal:
        generator = torch.Generator().manual_seed(args.seed + 1)
        crops = [augmented_crop(images[i % len(images)], args.seed, i % len(images), 0)
                 for i in range(args.bn_recal)]
        recalibrate_bn(student, crops, sigmas, weights, generator, args.batch)
        log(f"BN statistics re-estimated on {len(crops)} noisy crops")

    def checkpoint(path: Path) -> None:
        keys = sorted(cache)
        save_atomic({"student": student.state_dict(), "optimizer": optimizer.state_dict(),
                     "state": json.dumps(state),
                     "cache_keys": torch.tensor(keys, dtype=torch.long).view(-1, 2),
                     "cache_values": torch.stack([cache[k] for k in keys]) if keys
                     else torch.zeros(0, 1000, dtype=torch.float16)}, path)

    def run_validation() -> None:
        clean = validate(student, val, 0.0, 1, args.seed)
        noisy = validate(student, val, 0.25, 4, args.seed)
        state["history"].append({"epoch": state["epoch"], "step": state["step"],
                                 "val_clean": clean, "val_0.25": noisy})
        log(f"validation epoch {state['epoch']} step {state['step']}: f clean {clean:.3f}, "
            f"f under σ=0.25 {noisy:.3f} ({len(val)} held-out training images)")
        if noisy > state["best"] and clean >= 0.75:
            state["best"] = noisy
            torch.save({"student": student.state_dict(), "state": json.dumps(state)}, out / "best.pt")

    if state["step"] == 0:
        run_validation()
    temperature = args.temperature
    last_save, rate = time.time(), None
    while state["step"] < state["total_steps"]:
        epoch = state["epoch"]
        perm = np.random.default_rng([args.seed, 1, epoch]).permutation(len(images))
        k = epoch % args.crops
        for b in range(state["batch"], steps_per_epoch):
            tick = time.time()
            index = perm[b * args.batch:(b + 1) * args.batch]
            x = torch.stack([augmented_crop(images[i], args.seed, int(i), k) for i in index])
            missing = [j for j, i in enumerate(index) if (int(i), k) not in cache]
            if missing:
                with torch.inference_mode():
                    t_logits = teacher(x[missing].contiguous(memory_format=torch.channels_last))
                for j, row in zip(missing, t_logits):
                    cache[(int(index[j]), k)] = row.half()
            target = torch.stack([cache[(int(i), k)] for i in index]).float()
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + state["step"])
            sig = sigmas[torch.multinomial(weights, len(index), True, generator=generator)]
            logits = student(add_noise(x, sig, generator))
            kl = F.kl_div(F.log_softmax(logits / temperature, 1), F.log_softmax(target / temperature, 1),
                          reduction="batchmean", log_target=True) * temperature ** 2
            ce = F.cross_entropy(logits, target.argmax(1))
            loss = kl + args.ce_weight * ce
            for group in optimizer.param_groups:
                group["lr"] = lr_at(state["step"], state["total_steps"], args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["step"] += 1
            state["batch"] = b + 1
            seconds = time.time() - tick
            state["elapsed"] += seconds
            rate = len(index) / seconds if rate is None else 0.9 * rate + 0.1 * len(index) / seconds
            if state["step"] % 5 == 0:
                log(f"epoch {epoch} step {state['step']}/{state['total_steps']} loss {loss.item():.4f} "
                    f"(kl {kl.item():.4f}, ce {ce.item():.4f}) lr {group['lr']:.2e} "
                    f"{rate:.1f} img/s, teacher new {len(missing)}")
            if time.time() - last_save > args.save_every:
                checkpoint(last)
                last_save = time.time()
                log(f"checkpoint saved (step {state['step']})")
            if args.max_steps and state["step"] >= args.max_steps:
                checkpoint(last)
                log(f"stopped at --max-steps {args.max_steps}")
                return
            if state["step"] >= state["total_steps"]:
                break
        state["epoch"] += 1
        state["batch"] = 0
        if args.budget_minutes and rate:
            left = args.budget_minutes * 60 - state["elapsed"]
            planned = state["step"] + max(0, int(left * rate / args.batch))
            if planned != state["total_steps"]:
                log(f"schedule re-planned: {state['total_steps']} -> {planned} steps "
                    f"({left / 60:.1f} min left at {rate:.1f} img/s)")
                state["total_steps"] = planned
        if state["epoch"] % args.val_every == 0 or state["step"] >= state["total_steps"]:
            run_validation()
        checkpoint(last)
        last_save = time.time()
    torch.save({"student": student.state_dict(), "state": json.dumps(state)}, out / "final.pt")
    log(f"done: {state['step']} steps, {state['epoch']} epochs, {state['elapsed'] / 60:.1f} min of training")


if __name__ == "__main__":
    main()
