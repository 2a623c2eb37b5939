//! Keys of the other architecture's config class, written with values that would change what
//! the model computes.
//!
//! The official loader (pydantic) ignores keys its class does not have, and release configs
//! carry keys this engine does not read (`device`, `dtype`, `cfm_config`, VoxCPM2's
//! `dit_config.mean_mode`), so unknown keys are not refused. But a key of the other class set
//! to a value that would matter there means the file and its `architecture` disagree (a VoxCPM2
//! config without its `architecture` key, which reads as v1; a hand-edited v1 config): the
//! official code would silently compute a different model than the file describes, so the
//! engine refuses, naming the key and the architecture it belongs to. A value that changes
//! nothing there (`residual_lm_no_rope: false` in v1, an `out_sample_rate` equal to the v1
//! `sample_rate`) is accepted.
//!
//! Mean mode (`dit_mean_mode`, at the top level in v1 and in `dit_config` in v2) gives the DiT the
//! solver's step size as a second time input, which the engine's solver does not do (it always
//! passes 0, as both classes do without mean mode); no release turns it on, so `true` in its own
//! class's place is refused as unsupported rather than ignored.

use serde::Deserialize;

use super::{Architecture, AudioVaeConfig, present};

/// The keys that tell the two classes apart, as written.
#[derive(Deserialize)]
struct WrittenKeys {
    #[serde(default)]
    residual_lm_no_rope: Option<bool>,
    #[serde(default)]
    dit_mean_mode: Option<bool>,
    #[serde(default)]
    dit_config: Option<DitKeys>,
    #[serde(default)]
    audio_vae_config: Option<VaeKeys>,
}

#[derive(Deserialize)]
struct DitKeys {
    #[serde(default)]
    dit_mean_mode: Option<bool>,
}

#[derive(Deserialize)]
struct VaeKeys {
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    out_sample_rate: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    sr_bin_boundaries: Option<Option<Vec<u32>>>,
}

/// Every key of `config_text` that contradicts `architecture` (which the file declares, or
/// means by leaving `architecture` out when `declared` is false), each naming the key and the
/// architecture it belongs to; `Err` when a key has the wrong type.
pub(super) fn contradictions(
    config_text: &str,
    architecture: Architecture,
    declared: bool,
) -> Result<Vec<String>, String> {
    let mut json = serde_json::Deserializer::from_str(config_text);
    let keys: WrittenKeys = serde_path_to_error::deserialize(&mut json).map_err(|e| e.to_string())?;
    let (this, fix) = if declared {
        (format!("this config's architecture is \"{architecture}\""), "fix")
    } else {
        (format!("this config has no architecture key, which means \"{architecture}\""), "set")
    };
    let other = match architecture {
        Architecture::V1 => Architecture::V2,
        Architecture::V2 => Architecture::V1,
    };
    let other_class = |key: &str, value: &dyn std::fmt::Display, consequence: &str| {
        format!(
            "{key} = {value} belongs to a \"{other}\" config, but {this} ({consequence}); {fix} the architecture key \
             or remove {key}"
        )
    };
    let mut found = Vec::new();
    let dit_mean_mode = keys.dit_config.and_then(|dit| dit.dit_mean_mode);
    match architecture {
        Architecture::V1 => {
            if keys.residual_lm_no_rope == Some(true) {
                found.push(other_class("residual_lm_no_rope", &true, "a v1 residual LM always has RoPE"));
            }
            if let Some(vae) = keys.audio_vae_config {
                let input = vae.sample_rate.unwrap_or(AudioVaeConfig::class_default(architecture).sample_rate);
                if let Some(out) = vae.out_sample_rate.filter(|&out| out != input) {
                    let consequence = format!("a v1 AudioVAE decodes at its sample_rate, {input}");
                    found.push(other_class("audio_vae_config.out_sample_rate", &out, &consequence));
                }
                if let Some(Some(bounds)) = vae.sr_bin_boundaries {
                    let consequence = "a v1 AudioVAE has no output-rate conditioning";
                    found.push(other_class("audio_vae_config.sr_bin_boundaries", &format!("{bounds:?}"), consequence));
                }
            }
            if dit_mean_mode == Some(true) {
                found.push(other_class("dit_config.dit_mean_mode", &true, "v1 reads the top-level dit_mean_mode"));
            }
            if keys.dit_mean_mode == Some(true) {
                found.push(unsupported_mean_mode("dit_mean_mode"));
            }
        }
        Architecture::V2 => {
            if keys.dit_mean_mode == Some(true) {
                found.push(other_class("dit_mean_mode", &true, "VoxCPM2 reads dit_config.dit_mean_mode"));
            }
            if dit_mean_mode == Some(true) {
                found.push(unsupported_mean_mode("dit_config.dit_mean_mode"));
            }
        }
    }
    Ok(found)
}

fn unsupported_mean_mode(key: &str) -> String {
    format!("{key} = true is not supported (no released model uses the DiT's mean mode)")
}
