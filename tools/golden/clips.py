"""The audio clips the pipeline cases feed to the official `generate` as wav files.

They are synthetic (harmonic tones, seeded noise), so no recording has to ship, and they are
written as float wavs that `librosa.load` gives back bit-exactly, so the case's stored samples are
exactly what the official code encoded.
"""

from __future__ import annotations

import librosa
import numpy as np
import soundfile


def synth_audio(n_samples: int, seed: int, sr: int) -> np.ndarray:
    """Deterministic test clip: three harmonic tones (4 partials each) under a smooth envelope,
    plus a little seeded noise, peak 0.45. Returned as float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples, dtype=np.float64) / sr
    x = np.zeros(n_samples, dtype=np.float64)
    for _ in range(3):
        f0 = rng.uniform(110.0, 420.0)
        phases = rng.uniform(0.0, 2.0 * np.pi, size=4)
        for k in range(1, 5):
            if k * f0 < 0.45 * sr:
                x += 0.6**k * np.sin(2.0 * np.pi * k * f0 * t + phases[k - 1])
    u = np.arange(n_samples, dtype=np.float64) / max(n_samples - 1, 1)
    env = (0.25 + 0.75 * np.sin(np.pi * u) ** 2) * (1.0 + 0.2 * np.sin(2.0 * np.pi * 3.0 * u + rng.uniform(0, 6.0)))
    x = x * env + 0.02 * rng.standard_normal(n_samples)
    x *= 0.45 / np.abs(x).max()
    return x.astype(np.float32)


def write_wav_exact(path: str, audio: np.ndarray, sr: int) -> None:
    """32-bit float mono wav; librosa.load (what _encode_wav calls) must give it back bit-exactly."""
    soundfile.write(path, audio, sr, subtype="FLOAT")
    back, back_sr = librosa.load(path, sr=sr, mono=True)
    assert back_sr == sr and back.dtype == np.float32 and back.shape == audio.shape, (back.dtype, back.shape)
    assert np.array_equal(back, audio), "librosa did not load the wav back bit-exactly"
