"""`rsviz predict IMAGE`: top-5 of the base classifier f."""

from __future__ import annotations

import argparse

import torch

from rsviz.commands._common import (Timer, add_image_argument, add_model_arguments, context,
                                    load_cli_image, load_cli_model)
from rsviz.models import top_k

NAME = "predict"
HELP = "top-5 classes of the base classifier f on one image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_argument(parser)
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> dict:
    model = load_cli_model(args)
    x, name = load_cli_image(args.image, model)
    with Timer() as timer, torch.inference_mode():
        logits = model(x[None].to(model.device))[0]
    top5 = [{"class_index": c, "name": model.info.class_name(c), "prob": p}
            for c, p in top_k(logits, 5)]
    return {**context(model, x, name), "top5": top5, "seconds": timer.seconds}


def render(result: dict) -> str:
    lines = [f"{result['image']} — {result['model']} on {result['device']} "
             f"({1000 * result['seconds']:.0f} ms)"]
    lines += [f"  {r['prob']:6.1%}  {r['name']} ({r['class_index']})" for r in result["top5"]]
    return "\n".join(lines)
