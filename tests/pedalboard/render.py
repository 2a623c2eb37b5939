"""Renders the bundled VoxCPM.vst3 in pedalboard (JUCE's VST3 host) for the host tests.

Usage: render.py PLUGIN.vst3 OUT.f32 RATE SECONDS NOTE_TIME [KEY]
                 [--velocity 0-127] [--off SECONDS] [--set PARAMETER=VALUE ...]

Loads the plugin, sets the parameters given, plays one note-on at NOTE_TIME seconds (and its
note-off at --off seconds, if given) and writes the stereo output as raw little-endian float32
frames (left, right). Prints a JSON summary of what the host saw.
"""

import argparse
import json

import mido
import numpy as np
from pedalboard import load_plugin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("plugin")
    parser.add_argument("out")
    parser.add_argument("rate", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("note_time", type=float)
    parser.add_argument("key", type=int, nargs="?", default=60)
    parser.add_argument("--velocity", type=int, default=100)
    parser.add_argument("--off", type=float)
    parser.add_argument("--set", action="append", default=[], metavar="PARAMETER=VALUE")
    args = parser.parse_args()

    plugin = load_plugin(args.plugin)
    for assignment in args.set:
        name, value = assignment.split("=", 1)
        setattr(plugin, name, value)
    notes = [mido.Message("note_on", note=args.key, velocity=args.velocity, time=args.note_time)]
    if args.off is not None:
        notes.append(mido.Message("note_off", note=args.key, velocity=64, time=args.off))
    audio = plugin(notes, duration=args.seconds, sample_rate=args.rate, num_channels=2)
    np.ascontiguousarray(audio.T, dtype="<f4").tofile(args.out)
    print(json.dumps({
        "is_instrument": bool(plugin.is_instrument),
        "parameters": sorted(plugin.parameters.keys()),
        "shape": list(audio.shape),
        "peak": float(np.abs(audio).max()),
    }))


if __name__ == "__main__":
    main()
