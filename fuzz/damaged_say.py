#!/usr/bin/env python3
"""Damaged-checkpoint campaign: `voxcpm say` on the demo checkpoint with one file damaged.

Each run copies assets/demo-checkpoint, damages one file (bit flips, truncation, a huge
declared length, an edited JSON value), runs `voxcpm say` and sorts the outcome:

  audio        exit 0 and a WAV whose samples are all finite
  clear error  exit non-zero, one line on stderr naming a file or key (a weight file that
               contradicts its config lists each tensor below it), no panic text
  BAD          anything else: NaN/Inf audio, a panic message, a backtrace hint, several
               lines, a crash by signal, or a hang (60 s)

Usage: damaged_say.py VOXCPM_BINARY [--runs N] [--seed S] [--json OUT]
"""

import argparse
import collections
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "assets", "demo-checkpoint")
FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "audiovae.pth"]
BOUNDARY = [0, -1, 1, 2, 3, 7, 1e-30, 1e30, -1e30, 1e308, 2**31, 2**32, 2**53, 2**63, 2**64 - 1,
            9223372036854775808, 0.5, "x", None, True, [], {}]


def flip_bits(data, rng):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(data, rng):
    return data[: rng.randrange(len(data))]


def huge_length(data, rng):
    """A length field set huge: safetensors' header size, a zip entry's sizes, or a random
    little-endian u32/u64 somewhere in the first kilobyte."""
    data = bytearray(data)
    huge = rng.choice([2**31 - 1, 2**32 - 1, 2**40, 2**63 - 1, 2**64 - 1])
    if data[:2] == b"PK":
        offsets = [i for i in range(len(data) - 30) if data[i:i + 4] == b"PK\x03\x04"]
        if offsets:
            at = rng.choice(offsets) + rng.choice([18, 22])  # compressed / uncompressed size
            data[at:at + 4] = struct.pack("<I", huge & 0xFFFFFFFF)
            return bytes(data)
    if len(data) >= 8 and not data.lstrip()[:1] in (b"{", b"["):
        data[0:8] = struct.pack("<Q", huge)
        return bytes(data)
    at = rng.randrange(max(1, min(len(data) - 8, 1024)))
    data[at:at + 8] = struct.pack("<Q", huge)
    return bytes(data)


def edit_json(data, rng):
    """One value anywhere in the JSON replaced by a boundary value (or the key removed)."""
    try:
        root = json.loads(data)
    except ValueError:
        return flip_bits(data, rng)
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node[:8]):
                paths.append(path + [i])
                walk(v, path + [i])

    walk(root, [])
    if not paths:
        return data
    path = rng.choice(paths)
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(BOUNDARY)
    return json.dumps(root).encode()


def damage(name, data, rng):
    kinds = [flip_bits, truncate, huge_length]
    if name.endswith(".json"):
        kinds += [edit_json, edit_json, edit_json]
    kind = rng.choice(kinds)
    return kind.__name__, kind(data, rng)


def wav_is_finite(path):
    with open(path, "rb") as f:
        data = f.read()
    at = data.find(b"data")
    if at < 0:
        return False
    size = struct.unpack("<I", data[at + 4:at + 8])[0]
    samples = data[at + 8:at + 8 + size]
    values = struct.unpack(f"<{len(samples) // 4}f", samples[: len(samples) // 4 * 4])
    return all(math.isfinite(v) for v in values)


def classify(result, wav):
    stderr = result.stderr.decode(errors="replace").strip()
    if result.returncode == 0:
        if os.path.exists(wav) and wav_is_finite(wav):
            return "audio", ""
        return "BAD", "exit 0 with non-finite or missing audio"
    if result.returncode < 0:
        return "BAD", f"killed by signal {-result.returncode}"
    lines = [l for l in stderr.splitlines() if l.strip()]
    for marker in ("panicked", "internal error", "RUST_BACKTRACE", "stack backtrace"):
        if marker in stderr:
            return "BAD", stderr[-400:]
    # One error line; a checkpoint that contradicts its config lists each tensor below it.
    if not lines or not lines[0].startswith("error:") or (len(lines) > 1 and "does not match" not in lines[0]):
        return "BAD", "not one error line: " + stderr[-400:]
    if os.path.exists(wav):
        return "BAD", "failed but left " + wav
    return "clear error", lines[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    originals = {name: open(os.path.join(DEMO, name), "rb").read() for name in FILES}
    counts = collections.Counter()
    bad = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        shutil.copytree(DEMO, model)
        wav = os.path.join(tmp, "out.wav")
        for run in range(args.runs):
            name = rng.choice(FILES)
            kind, data = damage(name, originals[name], rng)
            with open(os.path.join(model, name), "wb") as f:
                f.write(data)
            if os.path.exists(wav):
                os.remove(wav)
            command = [args.binary, "say", "Hello there, a damaged model.", "--model", model,
                       "--max-len", "20", "--seed", str(run), "-o", wav]
            stream = rng.random() < 0.3
            if stream:
                command.append("--stream")
                kind += " --stream"
            env = dict(os.environ)
            env.pop("RUST_BACKTRACE", None)
            try:
                result = subprocess.run(command, capture_output=True, timeout=60, env=env)
                outcome, detail = classify(result, wav)
            except subprocess.TimeoutExpired:
                outcome, detail = "BAD", "hang (60 s)"
            counts[(name, kind, outcome)] += 1
            if outcome == "BAD":
                keep = os.path.join(ROOT, "fuzz", "findings", "damaged_say", f"{run}-{name}")
                os.makedirs(os.path.dirname(keep), exist_ok=True)
                with open(keep, "wb") as f:
                    f.write(data)
                bad.append({"run": run, "file": name, "kind": kind, "detail": detail, "saved": keep})
                print(f"BAD run {run} {name} {kind}: {detail}", file=sys.stderr)
            with open(os.path.join(model, name), "wb") as f:
                f.write(originals[name])
    summary = {
        "runs": args.runs,
        "seed": args.seed,
        "seconds": round(time.time() - started, 1),
        "outcomes": collections.Counter(o for (_, _, o) in counts.elements()),
        "by_file": {f"{n} {k} {o}": c for (n, k, o), c in sorted(counts.items())},
        "bad": bad,
    }
    text = json.dumps(summary, indent=1, default=dict)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
