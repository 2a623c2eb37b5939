"""Side-by-side speed of the official VoxCPM (PyTorch, CPU) and this engine, in one run.

The official class follows the checkpoint's config as the official loader (core.py) does:
`"architecture": "voxcpm2"` runs `VoxCPM2Model`, `"voxcpm"` or no key runs the v1 class
`VoxCPMModel` (VoxCPM-0.5B, VoxCPM1.5). The measurement is the same for both: a streamed line,
timed as a client sees it from the `generate_streaming` call.

Both stream the same zero-shot line for the same number of patches, with the same
timesteps, cfg and thread count, on the same checkpoint; each runs alone (the full-size model
needs ~16 GB in PyTorch f32, so two cannot share a 24 GB machine). Reported: load time, time
to first chunk, mean time of later chunks (one patch each), peak RSS, and each of our rows'
speed-up over the official f32 row (and over the official row of its own precision, when that
was run too).

    /opt/golden-venv/bin/python bench/compare_official.py --model /tmp/ckpt-full \
        --voxcpm target/release/voxcpm [--patches 6] [--threads 2] \
        [--ours f32,bf16] [--official f32[,bf16]] [--text TEXT] [--quiet-load 1.0] [--out bench/compare.json]

The official side needs the golden venv (tools/golden/README.md); the checkpoint comes from
`voxcpm make-checkpoint --preset full` (VoxCPM2) or `--preset voxcpm1.5` / `voxcpm-0.5b` (v1).

`--text` times another line than `voxcpm bench`'s own (which is fixed): our side then runs
`voxcpm say --stream -o -` and times the chunks as they reach its stdout, from the runtime's
"model ready" log line.

The machine may be shared: with `--quiet-load L` each run first waits (up to `--quiet-wait`
seconds) for the 1-minute load average to fall below L. Every row records the load average
(1, 5, 15 minutes) just before and just after it ran, and the CPU seconds that other processes
took while it ran (`other_processes_cores`: how many of the cores they held on average).
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
import threading
import time

TEXT = "This line measures how soon streamed speech starts."


DTYPES = {"f32": "float32", "bf16": "bfloat16"}


def architecture(model_dir: str) -> str:
    """"voxcpm2" or "voxcpm" (v1), read the way the official core.py reads it: absent means v1."""
    with open(os.path.join(model_dir, "config.json")) as f:
        name = str(json.load(f).get("architecture", "voxcpm")).lower()
    if name not in ("voxcpm", "voxcpm2"):
        raise SystemExit(f"{model_dir}: unknown architecture {name!r}")
    return name


def official_class(arch: str):
    """The official model class of an architecture (imported after the shims are in place)."""
    if arch == "voxcpm2":
        from voxcpm.model.voxcpm2 import VoxCPM2Model

        return VoxCPM2Model
    from voxcpm.model.voxcpm import VoxCPMModel

    return VoxCPMModel


def official(model_dir: str, text: str, patches: int, steps: int, threads: int, precision: str) -> dict:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "golden"))
    import golden_common

    golden_common.install_import_shims()
    import torch

    model_class = official_class(architecture(model_dir))
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
    model = model_class.from_local(run_dir, optimize=False, training=False, device="cpu").eval()
    load = time.perf_counter() - start
    arrivals = []
    with torch.inference_mode():
        start = time.perf_counter()
        for _chunk in model.generate_streaming(
            target_text=text, min_len=patches, max_len=patches, inference_timesteps=steps, cfg_value=2.0
        ):
            arrivals.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row = summary(f"official PyTorch {precision}", "official", precision, load, arrivals, rss, patch_seconds(model_dir))
    # The official track is the text's tokens plus one audio-start token.
    row.update({"class": model_class.__name__, "torch": torch.__version__, "text_tokens": len(model.text_tokenizer(text))})
    return row


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
    return summary(name, "ours", precision, report["load_seconds"], arrivals, report["peak_rss_bytes"],
                   patch_seconds(model_dir))


def ours_say(voxcpm: str, model_dir: str, text: str, patches: int, steps: int, threads: int, precision: str) -> dict:
    """Our side for a line other than `voxcpm bench`'s own: `voxcpm -v say TEXT --stream -o -`
    writes each chunk to stdout as it comes (flushed per chunk). Load = start to the runtime's
    "model ready" log line; a chunk arrives when its first byte does, timed from that line.
    Peak RSS is the child's VmHWM read at the last chunk."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [voxcpm, "-v", "say", text, "--stream", "-o", "-", "--model", model_dir, "--steps", str(steps),
           "--min-len", str(patches), "--max-len", str(patches), "--no-retry", "--seed", "0", "--precision", precision]
    chunk_bytes = 4 * patch_samples(model_dir)
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    ready, log = [], []

    def watch_stderr():
        for line in child.stderr:
            line = line.decode(errors="replace")
            log.append(line)
            if "model ready" in line and not ready:
                ready.append(time.perf_counter())

    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    arrivals, received, peak_rss = [], 0, 0
    while True:
        data = os.read(child.stdout.fileno(), 1 << 20)
        now = time.perf_counter()
        if not data:
            break
        received += len(data)
        while len(arrivals) * chunk_bytes < received:  # chunk k starts at byte k * chunk_bytes
            arrivals.append(now)
        peak_rss = max(peak_rss, vm_hwm(child.pid))
    child.wait()
    watcher.join()
    if child.returncode != 0 or not ready:
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{''.join(log)}")
    name = {"f32": "voxcpm-native (CPU, bf16 weights, f32 products)",
            "bf16": "voxcpm-native (CPU, bf16 weights, bf16 products)"}[precision]
    row = summary(name, "ours", precision, ready[0] - start, [t - ready[0] for t in arrivals], peak_rss,
                  patch_seconds(model_dir))
    row["via"] = "voxcpm say --stream"
    return row


def vm_hwm(pid: int) -> int:
    """A live process's peak resident memory in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def vae_config(model_dir: str) -> tuple:
    """(patch_size, decoder samples per latent frame, output rate) of a checkpoint; v1 configs
    without `audio_vae_config` (VoxCPM-0.5B) use the official `AudioVAE()` defaults."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    vae = config.get("audio_vae_config") or {"decoder_rates": [8, 8, 5, 2], "sample_rate": 16000}
    hop = 1
    for rate in vae["decoder_rates"]:
        hop *= rate
    patch = config.get("patch_size", 4 if architecture(model_dir) == "voxcpm2" else 2)
    return patch, hop, vae.get("out_sample_rate", vae["sample_rate"])


def patch_samples(model_dir: str) -> int:
    patch, hop, _rate = vae_config(model_dir)
    return patch * hop


def patch_seconds(model_dir: str) -> float:
    """Audio per patch: 0.16 s for VoxCPM2 and VoxCPM1.5, 0.08 s for VoxCPM-0.5B."""
    patch, hop, rate = vae_config(model_dir)
    return patch * hop / rate


def load_average() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_quiet(limit, max_wait: float) -> dict:
    """Waits (up to max_wait seconds) until the 1-minute load average is below limit."""
    start = time.monotonic()
    while limit is not None and os.getloadavg()[0] >= limit and time.monotonic() - start < max_wait:
        time.sleep(10)
    return {"waited_seconds": round(time.monotonic() - start), "load_before": load_average()}


def cpu_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat, without idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(run) -> dict:
    """`run()`'s row, with how busy the rest of the machine was meanwhile: the CPU seconds that
    processes other than this run (a child process) used, from the machine's busy time."""
    busy, ours, start = cpu_busy_seconds(), children_cpu_seconds(), time.perf_counter()
    row = run()
    wall = time.perf_counter() - start
    other = (cpu_busy_seconds() - busy) - (children_cpu_seconds() - ours)
    return dict(row, wall_seconds=round(wall, 1), other_processes_cpu_seconds=round(other, 1),
                other_processes_cores=round(other / wall, 2), load_after=load_average())


def checkpoint_bytes(model_dir: str) -> int:
    return sum(os.path.getsize(os.path.join(model_dir, n)) for n in os.listdir(model_dir)
               if os.path.isfile(os.path.join(model_dir, n)))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return os.uname().machine


def summary(name: str, side: str, precision: str, load: float, arrivals: list, peak_rss: int, patch_s: float) -> dict:
    later = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1) if len(arrivals) > 1 else float("nan")
    return {
        "implementation": name,
        "side": side,
        "precision": precision,
        "load_seconds": round(load, 2),
        "chunks": len(arrivals),
        "time_to_first_chunk_seconds": round(arrivals[0], 3),
        "seconds_per_later_chunk": round(later, 3),
        "real_time_factor": round(later / patch_s, 2),
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
    ap.add_argument("--text", default=TEXT, help="the line (another than `voxcpm bench`'s is timed through `voxcpm say`)")
    ap.add_argument("--ours", type=precisions, default=["f32", "bf16"], help="our precisions to run (f32,bf16)")
    ap.add_argument("--official", type=precisions, default=["f32"], help="official precisions to run (f32,bf16)")
    ap.add_argument("--quiet-load", type=float, help="wait before each run until the 1-minute load is below this")
    ap.add_argument("--quiet-wait", type=float, default=900, help="longest wait for --quiet-load, seconds")
    ap.add_argument("--out")
    ap.add_argument("--side", choices=["both", "official"], default="both", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.side == "official":
        print(json.dumps(official(args.model, args.text, args.patches, args.steps, args.threads, args.official[0])))
        return
    arch = architecture(args.model)
    rows = []
    for precision in args.official:
        quiet = wait_for_quiet(args.quiet_load, args.quiet_wait)

        def run_official():
            # Each official run is a child process, so its memory is gone before the next starts.
            child = subprocess.run(
                [sys.executable, __file__, "--model", args.model, "--patches", str(args.patches), "--steps",
                 str(args.steps), "--threads", str(args.threads), "--text", args.text, "--side", "official",
                 "--official", precision],
                check=True, capture_output=True, text=True,
            )
            return json.loads(child.stdout.strip().splitlines()[-1])

        rows.append(dict(measured(run_official), **quiet))
    for precision in args.ours:
        quiet = wait_for_quiet(args.quiet_load, args.quiet_wait)
        if args.text == TEXT:
            row = measured(lambda: ours(args.voxcpm, args.model, args.patches, args.steps, args.threads, precision))
        else:
            row = measured(
                lambda: ours_say(args.voxcpm, args.model, args.text, args.patches, args.steps, args.threads, precision))
        rows.append(dict(row, **quiet))
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": cpu_model() + f", {os.cpu_count()} cpus",
        "model": os.path.abspath(args.model),
        "architecture": arch,
        "checkpoint_bytes": checkpoint_bytes(args.model),
        "patches": args.patches, "timesteps": args.steps, "threads": args.threads, "text": args.text,
        "rows": rows,
        "speedups": speedups(rows),
    }
    keys = ["implementation", "load_seconds", "time_to_first_chunk_seconds", "seconds_per_later_chunk", "real_time_factor",
            "peak_rss_gb", "load_before", "other_processes_cores"]
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
