#!/usr/bin/env python3
"""Golden-fixture generator for the Rust VoxCPM port (VoxCPM2 and the v1 architecture).

Every number written here is produced by the official PyTorch implementation (`voxcpm==2.0.3`):
these scripts only build configs, randomise weights, feed inputs and record outputs. This file is
the command line; each kind of golden has its own module (see tools/golden/README.md).

    /opt/golden-venv/bin/python tools/golden/generate.py --out engine/tests/fixtures --demo-out assets/demo-checkpoint
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # silence the official per-patch progress bar
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden_common  # noqa: E402

golden_common.install_import_shims()  # before anything imports voxcpm

import torch  # noqa: E402

import cases  # noqa: E402
import demo  # noqa: E402
import lora  # noqa: E402
import modules  # noqa: E402
import modules_v1  # noqa: E402
import pipeline  # noqa: E402
import pipeline_v1  # noqa: E402
import presets_v1  # noqa: E402
import tokenizer_cases  # noqa: E402
from checkpoints import checkpoint_dir, load_official, make_checkpoint  # noqa: E402
from configs import SEEDS, odd_config, tiny_config, v1_odd_config, v1_tiny_config  # noqa: E402
from flavours import V1  # noqa: E402
from synthetic_tokenizer import build_tokenizer_json  # noqa: E402

# v1 fixture configs and the model weights file each is written as: the 0.5B flavour exercises
# the pytorch_model.bin loader (the VoxCPM-0.5B release ships only that), the 1.5 flavour
# model.safetensors
V1_CHECKPOINTS = (("v1_tiny", v1_tiny_config, "pytorch_model.bin"), ("v1_odd", v1_odd_config, "model.safetensors"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="fixtures directory (engine/tests/fixtures)")
    ap.add_argument("--demo-out", required=True, help="demo checkpoint directory (assets/demo-checkpoint)")
    ap.add_argument(
        "--demo-bf16",
        action="store_true",
        help="store the demo checkpoint's model.safetensors in bf16 (halves it; the config dtype stays float32)",
    )
    ap.add_argument(
        "--pipeline-only",
        action="store_true",
        help="only (re)write the pipeline_*.safetensors cases, from the checkpoints already under --out",
    )
    ap.add_argument(
        "--lora-only",
        action="store_true",
        help="only (re)write tiny/lora/ and tiny/lora_case.safetensors, from the tiny checkpoint already under --out",
    )
    ap.add_argument(
        "--v1-only",
        action="store_true",
        help="only (re)write the v1 fixtures: v1_tiny/, v1_odd/ and the preset_voxcpm*.json tensor lists"
        " (--demo-out is then not written)",
    )
    return ap.parse_args()


def generate_all(args) -> dict:
    tok, vocab_size = build_tokenizer_json()
    print(f"[golden] synthetic tokenizer: {vocab_size} tokens", file=sys.stderr)
    report = {"vocab_size": vocab_size, "configs": {}, "cases": {}}

    models = {}
    for name, config in (("tiny", tiny_config), ("odd", odd_config)):
        models[name] = make_checkpoint(config(vocab_size), tok, SEEDS[name], checkpoint_dir(args.out, name))
        modules.write_module_goldens(models[name], name, args.out, report)
    cases.write_cases(models, args.out, report)
    tokenizer_cases.write_tokenizer_cases(checkpoint_dir(args.out, "tiny"), args.out, report)
    demo.write_demo(tok, vocab_size, args.demo_out, args.demo_bf16)
    # pipeline cases last, so that nothing above can depend on them
    pipeline.write_pipeline_cases(models, args.out, report)
    # LoRA last: it loads its own models from the tiny checkpoint directory
    lora.write_lora(args.out, report)
    # v1 after everything v2, so that no v2 output can depend on it
    generate_v1(args.out, tok, vocab_size, report)
    return report


def generate_v1(out_dir: str, tok, vocab_size: int, report: dict) -> None:
    """Every v1 output, in a fixed order; each case runs on what the official loader makes of the
    written checkpoint directory (the pipeline cases: through core.py's public `VoxCPM`)."""
    models = {}
    for name, config, weights_file in V1_CHECKPOINTS:
        ckpt = checkpoint_dir(out_dir, name)
        models[name] = make_checkpoint(config(vocab_size), tok, SEEDS[name], ckpt, flavour=V1, weights_file=weights_file)
        modules_v1.write_module_goldens_v1(models[name], name, out_dir, report)
    cases.write_cases(models, out_dir, report, cases=cases.CASES_V1)
    pipeline_v1.write_pipeline_cases_v1(out_dir, report)
    lora.write_lora(out_dir, report, lora.LORA_V1)
    presets_v1.write_presets(out_dir, tok.get_vocab(), report)


def main():
    args = parse_args()
    torch.set_num_threads(1)  # deterministic, thread-count independent CPU kernels
    torch.use_deterministic_algorithms(True)

    if args.pipeline_only:
        # the full run computes every case with the model that from_local makes of the written
        # checkpoint directory, so loading the committed directories gives the same numbers
        report = {"cases": {}}
        models = {name: load_official(checkpoint_dir(args.out, name)).float().eval() for name in ("tiny", "odd")}
        pipeline.write_pipeline_cases(models, args.out, report)
    elif args.lora_only:
        report = {"cases": {}}
        lora.write_lora(args.out, report)
    elif args.v1_only:
        tok, vocab_size = build_tokenizer_json()
        report = {"vocab_size": vocab_size, "configs": {}, "cases": {}}
        generate_v1(args.out, tok, vocab_size, report)
    else:
        report = generate_all(args)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
