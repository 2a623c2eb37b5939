"""Random-weight checkpoint directories in the official layout, made and read by the official code.

Shared by generate.py (tiny, odd, demo, v1_tiny, v1_odd), make_fullsize_checkpoint.py (the
released shapes) and presets_v1.py; `flavour` (flavours.py) picks the v2 or the v1 classes.
Every small checkpoint is reloaded with the official `from_local` and checked against the model
that wrote it, and the goldens are then computed with the reloaded model, so they are exactly
what the official loader makes of the files.
"""

from __future__ import annotations

import contextlib
import json
import os

import torch
from safetensors.torch import save_file

from flavours import V2, Flavour
from instrument import injected_noise
from randomise import randomise_
from synthetic_tokenizer import write_tokenizer
from tensors import gen_for, randn


def checkpoint_dir(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, name, "checkpoint")


# the official loader reads model.safetensors if present, else pytorch_model.bin
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class _VocabOnlyTokenizer:
    """The model constructors only read `tokenizer.vocab` (for the multichar-CJK split table)."""

    def __init__(self, vocab):
        self.vocab = vocab


def official_model(config_dict: dict, vocab: dict, *, on_meta: bool = False, flavour: Flavour = V2):
    """The official model for `config_dict`, in eval mode, with its construction-time weights.
    `on_meta` builds all but the VAE on the meta device, so that a full-size model takes no memory
    until it is materialised one stack at a time."""
    config = flavour.config_cls.model_validate(json.loads(json.dumps(config_dict)))
    vae = flavour.make_vae(config_dict.get("audio_vae_config"))
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        model = flavour.model_cls(config, _VocabOnlyTokenizer(vocab), vae, device="cpu")
    return model.eval()


def load_official(ckpt: str, flavour: Flavour = V2, **kwargs):
    """A checkpoint directory as the official loader reads it."""
    return flavour.model_cls.from_local(ckpt, optimize=False, training=False, device="cpu", **kwargs)


def write_vae_config_tokenizer(out_dir: str, vae_state: dict, config_dict: dict, tok) -> None:
    """Everything of a checkpoint directory but model.safetensors, which each caller writes its own
    way (save_file here, a streaming writer for the full-size one)."""
    torch.save({"state_dict": vae_state}, os.path.join(out_dir, "audiovae.pth"))
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config_dict, f, indent=2)
        f.write("\n")
    write_tokenizer(tok, out_dir)


def save_checkpoint(model, config_dict: dict, tok, out_dir: str, lm_dtype=None, weights_file=WEIGHT_FILES[0]) -> None:
    """`weights_file` "pytorch_model.bin" writes the non-VAE tensors with torch.save as a flat
    state dict, the way the VoxCPM-0.5B release ships them."""
    os.makedirs(out_dir, exist_ok=True)
    others = [f for f in WEIGHT_FILES if f != weights_file and os.path.exists(os.path.join(out_dir, f))]
    assert not others, f"{out_dir} already holds {others}, which the official loader would read instead"
    sd = model.state_dict()
    lm_sd = {
        k: (v.to(lm_dtype) if lm_dtype is not None else v).contiguous().clone()
        for k, v in sd.items()
        if not k.startswith("audio_vae.")
    }
    path = os.path.join(out_dir, weights_file)
    if weights_file == "pytorch_model.bin":
        torch.save(lm_sd, path)
    else:
        save_file(lm_sd, path, metadata={"format": "pt"})
        os.chmod(path, 0o644)  # safetensors creates files 0600
    vae_sd = {k[len("audio_vae."):]: v.contiguous().clone() for k, v in sd.items() if k.startswith("audio_vae.")}
    write_vae_config_tokenizer(out_dir, vae_sd, config_dict, tok)


def build_and_save(cfg_dict: dict, tok, seed: int, out_dir: str, lm_bf16: bool = False, flavour: Flavour = V2,
                   weights_file=WEIGHT_FILES[0]):
    torch.manual_seed(seed)  # construction-time init (overwritten anyway)
    model = official_model(cfg_dict, tok.get_vocab(), flavour=flavour).float()
    randomise_(model, seed)
    if lm_bf16:
        # round the non-VAE weights to bf16 so that the f32 model in memory equals what the
        # official loader makes of the bf16 file (it casts back to the config dtype, float32)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if not name.startswith("audio_vae."):
                    p.copy_(p.to(torch.bfloat16).to(torch.float32))
    save_checkpoint(model, cfg_dict, tok, out_dir, lm_dtype=torch.bfloat16 if lm_bf16 else None, weights_file=weights_file)
    return model


def load_and_verify(out_dir: str, reference_model, flavour: Flavour = V2):
    """Load the written directory with the official loader and check it reproduces the in-memory
    model exactly (every state-dict entry, a prefill, one CFM patch and a VAE decode). The loader
    uses `load_state_dict(strict=False)`, so this is also what catches a missing or misnamed key."""
    loaded = load_official(out_dir, flavour).eval()
    ref_sd, new_sd = reference_model.state_dict(), loaded.state_dict()
    assert set(ref_sd) == set(new_sd), set(ref_sd) ^ set(new_sd)
    for k in ref_sd:
        assert ref_sd[k].dtype == new_sd[k].dtype, k
        assert torch.equal(ref_sd[k], new_sd[k]), f"state-dict mismatch after reload: {k}"
    g = gen_for(7)
    cfg = loaded.config
    x = randn(g, 1, 5, cfg.lm_config.hidden_size)
    with torch.inference_mode():
        a, _ = reference_model.base_lm(inputs_embeds=x, is_causal=True)
        b, _ = loaded.base_lm(inputs_embeds=x, is_causal=True)
        assert torch.equal(a, b)
        mu = randn(g, 1, flavour.mu_width(loaded))
        cond = randn(g, 1, cfg.feat_dim, cfg.patch_size)
        z = randn(g, 1, cfg.feat_dim, cfg.patch_size)
        with injected_noise(fixed=[z]):
            pa = reference_model.feat_decoder(mu=mu, n_timesteps=5, patch_size=cfg.patch_size, cond=cond, cfg_value=2.0)
        with injected_noise(fixed=[z]):
            pb = loaded.feat_decoder(mu=mu, n_timesteps=5, patch_size=cfg.patch_size, cond=cond, cfg_value=2.0)
        assert torch.equal(pa, pb)
        lat = randn(g, 1, cfg.feat_dim, 3)
        assert torch.equal(reference_model.audio_vae.decode(lat), loaded.audio_vae.decode(lat))
    return loaded


def make_checkpoint(cfg_dict: dict, tok, seed: int, out_dir: str, lm_bf16: bool = False, flavour: Flavour = V2,
                    weights_file=WEIGHT_FILES[0]):
    """Build, randomise and write a checkpoint, then return what the official loader makes of it."""
    model = build_and_save(cfg_dict, tok, seed, out_dir, lm_bf16, flavour, weights_file)
    return load_and_verify(out_dir, model, flavour)
