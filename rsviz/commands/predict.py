"""`rsviz predict IMAGE`: top-5 of the base classifier f."""

from __future__ import annotations

import argparse

from rsviz.commands._common import Timer, add_image_argument, add_model_arguments, context, inputs

NAME = "predict"
HELP = "top-5 classes of the base classifier f on one image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_argument(parser)
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> dict:
    from rsviz.views.image import top5

    model, x, name = inputs(args)
    with Timer() as timer:
        rows = top5(model, x)
    return {**context(model, x, name), "top5": rows, "seconds": timer.seconds}


def render(result: dict) -> str:
    lines = [f"{result['image']} — {result['model']} on {result['device']} "
             f"({1000 * result['seconds']:.0f} ms)"]
    lines += [f"  {r['prob']:6.1%}  {r['name']} ({r['class_index']})" for r in result["top5"]]
    return "\n".join(lines)
