//! Seed inputs: the demo checkpoint's files, the engine's test fixtures, small files built here
//! with the engine's own writers, and the example scripts and states of the existing tests.

use rmpv::Value;
use serde_json::json;
use voxcpm_engine::testkit::synthetic::{Preset, preset_config};

use crate::mutate::Parts;
use crate::repo_root;

fn read(relative: &str) -> Vec<u8> {
    let path = repo_root().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()))
}

/// A safetensors file of small tensors in every stored type the engine reads, one it does not,
/// and a metadata entry.
fn small_safetensors() -> Vec<u8> {
    let tensors: [(&str, &str, Vec<usize>, usize); 8] = [
        ("a.weight", "F32", vec![2, 3], 4),
        ("b.weight", "F16", vec![4], 2),
        ("c.weight", "BF16", vec![2, 2], 2),
        ("d", "F64", vec![1], 8),
        ("e", "I32", vec![3], 4),
        ("f", "I64", vec![], 8),
        ("g", "U8", vec![5], 1),
        ("h.empty", "F32", vec![0, 7], 4),
    ];
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({ "format": "pt" }));
    let mut data = Vec::new();
    for (name, dtype, shape, width) in tensors {
        let bytes = shape.iter().product::<usize>() * width;
        header.insert(
            name.into(),
            json!({ "dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes] }),
        );
        data.extend((0..bytes).map(|i| (i * 37 % 251) as u8));
    }
    let mut header = serde_json::to_vec(&header).expect("JSON");
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

pub fn safetensors() -> Vec<Vec<u8>> {
    vec![
        small_safetensors(),
        read("engine/tests/fixtures/odd/case_default.safetensors"),
        read("engine/tests/fixtures/odd/modules.safetensors"),
        read("engine/tests/fixtures/tiny/lora/lora_weights.safetensors"),
        read("assets/demo-checkpoint/model.safetensors"),
    ]
}

/// A state dict of a few small float and int tensors, written by the engine's torch-zip writer:
/// a cheap seed, so that most executions run on a few kilobytes.
fn small_state_dict() -> Vec<u8> {
    use voxcpm_engine::testkit::synthetic::pth::{PthTensor, write_state_dict};
    let dir = std::env::temp_dir().join(format!("voxcpm-fuzz-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a seed folder");
    let path = dir.join("small.pth");
    let tensors = [
        PthTensor::float32("layer.weight_v", &[4, 2, 3], (0..24).map(|i| i as f32 * 0.1).collect()),
        PthTensor::float32("layer.weight_g", &[4, 1, 1], vec![1.0; 4]),
        PthTensor::float32("layer.bias", &[4], vec![0.5; 4]),
        PthTensor::int32("decoder.sr_bin_boundaries", &[3], vec![20_000, 30_000, 40_000]),
    ];
    write_state_dict(&path, &tensors).expect("writing a seed");
    let bytes = std::fs::read(&path).expect("reading a seed");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// A small state dict, the odd fixture's VAE (170 kB), the demo's (500 kB) and the v1_tiny
/// fixture's `pytorch_model.bin` (370 kB: a flat dict, as `torch.save` wrote the VoxCPM-0.5B
/// release; its odd length names it `pytorch_model.bin` in the target), all in the zip layout
/// `torch.save` writes today. Legacy and tar torch files (which no VoxCPM release uses) are
/// reached only through the mutators.
pub fn torch() -> Vec<Vec<u8>> {
    vec![
        small_state_dict(),
        read("engine/tests/fixtures/odd/checkpoint/audiovae.pth"),
        read("assets/demo-checkpoint/audiovae.pth"),
        read("engine/tests/fixtures/v1_tiny/checkpoint/pytorch_model.bin"),
    ]
}

/// VoxCPM2 configs (the demo's, `odd`'s, the `mid` and `full` presets) and v1 ones: `v1_odd`'s
/// (no `architecture` key) and the VoxCPM-0.5B (no `audio_vae_config`) and VoxCPM1.5 presets.
pub fn config() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        read("assets/demo-checkpoint/config.json"),
        read("engine/tests/fixtures/odd/checkpoint/config.json"),
        read("engine/tests/fixtures/v1_odd/checkpoint/config.json"),
    ];
    for preset in [Preset::Mid, Preset::Full, Preset::VoxCpm05B, Preset::VoxCpm15] {
        seeds.push(serde_json::to_vec_pretty(&preset_config(preset)).expect("JSON"));
    }
    seeds
}

pub fn tokenizer() -> Vec<Vec<u8>> {
    let json = read("assets/demo-checkpoint/tokenizer.json");
    let config = read("assets/demo-checkpoint/tokenizer_config.json");
    vec![
        Parts::encode(&[&json, &config]),
        Parts::encode(&[&json, b""]),
        Parts::encode(&[&json, br#"{"legacy": true, "add_prefix_space": true}"#]),
        Parts::encode(&[&json, br#"{"add_prefix_space": false}"#]),
    ]
}

fn hound_wav(spec: hound::WavSpec, frames: usize) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).expect("a WAV writer");
    for i in 0..frames * spec.channels as usize {
        let x = (i as f32 * 0.07).sin() * 0.5;
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, _) => writer.write_sample(x).expect("in memory"),
            (_, 8) => writer.write_sample((x * 127.0) as i8).expect("in memory"),
            (_, 16) => writer.write_sample((x * 32767.0) as i16).expect("in memory"),
            (_, bits) => writer.write_sample((x * ((1u32 << (bits - 1)) - 1) as f32) as i32).expect("in memory"),
        }
    }
    writer.finalize().expect("in memory");
    out.into_inner()
}

pub fn wav() -> Vec<Vec<u8>> {
    use hound::SampleFormat::{Float, Int};
    let tone: Vec<f32> = (0..480).map(|i| (i as f32 * 0.05).sin() * 0.4).collect();
    let spec = |channels, sample_rate, bits_per_sample, sample_format| hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample,
        sample_format,
    };
    vec![
        voxcpm_engine::wav::encode_pcm16(&tone, 48_000),
        voxcpm_engine::wav::encode_float(&tone, 16_000),
        hound_wav(spec(1, 16_000, 16, Int), 300),
        hound_wav(spec(2, 22_050, 8, Int), 200),
        hound_wav(spec(1, 44_100, 24, Int), 300),
        hound_wav(spec(2, 8_000, 32, Int), 100),
        hound_wav(spec(2, 48_000, 32, Float), 200),
        hound_wav(spec(3, 16_000, 16, Int), 100), // written as WAVE_FORMAT_EXTENSIBLE
        read("engine/tests/fixtures/speech_16k.wav"),
    ]
}

pub fn script() -> Vec<Vec<u8>> {
    let mut invalid = b"id\ttext\none\tI have 2 cats.\nbad\tcaf".to_vec();
    invalid.extend(b"\xe9\n");
    vec![
        "id\ttext\tvoice\tseed\tmax_len\n\
         intro\thello world\t\t\t\n\
         broken\tbad voice\tmissing.wav\t\t\n\
         bad_number\tx\t\t\tlots\n\
         zh\t今天天气很好\t\t5\t2\n\
         intro\tduplicate id\t\t\t\n"
            .into(),
        "id,text\nintro,hello there\nzh,今天天气很好\n".into(),
        "id,text,voice,prompt_wav,prompt_text,seed,cfg,steps,min_len,max_len\n\
         a,\"Hello, world\",v.wav,p.wav,the prompt,7,2.5,12,2,64\n\
         b,second,,,,,,,,\n"
            .into(),
        invalid,
        "name,words\na,b\n".into(),
    ]
}

pub fn plugin_state() -> Vec<Vec<u8>> {
    let many: Vec<_> = (0..130).map(|i| json!(format!("line {i}"))).collect();
    let states = [
        serde_json::to_value(voxcpm_plugin::project::Project::default()).expect("JSON"),
        json!({
            "version": 1,
            "lines": [{"text": "kept", "voice": "/v.wav"}, {"text": "b", "voice": null}],
            "voice": "/ref.wav",
            "model": "/models/voxcpm2",
            "export_dir": null,
        }),
        json!({
            "version": 1,
            "lines": [{"text": "kept", "voice": 7}, 42, {"voice": "/x.wav"}, "old style"],
            "voice": ["not", "a", "path"],
            "model": "/m",
            "colour": "blue",
        }),
        json!({
            "version": 2,
            "lines": [
                {"text": "three takes", "takes": 3, "chosen_seed": 2, "prompt_wav": "/p.wav", "prompt_text": "It was"},
                {"text": "half a prompt", "prompt_text": "no clip"},
                {"text": "damaged takes", "takes": 0, "chosen_seed": -1},
            ],
            "prompt_wav": "/project-prompt.wav",
            "prompt_text": "Once upon a time",
            "model": "openbmb/VoxCPM2",
        }),
        json!({ "lines": ["format 0 saved bare strings"] }),
        json!({ "version": 3, "lines": many, "future": true }),
        json!("garbage"),
    ];
    states.iter().map(|s| serde_json::to_vec(s).expect("JSON")).collect()
}

pub fn lora() -> Vec<Vec<u8>> {
    let config = read("engine/tests/fixtures/tiny/lora/lora_config.json");
    let weights = read("engine/tests/fixtures/tiny/lora/lora_weights.safetensors");
    let nested = serde_json::to_vec(&json!({ "lora_config": { "r": 4, "alpha": 8.0 } })).expect("JSON");
    vec![
        Parts::encode(&[&config, &weights, &[0]]),
        Parts::encode(&[&nested, &weights, &[0]]),
        Parts::encode(&[br#"{"r": 2, "alpha": 1}"#, &small_safetensors(), &[0]]),
        Parts::encode(&[&config, &small_state_dict(), &[1]]),
    ]
}

fn frame(fields: &[(&str, Value)]) -> Vec<u8> {
    let map = Value::Map(fields.iter().map(|(k, v)| (Value::from(*k), v.clone())).collect());
    let mut out = Vec::new();
    voxcpm_engine::bridge::write_frame(&mut out, &map).expect("writing to memory");
    out
}

pub fn bridge() -> Vec<Vec<u8>> {
    let generate = frame(&[
        ("type", "generate".into()),
        ("text", "Hello".into()),
        ("audio_prompt", "/v.wav".into()),
        ("prompt_wav_path", Value::Nil),
        ("prompt_text", Value::Nil),
        ("cfg_value", 2.0.into()),
        ("inference_timesteps", 10.into()),
        ("min_len", 2.into()),
        ("max_len", 4096.into()),
        ("normalize", false.into()),
        ("denoise", false.into()),
        ("seed", 42.into()),
        ("retry_badcase_ratio_threshold", 6.0.into()),
    ]);
    let init = frame(&[
        ("type", "init".into()),
        ("model", "openbmb/VoxCPM2".into()),
        ("device", "cpu".into()),
        ("load_denoiser", false.into()),
        ("optimize", true.into()),
    ]);
    let ping = frame(&[("type", "ping".into())]);
    let stream = frame(&[("type", "generate_streaming".into()), ("text", "今天".into()), ("seed", Value::Nil)]);
    let lora = frame(&[("type", "load_lora".into()), ("lora_path", "/adapters/a".into())]);
    let unload = frame(&[("type", "unload_lora".into())]);
    let all: Vec<u8> = [&init[..], &generate, &stream, &lora, &unload, &ping].concat();
    vec![ping, init, generate, stream, lora, unload, all]
}
