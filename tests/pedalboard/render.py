"""Renders the bundled VoxCPM.vst3 in pedalboard (JUCE's VST3 host) for the host tests.

Usage: render.py PLUGIN.vst3 OUT.f32 RATE SECONDS NOTE_TIME [KEY]

Loads the plugin, plays one note-on at NOTE_TIME seconds and writes the stereo output as raw
little-endian float32 frames (left, right). Prints a JSON summary of what the host saw.
"""

import json
import sys

import mido
import numpy as np
from pedalboard import load_plugin


def main() -> None:
    plugin_path, out_path = sys.argv[1], sys.argv[2]
    rate, seconds, note_time = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    key = int(sys.argv[6]) if len(sys.argv) > 6 else 60
    plugin = load_plugin(plugin_path)
    notes = [mido.Message("note_on", note=key, velocity=100, time=note_time)]
    audio = plugin(notes, duration=seconds, sample_rate=rate, num_channels=2)
    np.ascontiguousarray(audio.T, dtype="<f4").tofile(out_path)
    print(json.dumps({
        "is_instrument": bool(plugin.is_instrument),
        "parameters": sorted(plugin.parameters.keys()),
        "shape": list(audio.shape),
        "peak": float(np.abs(audio).max()),
    }))


if __name__ == "__main__":
    main()
