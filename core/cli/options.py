"""The options every `python -m core` command shares. Torch-free: the share link names the
sidebar's settings after these flags before torch is imported (ui.link_params)."""

from __future__ import annotations

import argparse

from core.foundation.models.names import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, MODEL_NAMES, SMALL_IMAGE_MAX_SIDE
from core.foundation.training.records import MAX_EPOCHS
from core.foundation.workspace import DATA_DIR_ENV

WORKSPACE_HELP = "workspace folder (default: ~/.cache/model-efficiency-lab, or $MEL_HOME)"


def common_options() -> argparse.ArgumentParser:
    """The options every command shares: which data, which source model, where to keep things."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument("--dataset", default="digits", help="digits, cifar10, mnist, fashion-mnist or folder:PATH (default: digits)")
    group.add_argument("--data-dir", help=f"where torchvision datasets are looked for and downloaded (default: WORKSPACE/data, or ${DATA_DIR_ENV})")
    group.add_argument("--model", default="simple_cnn", choices=MODEL_NAMES, metavar="MODEL", help=f"baseline model: {', '.join(MODEL_NAMES)} (default: simple_cnn)")
    group.add_argument(
        "--weights",
        metavar="FILE",
        help="start from your own trained weights for --model (.safetensors, or .pt/.pth read by PyTorch's restricted loader): recorded as the baseline, fine-tuned first with --epochs N",
    )
    group.add_argument(
        "--pretrained",
        action="store_true",
        help="start --model from torchvision's ImageNet weights for it (torchvision networks with published weights; read from torch's hub cache, "
        "downloaded there when missing): a new head for the dataset's classes, fine-tuned for --epochs at a gentler rate",
    )
    group.add_argument("--epochs", type=int, help=f"training epochs, 0..{MAX_EPOCHS} (default: the dataset's classroom preset; with --weights, 0)")
    group.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help=f"resize every image to N x N pixels, {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} (default: the dataset's own; a folder's at most {SMALL_IMAGE_MAX_SIDE}). "
        f"Above {SMALL_IMAGE_MAX_SIDE} px torchvision's networks keep their own stem",
    )
    group.add_argument("--train-size", type=int, help="class-balanced training subset size (default: all)")
    group.add_argument("--test-size", type=int, help="class-balanced test subset size (default: all)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    group.add_argument("--workspace", help=WORKSPACE_HELP)
    group.add_argument("--no-download", action="store_true", help="never download; fail with the folder to put files in")
    return parser


def recorded_run_options(parser: argparse.ArgumentParser) -> None:
    """--workspace and --data-dir alone, for the commands that read recorded runs (diff, exemplars,
    export, runtimes): they take no baseline options."""
    parser.add_argument("--workspace", help=WORKSPACE_HELP)
    parser.add_argument("--data-dir", help="where the runs' datasets are looked for (never downloaded here)")
