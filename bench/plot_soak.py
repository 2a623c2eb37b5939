#!/usr/bin/env python3
"""Plots the soak runs (bench/README.md, "Soak and churn") into one PNG.

    .venv-hosts/bin/python bench/plot_soak.py            # bench/soak-{runtime,bridge,plugin}-2core.json
    .venv-hosts/bin/python bench/plot_soak.py --out bench/soak-long-2core.png --title "Long soak runs" \
        bench/soak-runtime-10000-2core.json bench/soak-bridge-10000-2core.json bench/soak-plugin-2000-2core.json

One column per run: resident memory (MB) over requests or cycles, with the warm-up sample and
the +/-5 % band around it; the thread count below. Needs matplotlib (pip install matplotlib).
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
DEFAULT = [BENCH / f"soak-{mode}-2core.json" for mode in ("runtime", "bridge", "plugin")]
TITLES = {
    "runtime": "runtime Server (in process)",
    "bridge": "voxcpm bridge (child process)",
    "plugin": "plugin in clack-host (one process)",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=BENCH / "soak-2core.png")
    parser.add_argument("--title", default="Soak and churn on the demo checkpoint")
    args = parser.parse_args()
    runs = [json.loads(p.read_text()) for p in (args.files or DEFAULT) if p.exists()]
    if not runs:
        raise SystemExit("no soak JSON found")

    fig, axes = plt.subplots(
        2, len(runs), figsize=(5.2 * len(runs), 6.4), squeeze=False, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    for column, run in enumerate(runs):
        mode = run["mode"]
        step = "cycle" if mode == "plugin" else "request"
        samples = run["samples"]
        x = [s[step] for s in samples]
        rss = [s["rss_bytes"] / 1e6 for s in samples]
        anon = [s.get("rss_anon_bytes", 0) / 1e6 for s in samples]
        threads = [s["threads"] for s in samples]
        verdict = run["verdict"]

        top = axes[0][column]
        top.plot(x, rss, color="tab:blue", lw=1.4, label="RSS")
        if any(anon):
            top.plot(x, anon, color="tab:orange", lw=1.0, alpha=0.8, label="anonymous RSS")
        warm = verdict.get("warmup_rss_bytes")
        if warm:
            warm_mb = warm / 1e6
            limit = verdict.get("limit_pct", 5.0) / 100
            top.axhline(warm_mb, color="grey", lw=0.8, ls="--")
            top.axhspan(warm_mb * (1 - limit), warm_mb * (1 + limit), color="tab:green", alpha=0.08, label="±5 % of warm-up")
            top.axvline(verdict["warmup_step"], color="grey", lw=0.8, ls=":", label=f"warm-up ({verdict['warmup_step']})")
        result = "PASS" if verdict.get("pass") else "FAIL"
        drift = verdict.get("max_drift_pct")
        drift_text = f", max drift {drift:+.2f} %" if drift is not None else ""
        top.set_title(f"{TITLES.get(mode, mode)}\n{result}{drift_text}", fontsize=10)
        top.set_ylabel("resident memory (MB)")
        top.set_ylim(bottom=0, top=max(rss) * 1.15)
        top.grid(alpha=0.3)
        top.legend(fontsize=7, loc="lower right")

        bottom = axes[1][column]
        highest = max(threads + [1])
        if mode == "plugin":
            alive = [s.get("threads_while_alive", 0) for s in samples]
            highest = max(highest, *alive)
            bottom.step(x, alive, where="post", color="tab:red", lw=1.0, alpha=0.7, label="while the instance lives")
            bottom.step(x, threads, where="post", color="tab:purple", lw=1.2, label="after destroy")
            bottom.legend(fontsize=7, loc="lower right")
        else:
            label = "threads of the bridge process" if mode == "bridge" else "threads of the process"
            bottom.step(x, threads, where="post", color="tab:purple", lw=1.2, label=label)
            bottom.legend(fontsize=7, loc="lower right")
        bottom.set_ylabel("threads")
        bottom.set_xlabel("cycles" if mode == "plugin" else "requests")
        bottom.set_ylim(0, highest * 1.35)
        bottom.grid(alpha=0.3)

    date = runs[0].get("date", "")[:10]
    cpu = runs[0].get("machine", {}).get("cpu", "")
    cores = runs[0].get("machine", {}).get("cores", "?")
    fig.suptitle(f"{args.title}, {date}, {cpu} ({cores} cores)", fontsize=11)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
