"""Models: the registry (embedded and torchvision models, tiny and analytic toys), user
checkpoints (Cohen et al. ImageNet and CIFAR-10, Madry et al., RobustBench, torchvision state
dicts), model references (`timm:NAME`, `torchvision:NAME`, `hf-hub:REPO`, `checkpoint:PATH`)
and the Classifier wrapper every part of rsviz runs. Every name is importable from
`rsviz.models`."""

from rsviz.models.base import (IMAGENET_MEAN, IMAGENET_STD, Classifier, ModelInfo, Normalize,
                               content_hash, count_flops, imagenet_classes, top_k, with_info)
from rsviz.models.cifar import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, CIFAR_SIZE,
                                CifarResNet, CifarWideResNet)
from rsviz.models.checkpoints import (CHECKPOINT_ARCHS, NORMALIZATIONS, SAFE_GLOBALS, Detection,
                                      check_upload_size, detect, load_checkpoint,
                                      parse_mean_std, read_checkpoint)
from rsviz.models.registry import (DEFAULT_MODEL, PAPER_SIGMA, REGISTRY, ModelSpec,
                                   _remap_lite0_key, default_sigma, file_hash, load_model,
                                   spec_info, spec_model_id)
from rsviz.models.refs import (REF_HELP, ModelRef, check_model_ref, load_model_ref,
                               parse_model_ref)
from rsviz.models.toys import (TOY_SIZE, BallClassifier, LinearClassifier, TinyCNN,
                               make_ball_toy, make_linear_toy)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "Classifier", "ModelInfo", "Normalize", "content_hash",
    "count_flops", "imagenet_classes", "top_k", "with_info", "CHECKPOINT_ARCHS",
    "NORMALIZATIONS", "SAFE_GLOBALS", "Detection", "detect", "load_checkpoint",
    "read_checkpoint", "check_upload_size", "parse_mean_std", "DEFAULT_MODEL", "PAPER_SIGMA", "REGISTRY", "ModelSpec",
    "_remap_lite0_key", "default_sigma", "file_hash", "load_model", "spec_model_id", "spec_info", "TOY_SIZE",
    "BallClassifier", "LinearClassifier", "TinyCNN", "make_ball_toy", "make_linear_toy",
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR_SIZE", "CifarResNet", "CifarWideResNet", "REF_HELP",
    "ModelRef", "check_model_ref", "load_model_ref", "parse_model_ref",
]
