"""Side-by-side speed of the official VoxCPM2 (PyTorch, CPU) and this engine, in one run.

Both stream the same zero-shot line for the same number of patches, with the same
timesteps, cfg and thread count, on the same checkpoint; each runs alone (the full-size model
needs ~15 GB in PyTorch f32 and ~14 GB here, so they cannot share a 24 GB machine). Reported:
load time, time to first chunk, mean time of later chunks (one patch each), peak RSS.

    /opt/golden-venv/bin/python bench/compare_official.py --model /tmp/ckpt-full \
        --voxcpm target/release/voxcpm [--patches 6] [--threads 2] [--out bench/compare.json]

The official side needs the golden venv (tools/golden/README.md); the checkpoint comes from
`voxcpm make-checkpoint --preset full`.
"""

import argparse
import atexit
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TEXT = "This line measures how soon streamed speech starts."


def official(model_dir: str, patches: int, steps: int, threads: int) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "golden"))
    import golden_common

    golden_common.install_import_shims()
    import torch
    from voxcpm.model.voxcpm2 import VoxCPM2Model

    torch.set_num_threads(threads)
    # f32 compute, as the engine's. The released config says bfloat16, and the official code
    # takes its compute dtype (weights, inputs, KV caches) from there, so it reads a copy of the
    # directory whose config says float32 (the weight files are linked, not copied).
    f32_dir = tempfile.mkdtemp(prefix="voxcpm-f32-")
    atexit.register(shutil.rmtree, f32_dir, True)
    for name in os.listdir(model_dir):
        if name != "config.json":
            os.symlink(os.path.abspath(os.path.join(model_dir, name)), os.path.join(f32_dir, name))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = "float32"
    with open(os.path.join(f32_dir, "config.json"), "w") as f:
        json.dump(config, f)
    start = time.perf_counter()
    model = VoxCPM2Model.from_local(f32_dir, optimize=False, training=False, device="cpu").eval()
    load = time.perf_counter() - start
    arrivals = []
    with torch.inference_mode():
        start = time.perf_counter()
        for _chunk in model.generate_streaming(
            target_text=TEXT, min_len=patches, max_len=patches, inference_timesteps=steps, cfg_value=2.0
        ):
            arrivals.append(time.perf_counter() - start)
    return summary("official PyTorch f32", load, arrivals, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def ours(voxcpm: str, model_dir: str, patches: int, steps: int, threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [voxcpm, "bench", "--model", model_dir, "--steps", str(steps), "--runs", "1", "--stream-patches", str(patches)]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    s = report["streaming"]
    first, later = s["time_to_first_chunk_seconds"], s["seconds_per_later_chunk"]
    arrivals = [first + i * later for i in range(s["chunks"])]
    return summary("voxcpm-native (CPU, bf16 weights, f32 compute)", report["load_seconds"], arrivals, report["peak_rss_bytes"])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return os.uname().machine


def summary(name: str, load: float, arrivals: list, peak_rss: int) -> dict:
    later = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1) if len(arrivals) > 1 else float("nan")
    return {
        "implementation": name,
        "load_seconds": round(load, 2),
        "chunks": len(arrivals),
        "time_to_first_chunk_seconds": round(arrivals[0], 3),
        "seconds_per_later_chunk": round(later, 3),
        "real_time_factor": round(later / 0.16, 2),
        "peak_rss_gb": round(peak_rss / 1e9, 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--voxcpm", default="target/release/voxcpm")
    ap.add_argument("--patches", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--side", choices=["both", "official"], default="both", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.side == "official":
        print(json.dumps(official(args.model, args.patches, args.steps, args.threads)))
        return
    # The official side runs in a child process, so its memory is gone before ours starts.
    child = subprocess.run(
        [sys.executable, __file__, "--model", args.model, "--patches", str(args.patches), "--steps", str(args.steps),
         "--threads", str(args.threads), "--side", "official"],
        check=True, capture_output=True, text=True,
    )
    rows = [json.loads(child.stdout.strip().splitlines()[-1]), ours(args.voxcpm, args.model, args.patches, args.steps, args.threads)]
    ratio = rows[0]["seconds_per_later_chunk"] / rows[1]["seconds_per_later_chunk"]
    first_ratio = rows[0]["time_to_first_chunk_seconds"] / rows[1]["time_to_first_chunk_seconds"]
    result = {
        "machine": cpu_model() + f", {os.cpu_count()} cpus",
        "patches": args.patches, "timesteps": args.steps, "threads": args.threads, "text": TEXT,
        "rows": rows,
        "speedup_per_patch": round(ratio, 2),
        "speedup_first_chunk": round(first_ratio, 2),
    }
    keys = ["implementation", "load_seconds", "time_to_first_chunk_seconds", "seconds_per_later_chunk", "real_time_factor", "peak_rss_gb"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    print(f"per-patch speedup {ratio:.2f}x, first-chunk speedup {first_ratio:.2f}x")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
