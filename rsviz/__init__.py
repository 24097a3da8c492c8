"""rsviz: a visual lab for randomized smoothing under attack.

The engine works in pixel space: every image tensor is in [0, 1]^{3xHxW} and the
normalisation of each model lives inside its wrapper. Importing rsviz never imports Streamlit,
nor torch: the public names below are imported from their modules on first use.

Public API (docs/python.md; examples/quickstart.ipynb):

Models
    Classifier(net, ModelInfo(...))   wrap any nn.Module taking [B,3,H,W] (normalisation inside)
    ModelInfo                         its metadata: input size, mean/std, class names, model id
    content_hash(module)              a model id from the weights (results are keyed by it)
    load_model_ref(ref)               a model by reference: registry name, timm:NAME,
                                      torchvision:NAME, hf-hub:REPO, checkpoint:PATH
    load_model(name), load_checkpoint(arch, path)
    CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
Images
    preprocess(pil, size, resize)     a PIL image as a [3,size,size] tensor in [0,1]
    load_image_file(path), load_sample(name)   (.original is the PIL image)
    from_folder(folder), from_cifar10(path)    labelled image sets
Smoothing and certification
    make_generator(seed)              the explicit noise generator every function takes
    sample_votes, predict, certify    Cohen et al.'s sampling, PREDICT and CERTIFY
    CertificationConfig, run_certification, read_tsv, certified_accuracy, analyze_tsv
Views of the paper
    SliceConfig, compute_slice        Fig. 2: a 2D slice with f, g_{σ,n} and ∂g_σ
    ProfileConfig, compute_profile    Fig. 1: P[adversarial] along x_a − x_o, SORM
    DichotomyConfig, run_dichotomy    Fig. 3: binary searches against g_{σ,n}
    OracleConfig, run_attack          §4: HSJA, SurFree, RayS against f or g_{σ,n}
Figures (Plotly; shown inline in a notebook)
    label_maps_figure, profile_figure, distortion_figure, certification_figure
    export_figure(fig, "name.png")    PNG/SVG/PDF (kaleido + Chromium), HTML, JSON bundle
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Views key their cache entries with their own VERSION (rsviz/views/); study tasks are keyed
# by their content (rsviz/study/tasks.py).

# public name -> module it lives in (imported on first access: `import rsviz` stays light)
_PUBLIC: dict[str, str] = {
    # models
    "Classifier": "rsviz.models.base", "ModelInfo": "rsviz.models.base",
    "content_hash": "rsviz.models.base", "IMAGENET_MEAN": "rsviz.models.base",
    "IMAGENET_STD": "rsviz.models.base", "load_model": "rsviz.models.registry",
    "load_checkpoint": "rsviz.models.checkpoints", "load_model_ref": "rsviz.models.refs",
    "CIFAR10_CLASSES": "rsviz.models.cifar", "CIFAR10_MEAN": "rsviz.models.cifar",
    "CIFAR10_STD": "rsviz.models.cifar",
    # images
    "preprocess": "rsviz.images", "load_image_file": "rsviz.images", "load_sample": "rsviz.images",
    "from_folder": "rsviz.imagesets", "from_cifar10": "rsviz.imagesets",
    # smoothing and certification
    "make_generator": "rsviz.smoothing", "sample_votes": "rsviz.smoothing",
    "predict": "rsviz.smoothing", "certify": "rsviz.smoothing",
    "CertificationConfig": "rsviz.certification", "run_certification": "rsviz.certification",
    "read_tsv": "rsviz.certification", "certified_accuracy": "rsviz.certification",
    "analyze_tsv": "rsviz.certification",
    # views
    "SliceConfig": "rsviz.slices", "compute_slice": "rsviz.slices",
    "ProfileConfig": "rsviz.profile", "compute_profile": "rsviz.profile",
    "DichotomyConfig": "rsviz.dichotomy", "run_dichotomy": "rsviz.dichotomy",
    "OracleConfig": "rsviz.attacks", "run_attack": "rsviz.attacks",
    # figures
    "label_maps_figure": "rsviz.figures.slices", "profile_figure": "rsviz.figures.profile",
    "distortion_figure": "rsviz.figures.attacks",
    "certification_figure": "rsviz.figures.study", "export_figure": "rsviz.figures.export",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'rsviz' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
