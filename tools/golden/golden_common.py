"""The import shim that every script using the official `voxcpm` package installs first.

generate.py, make_fullsize_checkpoint.py and bench/compare_official.py call
`install_import_shims()` before they import torch or voxcpm.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types


def _load_float_wav(path, *_a, **_k):
    """What `torchaudio.load` returns for the float32 WAVs the v1 pipeline cases write:
    (float32 tensor [channels, frames] holding the file's samples unchanged, sample rate)."""
    import soundfile
    import torch

    data, sr = soundfile.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), sr


def install_import_shims() -> None:
    """`import voxcpm` pulls in `voxcpm.core` -> `voxcpm.model.voxcpm` (V1) which does a top-level
    `import torchaudio`. The V1 model only uses it to load prompt wavs (`torchaudio.load`) and to
    resample them when their rate is not the VAE's; no torchaudio wheel matches the CUDA build of
    torch 2.15 in the venv, so when the real package cannot be imported we register a stand-in
    whose `load` reads the file with soundfile (bit-identical to torchaudio.load for the float32
    WAVs written here, which are already at the VAE rate) and whose other functions refuse to run.
    """
    try:
        import torchaudio  # noqa: F401
        return
    except Exception:
        pass
    stub = types.ModuleType("torchaudio")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    stub.__version__ = "0.0.0-golden-stub"

    def _unavailable(*_a, **_k):
        raise RuntimeError("torchaudio stub: not available in the golden venv")

    stub.load = _load_float_wav
    stub.functional = types.SimpleNamespace(resample=_unavailable, loudness=_unavailable, gain=_unavailable)
    sys.modules["torchaudio"] = stub
