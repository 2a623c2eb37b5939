"""Side-by-side speed of the official VoxCPM2 (PyTorch, CPU) and this engine, in one run.

Both stream the same zero-shot line for the same number of patches, with the same
timesteps, cfg and thread count, on the same checkpoint; each runs alone (the full-size model
needs ~16 GB in PyTorch f32, so two cannot share a 24 GB machine). Reported: load time, time
to first chunk, mean time of later chunks (one patch each), peak RSS, and each of our rows'
speed-up over the official f32 row (and over the official row of its own precision, when that
was run too).

    /opt/golden-venv/bin/python bench/compare_official.py --model /tmp/ckpt-full \
        --voxcpm target/release/voxcpm [--patches 6] [--threads 2] \
        [--ours f32,bf16] [--official f32[,bf16]] [--out bench/compare.json]

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


DTYPES = {"f32": "float32", "bf16": "bfloat16"}


def official(model_dir: str, patches: int, steps: int, threads: int, precision: str) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "golden"))
    import golden_common

    golden_common.install_import_shims()
    import torch
    from voxcpm.model.voxcpm2 import VoxCPM2Model

    torch.set_num_threads(threads)
    # The official code takes its compute dtype (weights, inputs, KV caches) from the config's
    # `dtype`, so it reads a copy of the directory whose config names the precision asked for
    # (the weight files are linked, not copied).
    run_dir = tempfile.mkdtemp(prefix=f"voxcpm-{precision}-")
    atexit.register(shutil.rmtree, run_dir, True)
    for name in os.listdir(model_dir):
        if name != "config.json":
            os.symlink(os.path.abspath(os.path.join(model_dir, name)), os.path.join(run_dir, name))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = DTYPES[precision]
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config, f)
    start = time.perf_counter()
    model = VoxCPM2Model.from_local(run_dir, optimize=False, training=False, device="cpu").eval()
    load = time.perf_counter() - start
    arrivals = []
    with torch.inference_mode():
        start = time.perf_counter()
        for _chunk in model.generate_streaming(
            target_text=TEXT, min_len=patches, max_len=patches, inference_timesteps=steps, cfg_value=2.0
        ):
            arrivals.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return summary(f"official PyTorch {precision}", "official", precision, load, arrivals, rss)


def ours(voxcpm: str, model_dir: str, patches: int, steps: int, threads: int, precision: str) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [voxcpm, "bench", "--model", model_dir, "--steps", str(steps), "--runs", "1", "--stream-patches", str(patches),
           "--precision", precision]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    s = report["streaming"]
    first, later = s["time_to_first_chunk_seconds"], s["seconds_per_later_chunk"]
    arrivals = [first + i * later for i in range(s["chunks"])]
    name = {"f32": "voxcpm-native (CPU, bf16 weights, f32 products)",
            "bf16": "voxcpm-native (CPU, bf16 weights, bf16 products)"}[precision]
    return summary(name, "ours", precision, report["load_seconds"], arrivals, report["peak_rss_bytes"])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return os.uname().machine


def summary(name: str, side: str, precision: str, load: float, arrivals: list, peak_rss: int) -> dict:
    later = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1) if len(arrivals) > 1 else float("nan")
    return {
        "implementation": name,
        "side": side,
        "precision": precision,
        "load_seconds": round(load, 2),
        "chunks": len(arrivals),
        "time_to_first_chunk_seconds": round(arrivals[0], 3),
        "seconds_per_later_chunk": round(later, 3),
        "real_time_factor": round(later / 0.16, 2),
        "peak_rss_gb": round(peak_rss / 1e9, 2),
    }


def precisions(text: str) -> list:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"precisions are f32 and bf16, not {text!r}")
    return names


def speedups(rows: list) -> list:
    """Each of our rows against the official f32 row and the official row of its precision."""
    official_rows = {row["precision"]: row for row in rows if row["side"] == "official"}
    out = []
    for row in (r for r in rows if r["side"] == "ours"):
        bases = [official_rows.get("f32")]
        if row["precision"] != "f32":
            bases.append(official_rows.get(row["precision"]))
        for base in (b for b in bases if b is not None):
            out.append({
                "ours": row["implementation"],
                "against": base["implementation"],
                "per_patch": round(base["seconds_per_later_chunk"] / row["seconds_per_later_chunk"], 2),
                "first_chunk": round(base["time_to_first_chunk_seconds"] / row["time_to_first_chunk_seconds"], 2),
                # The target: the first chunk within 1.5x of one steady-state patch.
                "first_chunk_in_patches": round(row["time_to_first_chunk_seconds"] / row["seconds_per_later_chunk"], 2),
            })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--voxcpm", default="target/release/voxcpm")
    ap.add_argument("--patches", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours", type=precisions, default=["f32", "bf16"], help="our precisions to run (f32,bf16)")
    ap.add_argument("--official", type=precisions, default=["f32"], help="official precisions to run (f32,bf16)")
    ap.add_argument("--out")
    ap.add_argument("--side", choices=["both", "official"], default="both", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.side == "official":
        print(json.dumps(official(args.model, args.patches, args.steps, args.threads, args.official[0])))
        return
    rows = []
    for precision in args.official:
        # Each official run is a child process, so its memory is gone before the next starts.
        child = subprocess.run(
            [sys.executable, __file__, "--model", args.model, "--patches", str(args.patches), "--steps", str(args.steps),
             "--threads", str(args.threads), "--side", "official", "--official", precision],
            check=True, capture_output=True, text=True,
        )
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    for precision in args.ours:
        rows.append(ours(args.voxcpm, args.model, args.patches, args.steps, args.threads, precision))
    result = {
        "machine": cpu_model() + f", {os.cpu_count()} cpus",
        "patches": args.patches, "timesteps": args.steps, "threads": args.threads, "text": TEXT,
        "rows": rows,
        "speedups": speedups(rows),
    }
    keys = ["implementation", "load_seconds", "time_to_first_chunk_seconds", "seconds_per_later_chunk", "real_time_factor", "peak_rss_gb"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    for s in result["speedups"]:
        print(f"{s['ours']} against {s['against']}: per patch {s['per_patch']}x, first chunk {s['first_chunk']}x "
              f"(first chunk = {s['first_chunk_in_patches']} patches)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
