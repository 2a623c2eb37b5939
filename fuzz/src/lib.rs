//! Fuzz targets for every reader of outside input, and the in-process mutation fuzzer that
//! drives them (see README.md for why it is not cargo-fuzz / AFL, and the recorded runs).
//!
//! A target takes any bytes and returns normally, with `Ok` (a short summary of what was
//! read) or `Err` (the reader's error message); both summaries feed the fuzzer's only
//! feedback, "a new kind of outcome". A panic, an abort, or an execution longer than the
//! watchdog allows is a finding. Targets whose API takes a path write the input to a file in
//! a per-thread scratch folder (in /dev/shm where there is one).

pub mod campaign;
pub mod mutate;
pub mod rng;
pub mod seeds;

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock};

use mutate::{JsonHints, Parts};
use rng::Rng;
use voxcpm_engine::bridge::{FrameError, REQUEST_KEYS, decode_map, parse, read_frame, write_frame};
use voxcpm_engine::config::VoxCpmConfig;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::runtime::GenerateOptions;
use voxcpm_engine::tokenizer::TextTokenizer;
use voxcpm_engine::weights::WeightFile;
use voxcpm_plugin::project::{MAX_LINES, Project};

/// What one execution gave: `Ok(summary)` or `Err(message)`.
pub type Outcome = Result<String, String>;

/// A fuzz target: its entry point, its structure-aware mutator and its seeds.
pub struct Target {
    pub name: &'static str,
    /// What it feeds, for the README table.
    pub feeds: &'static str,
    pub run: fn(&[u8]) -> Outcome,
    /// `(rng, input, another corpus entry)` -> a mutated input.
    pub mutate: fn(&mut Rng, &[u8], &[u8]) -> Vec<u8>,
    pub seeds: fn() -> Vec<Vec<u8>>,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "safetensors",
        feeds: "WeightFile::open on a .safetensors file, then every tensor to f32 and bf16 bits",
        run: safetensors,
        mutate: mutate_safetensors,
        seeds: seeds::safetensors,
    },
    Target {
        name: "torch",
        feeds: "WeightFile::open on audiovae.pth / pytorch_model.bin (zip, legacy and tar torch files), then every tensor to f32",
        run: torch,
        mutate: mutate_torch,
        seeds: seeds::torch,
    },
    Target {
        name: "config",
        feeds: "VoxCpmConfig::load, then the resolved stacks, embedding scale and VAE hops",
        run: config,
        mutate: mutate_config,
        seeds: seeds::config,
    },
    Target {
        name: "tokenizer",
        feeds: "TextTokenizer::load (tokenizer.json + tokenizer_config.json), then encode of 6 texts",
        run: tokenizer,
        mutate: mutate_tokenizer,
        seeds: seeds::tokenizer,
    },
    Target {
        name: "wav",
        feeds: "audio_io::load_clip: any WAV read, mixed to mono, resampled to 16 kHz",
        run: wav,
        mutate: mutate_wav,
        seeds: seeds::wav,
    },
    Target {
        name: "script",
        feeds: "script::read_script_from (TSV and CSV) and the speech options of every line",
        run: script,
        mutate: mutate_script,
        seeds: seeds::script,
    },
    Target {
        name: "plugin_state",
        feeds: "the plugin's saved project (serde_json -> Project, lenient), and its round trip",
        run: plugin_state,
        mutate: mutate_plugin_state,
        seeds: seeds::plugin_state,
    },
    Target {
        name: "lora",
        feeds: "VoxCpm::load_lora (LoraAdapter::read + delta per linear layer) on the demo model",
        run: lora,
        mutate: mutate_lora,
        seeds: seeds::lora,
    },
    Target {
        name: "bridge",
        feeds: "bridge frames: read_frame until the stream ends, decode_map, protocol::parse",
        run: bridge,
        mutate: mutate_bridge,
        seeds: seeds::bridge,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The workspace root (seeds and the demo checkpoint are read from there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ sits in the workspace").to_owned()
}

// ---------------------------------------------------------------- scratch files

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static SCRATCH: Scratch = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = scratch_base().join(format!("voxcpm-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz scratch folder");
        Scratch(dir)
    };
}

/// Where scratch folders go: /dev/shm where there is one (no disk writes), else the temp dir.
pub fn scratch_base() -> PathBuf {
    if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
}

/// This thread's scratch folder, `<scratch_base>/voxcpm-fuzz-<pid>-<n>` (removed when the
/// thread ends; the main thread's must be removed by hand).
pub fn scratch_dir() -> PathBuf {
    SCRATCH.with(|s| s.0.clone())
}

fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, data).expect("writing a scratch file");
    path
}

fn message(e: impl std::fmt::Display) -> String {
    e.to_string()
}

// ---------------------------------------------------------------- weights

fn read_weights(path: &Path) -> Outcome {
    let file = WeightFile::open(path).map_err(message)?;
    let mut summary = format!("{} tensors", file.tensors.len().min(4));
    for (name, tensor) in &file.tensors {
        match tensor.to_f32() {
            Ok(values) => assert_eq!(values.len(), tensor.len(), "{name}: to_f32 gave the wrong count"),
            Err(e) => summary = format!("{summary}; {e}"),
        }
        if let Some(Ok(bits)) = tensor.bf16_bits() {
            assert_eq!(bits.len(), tensor.len(), "{name}: bf16_bits gave the wrong count");
        }
        tensor.release();
    }
    Ok(summary)
}

pub fn safetensors(data: &[u8]) -> Outcome {
    read_weights(&scratch_file("model.safetensors", data))
}

pub fn torch(data: &[u8]) -> Outcome {
    let name = if data.len().is_multiple_of(2) { "audiovae.pth" } else { "pytorch_model.bin" };
    read_weights(&scratch_file(name, data))
}

fn mutate_safetensors(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    mutate::mutate_safetensors(rng, data, other)
}

fn mutate_torch(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    mutate::mutate_torch(rng, data, other)
}

// ---------------------------------------------------------------- config

pub fn config(data: &[u8]) -> Outcome {
    let config = VoxCpmConfig::load(&scratch_file("config.json", data)).map_err(message)?;
    let stacks = [config.base_lm(), config.residual_lm(), config.loc_enc(), config.loc_dit()];
    let _ = (config.text_embed_scale(), config.audio_vae_config.encoder_hop(), config.audio_vae_config.decoder_hop());
    // Not the model's tensor inventory: it builds the model at the declared size (10 s for the
    // released shapes), which a config declaring a huge model rightly does.
    Ok(format!("{} stacks, {} layers", stacks.len(), config.lm_config.num_hidden_layers.min(3)))
}

const CONFIG_HINTS: JsonHints = JsonHints {
    keys: &[
        "architecture",
        "lm_config",
        "patch_size",
        "feat_dim",
        "residual_lm_num_layers",
        "scalar_quantization_latent_dim",
        "scalar_quantization_scale",
        "encoder_config",
        "dit_config",
        "audio_vae_config",
        "max_length",
        "hidden_size",
        "intermediate_size",
        "max_position_embeddings",
        "num_attention_heads",
        "num_hidden_layers",
        "num_key_value_heads",
        "rms_norm_eps",
        "rope_scaling",
        "vocab_size",
        "scale_emb",
        "scale_depth",
        "rope_theta",
        "kv_channels",
        "hidden_dim",
        "ffn_dim",
        "num_heads",
        "num_layers",
        "encoder_dim",
        "encoder_rates",
        "latent_dim",
        "decoder_dim",
        "decoder_rates",
        "sample_rate",
        "out_sample_rate",
        "sr_bin_boundaries",
        "long_factor",
        "short_factor",
        "original_max_position_embeddings",
        // Keys whose place tells the architectures apart (config/architecture_keys.rs).
        "residual_lm_no_rope",
        "dit_mean_mode",
        "use_mup",
    ],
    strings: &["voxcpm2", "voxcpm", "longrope", "scale_bias", "none"],
};

fn mutate_config(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    json_or_havoc(rng, data, other, &CONFIG_HINTS)
}

fn json_or_havoc(rng: &mut Rng, data: &[u8], other: &[u8], hints: &JsonHints) -> Vec<u8> {
    if !rng.one_in(8)
        && let Some(out) = mutate::mutate_json(rng, data, other, hints)
    {
        return out;
    }
    let mut out = data.to_vec();
    mutate::havoc(rng, &mut out, other, &[b"\"", b"{", b"}", b"[", b"]", b",", b":", b"1e400", b"-1"], 1 << 20);
    out
}

// ---------------------------------------------------------------- tokenizer

/// Texts encoded with every tokenizer that loads.
const TEXTS: [&str; 6] =
    ["Hello world.", "今天天气很好，我们去公园吧。", "", " leading space", "a\u{0}b\u{feff}", "🎉 x 123"];

pub fn tokenizer(data: &[u8]) -> Outcome {
    let parts = Parts::decode(data, 2);
    let path = scratch_file("tokenizer.json", parts[0]);
    let config = path.with_file_name("tokenizer_config.json");
    if parts[1].is_empty() {
        let _ = std::fs::remove_file(&config);
    } else {
        std::fs::write(&config, parts[1]).expect("writing a scratch file");
    }
    let tokenizer = TextTokenizer::load(&path).map_err(message)?;
    let mut summary = String::from("loaded");
    for text in TEXTS {
        match tokenizer.encode(text) {
            Ok(ids) => summary.push_str(if ids.is_empty() { " empty" } else { " ids" }),
            Err(e) => summary = format!("{summary}; {e}"),
        }
    }
    Ok(summary)
}

const TOKENIZER_HINTS: JsonHints = JsonHints {
    keys: &[
        "model",
        "vocab",
        "merges",
        "type",
        "normalizer",
        "pre_tokenizer",
        "decoder",
        "added_tokens",
        "unk_token",
        "byte_fallback",
        "fuse_unk",
        "dropout",
        "continuing_subword_prefix",
        "end_of_word_suffix",
        "ignore_merges",
        "id",
        "content",
        "special",
        "add_prefix_space",
        "legacy",
        "truncation",
        "padding",
        "post_processor",
        "version",
    ],
    strings: &[
        "BPE",
        "WordPiece",
        "Unigram",
        "WordLevel",
        "Metaspace",
        "ByteLevel",
        "Sequence",
        "Replace",
        "Prepend",
        "<unk>",
        "<s>",
        "\u{2581}",
        "\u{2581} a",
        "a b",
        "今天",
        "1.0",
    ],
};

fn mutate_tokenizer(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let parts = Parts::decode(data, 2);
    let others = Parts::decode(other, 2);
    let i = if rng.one_in(5) { 1 } else { 0 };
    let mutated = json_or_havoc(rng, parts[i], others[i], &TOKENIZER_HINTS);
    let mut parts: Vec<&[u8]> = parts;
    parts[i] = &mutated;
    Parts::encode(&parts)
}

// ---------------------------------------------------------------- wav

pub fn wav(data: &[u8]) -> Outcome {
    let samples = voxcpm_engine::audio_io::load_clip(&scratch_file("clip.wav", data), 16_000).map_err(message)?;
    Ok(if samples.is_empty() { "empty".into() } else { "samples".into() })
}

fn mutate_wav(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    mutate::mutate_wav(rng, data, other)
}

// ---------------------------------------------------------------- script

pub fn script(data: &[u8]) -> Outcome {
    let defaults = GenerateOptions::default();
    let mut summary = String::new();
    for delimiter in [b'\t', b','] {
        match voxcpm_engine::script::read_script_from(data, delimiter, Path::new("/scripts"), &defaults) {
            Err(e) => summary.push_str(&format!("[{e}]")),
            Ok(rows) => {
                let mut seen = std::collections::HashSet::new();
                for row in rows {
                    match row.line {
                        Ok(line) => {
                            assert!(seen.insert(line.id.clone()), "duplicate id {:?} accepted", line.id);
                            assert!(line.options.seed.is_some(), "a line without a seed");
                            if let Err(e) = line.options.speech.validate() {
                                summary.push_str(&format!("[{e}]"));
                            }
                        }
                        Err(e) => summary.push_str(&format!("[{e}]")),
                    }
                }
            }
        }
    }
    Ok(summary)
}

fn mutate_script(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    mutate::mutate_script(rng, data, other)
}

// ---------------------------------------------------------------- plugin state

pub fn plugin_state(data: &[u8]) -> Outcome {
    // nice-plug hands a persisted field over as a string and reads it with serde_json.
    let text = std::str::from_utf8(data).map_err(message)?;
    let project: Project = serde_json::from_str(text).map_err(message)?;
    assert!(project.lines.len() <= MAX_LINES, "{} lines kept", project.lines.len());
    let saved = serde_json::to_string(&project).expect("a project serialises");
    let again: Project = serde_json::from_str(&saved).expect("a saved project reads back");
    assert!(again.dropped.is_empty(), "a saved project reads back with losses: {:?}", again.dropped);
    assert_eq!(Project { dropped: Vec::new(), ..project.clone() }, again, "the round trip changed the project");
    Ok(format!("{} lines, {} dropped", project.lines.len().min(3), project.dropped.len().min(3)))
}

const PROJECT_HINTS: JsonHints = JsonHints {
    keys: &[
        "version",
        "lines",
        "text",
        "voice",
        "model",
        "export_dir",
        "takes",
        "chosen_seed",
        "prompt_wav",
        "prompt_text",
    ],
    strings: &["/ref.wav", "relative/v.wav", "Hello", ""],
};

fn mutate_plugin_state(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    json_or_havoc(rng, data, other, &PROJECT_HINTS)
}

// ---------------------------------------------------------------- lora

/// The weight file names an adapter folder may hold, chosen by the third part's first byte.
const LORA_WEIGHTS: [&str; 3] = ["lora_weights.safetensors", "lora_weights.ckpt", "lora_weights.pth"];

/// The demo model, loaded once per process (LoRA needs its layer names and shapes).
fn demo_model() -> &'static Mutex<VoxCpm> {
    static MODEL: OnceLock<Mutex<VoxCpm>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = repo_root().join("assets/demo-checkpoint");
        let model = VoxCpm::load(&dir, &voxcpm_engine::LoadOptions::default()).expect("loading the demo checkpoint");
        Mutex::new(model)
    })
}

pub fn lora(data: &[u8]) -> Outcome {
    let parts = Parts::decode(data, 3);
    let dir = scratch_dir().join("lora");
    std::fs::create_dir_all(&dir).expect("creating the adapter folder");
    for name in LORA_WEIGHTS {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let config = dir.join("lora_config.json");
    if parts[2].first() == Some(&b'-') {
        let _ = std::fs::remove_file(&config);
    } else {
        std::fs::write(&config, parts[0]).expect("writing a scratch file");
    }
    let weights = LORA_WEIGHTS[parts[2].first().map_or(0, |&b| b as usize % 3)];
    std::fs::write(dir.join(weights), parts[1]).expect("writing a scratch file");
    // A panic inside load_lora poisons the lock; the next execution still gets the model.
    let mut model = demo_model().lock().unwrap_or_else(|p| p.into_inner());
    let result = model.load_lora(&dir);
    model.unload_lora();
    let (loaded, skipped) = result.map_err(message)?;
    Ok(format!("{} loaded, {} skipped", loaded.min(2), skipped.min(2)))
}

const LORA_HINTS: JsonHints = JsonHints {
    keys: &["r", "alpha", "lora_config", "dropout", "enable_lm", "enable_dit", "target_modules_lm"],
    strings: &["q_proj", "v_proj"],
};

fn mutate_lora(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let parts = Parts::decode(data, 3);
    let others = Parts::decode(other, 3);
    let mut parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    match rng.below(10) {
        0..=3 => parts[0] = json_or_havoc(rng, &parts[0], others[0], &LORA_HINTS),
        4..=8 => parts[1] = mutate::mutate_safetensors(rng, &parts[1], others[1]),
        _ => parts[2] = vec![*rng.pick(&[0u8, 1, 2, b'-'])],
    }
    Parts::encode(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

// ---------------------------------------------------------------- bridge

pub fn bridge(data: &[u8]) -> Outcome {
    let mut input = data;
    let mut summary = String::new();
    loop {
        match read_frame(&mut input) {
            Ok(payload) => match decode_map(&payload) {
                Ok(map) => {
                    // What decodes re-encodes to a frame that decodes to the same map.
                    let value = rmpv::Value::Map(map.iter().map(|(k, v)| (k.as_str().into(), v.clone())).collect());
                    let mut framed = Vec::new();
                    write_frame(&mut framed, &value).expect("writing to memory");
                    let again = decode_map(&read_frame(&mut &framed[..]).expect("a written frame reads back"))
                        .expect("a written frame decodes");
                    // Compared as bytes: NaN != NaN as a value.
                    let again = rmpv::Value::Map(again.into_iter().map(|(k, v)| (k.into(), v)).collect());
                    let mut reframed = Vec::new();
                    write_frame(&mut reframed, &again).expect("writing to memory");
                    assert!(framed == reframed, "a frame did not survive its round trip");
                    match parse(map) {
                        Ok(request) => summary.push_str(&format!("[{}]", kind_of(&request))),
                        Err(e) => summary.push_str(&format!("[{e}]")),
                    }
                }
                Err(FrameError::BadPayload(e)) => summary.push_str(&format!("[{e}]")),
                Err(other) => panic!("decode_map gave {other:?}"),
            },
            Err(FrameError::Eof) => return Ok(summary),
            Err(FrameError::Fatal(e)) => return Err(format!("{summary}[{e}]")),
            Err(FrameError::BadPayload(e)) => panic!("read_frame judged a payload: {e}"),
        }
    }
}

fn kind_of(request: &voxcpm_engine::bridge::Request) -> String {
    let text = format!("{request:?}");
    text.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_owned()
}

/// The request keys, `type`, and a request type where a key is expected.
static BRIDGE_KEYS: LazyLock<Vec<&str>> =
    LazyLock::new(|| REQUEST_KEYS.into_iter().chain(["type", "generate"]).collect());

fn mutate_bridge(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    mutate::mutate_frames(rng, data, other, &BRIDGE_KEYS)
}
