//! The VoxCPMEx v2.1 messages: requests parsed from msgpack maps, replies built as maps with
//! exactly the keys the Elixir client classifies them by (see the protocol doc §2.5: a stream
//! frame must not carry `status`, a generate reply must not carry `device`, ...).

use std::path::PathBuf;

use rmpv::Value;

use crate::pipeline::SpeechOptions;
use crate::runtime::GenerateOptions;

/// Every key a request map can carry (besides `type`), for the tests and fuzzers that build
/// requests: one list, checked against the parser by a test here.
pub const REQUEST_KEYS: [&str; 19] = [
    "text",
    "model",
    "device",
    "load_denoiser",
    "optimize",
    "audio_prompt",
    "prompt_wav_path",
    "prompt_text",
    "cfg_value",
    "inference_timesteps",
    "min_len",
    "max_len",
    "retry_badcase",
    "retry_badcase_max_times",
    "retry_badcase_ratio_threshold",
    "normalize",
    "denoise",
    "seed",
    "lora_path",
];

/// What the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Init {
        model: String,
        device: String,
        load_denoiser: bool,
        optimize: bool,
    },
    Generate {
        text: String,
        options: GenerateOptions,
    },
    GenerateStreaming {
        text: String,
        options: GenerateOptions,
    },
    LoadLora {
        path: PathBuf,
    },
    UnloadLora,
    Ping,
    /// Any other `type`, kept for the error reply (`None` when absent or not a string).
    Unknown(Option<String>),
}

/// Fields of one request map.
struct Fields(Vec<(String, Value)>);

impl Fields {
    /// A present, non-nil value.
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_nil())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                s.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| format!("{key} is not valid UTF-8"))
            }
            // Elixir sends strings as str; a bin holding UTF-8 is accepted as well.
            Some(Value::Binary(b)) => {
                String::from_utf8(b.clone()).map(Some).map_err(|_| format!("{key} is not valid UTF-8"))
            }
            Some(other) => Err(format!("{key} must be a string, got {}", kind(other))),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(format!("{key} must be a boolean, got {}", kind(other))),
        }
    }

    fn float(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::F64(x)) => Ok(*x),
            Some(Value::F32(x)) => Ok(*x as f64),
            Some(Value::Integer(i)) => i.as_f64().ok_or_else(|| format!("{key} is out of range")),
            Some(other) => Err(format!("{key} must be a number, got {}", kind(other))),
        }
    }

    fn count(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Integer(i)) => i
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| format!("{key} must be a non-negative integer, got {i}")),
            Some(other) => Err(format!("{key} must be an integer, got {}", kind(other))),
        }
    }

    fn seed(&self) -> Result<Option<u64>, String> {
        match self.get("seed") {
            None => Ok(None),
            Some(Value::Integer(i)) => {
                i.as_u64().map(Some).ok_or_else(|| format!("seed must be a non-negative integer, got {i}"))
            }
            Some(other) => Err(format!("seed must be an integer, got {}", kind(other))),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::F32(_) | Value::F64(_) => "a float",
        Value::String(_) => "a string",
        Value::Binary(_) => "a binary",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Ext(..) => "an extension value",
    }
}

/// Parses a request map. An error is the text of the error reply.
pub fn parse(map: Vec<(String, Value)>) -> Result<Request, String> {
    let fields = Fields(map);
    let kind = match fields.0.iter().find(|(k, _)| k == "type").map(|(_, v)| v) {
        Some(Value::String(s)) => s.as_str().map(str::to_owned),
        _ => None,
    };
    Ok(match kind.as_deref() {
        Some("init") => Request::Init {
            model: fields.string("model")?.unwrap_or_else(|| crate::hub::DEFAULT_REPO.to_owned()),
            device: fields.string("device")?.unwrap_or_else(|| "cuda".to_owned()),
            load_denoiser: fields.bool("load_denoiser", false)?,
            optimize: fields.bool("optimize", true)?,
        },
        Some(t @ ("generate" | "generate_streaming")) => {
            let text = fields.string("text")?.ok_or("text is missing")?;
            let options = generate_options(&fields, t == "generate_streaming")?;
            if t == "generate" {
                Request::Generate { text, options }
            } else {
                Request::GenerateStreaming { text, options }
            }
        }
        Some("load_lora") => {
            Request::LoadLora { path: fields.string("lora_path")?.ok_or("lora_path is missing")?.into() }
        }
        Some("unload_lora") => Request::UnloadLora,
        Some("ping") => Request::Ping,
        _ => Request::Unknown(kind),
    })
}

/// The generation options under their VoxCPMEx names, with the Python bridge's defaults
/// (bad-case retry on for `generate`, off for streaming).
fn generate_options(fields: &Fields, streaming: bool) -> Result<GenerateOptions, String> {
    let defaults = SpeechOptions::default();
    let speech = SpeechOptions {
        cfg_value: fields.float("cfg_value", defaults.cfg_value as f64)? as f32,
        inference_timesteps: fields.count("inference_timesteps", defaults.inference_timesteps)?,
        min_len: fields.count("min_len", defaults.min_len)?,
        max_len: fields.count("max_len", defaults.max_len)?,
        retry_badcase: fields.bool("retry_badcase", !streaming)?,
        retry_badcase_max_times: fields.count("retry_badcase_max_times", defaults.retry_badcase_max_times)?,
        retry_badcase_ratio_threshold: fields
            .float("retry_badcase_ratio_threshold", defaults.retry_badcase_ratio_threshold)?,
    };
    Ok(GenerateOptions {
        audio_prompt: fields.string("audio_prompt")?.map(PathBuf::from),
        prompt_wav_path: fields.string("prompt_wav_path")?.map(PathBuf::from),
        prompt_text: fields.string("prompt_text")?,
        speech,
        normalize: fields.bool("normalize", false)?,
        denoise: fields.bool("denoise", false)?,
        seed: fields.seed()?,
    })
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

/// Replies, each shaped as the client's classifier expects.
pub mod reply {
    use super::*;

    pub fn ready(device: &str, sample_rate: u32) -> Value {
        map(vec![("status", "ok".into()), ("device", device.into()), ("sample_rate", sample_rate.into())])
    }

    pub fn audio(wav: Vec<u8>, sample_rate: u32, duration: f64) -> Value {
        map(vec![
            ("status", "ok".into()),
            ("audio", Value::Binary(wav)),
            ("sample_rate", sample_rate.into()),
            ("duration", duration.into()),
        ])
    }

    pub fn lora_loaded(loaded: usize, skipped: usize) -> Value {
        map(vec![("status", "ok".into()), ("loaded", (loaded as u64).into()), ("skipped", (skipped as u64).into())])
    }

    pub fn ok() -> Value {
        map(vec![("status", "ok".into())])
    }

    pub fn pong() -> Value {
        map(vec![("status", "ok".into()), ("message", "pong".into())])
    }

    pub fn error(message: &str) -> Value {
        map(vec![("status", "error".into()), ("error", message.into())])
    }

    pub fn stream_start(sample_rate: u32) -> Value {
        map(vec![("type", "stream_start".into()), ("sample_rate", sample_rate.into())])
    }

    pub fn stream_chunk(samples: &[f32], index: usize) -> Value {
        let bytes = samples.iter().flat_map(|x| x.to_le_bytes()).collect();
        map(vec![
            ("type", "stream_chunk".into()),
            ("chunk", Value::Binary(bytes)),
            ("index", (index as u64).into()),
            ("length", (samples.len() as u64).into()),
        ])
    }

    pub fn stream_end(total_chunks: usize) -> Value {
        map(vec![("type", "stream_end".into()), ("total_chunks", (total_chunks as u64).into())])
    }

    pub fn stream_error(message: &str) -> Value {
        map(vec![("type", "stream_error".into()), ("error", message.into())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(entries: Vec<(&str, Value)>) -> Result<Request, String> {
        parse(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Each listed key is read by some request type: a value of no type it accepts is refused
    /// naming it.
    #[test]
    fn every_request_key_is_read_by_the_parser() {
        for key in REQUEST_KEYS {
            let refused = ["init", "generate", "generate_streaming", "load_lora"].into_iter().any(|kind| {
                let wrong = Value::Map(vec![(Value::from("x"), Value::from(1))]);
                let mut entries = vec![("type", kind.into()), (key, wrong)];
                if key != "text" {
                    entries.push(("text", "hi".into()));
                }
                request(entries).is_err_and(|message| message.contains(key))
            });
            assert!(refused, "no request type reads {key}");
        }
    }

    #[test]
    fn requests_parse_with_the_python_bridge_defaults() {
        assert_eq!(
            request(vec![("type", "init".into())]).unwrap(),
            Request::Init {
                model: "openbmb/VoxCPM2".into(),
                device: "cuda".into(),
                load_denoiser: false,
                optimize: true
            }
        );
        let Request::Generate { text, options } = request(vec![
            ("type", "generate".into()),
            ("text", "hi".into()),
            ("cfg_value", 3.into()),
            ("seed", 4.into()),
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(text, "hi");
        assert_eq!((options.speech.cfg_value, options.speech.retry_badcase, options.seed), (3.0, true, Some(4)));
        let Request::GenerateStreaming { options, .. } =
            request(vec![("type", "generate_streaming".into()), ("text", "hi".into()), ("min_len", Value::Nil)])
                .unwrap()
        else {
            panic!()
        };
        assert!(!options.speech.retry_badcase, "streaming never retries");
        assert_eq!(options.speech.min_len, 2, "nil means the default");
        assert_eq!(request(vec![("type", "bogus".into())]).unwrap(), Request::Unknown(Some("bogus".into())));
        assert_eq!(request(vec![("type", 7.into())]).unwrap(), Request::Unknown(None));
    }

    #[test]
    fn wrong_value_types_name_the_key() {
        for (key, value, needle) in [
            ("text", Value::from(5), "text must be a string"),
            ("cfg_value", Value::from("high"), "cfg_value must be a number"),
            ("inference_timesteps", Value::from(-3), "inference_timesteps must be a non-negative"),
            ("normalize", Value::from(1), "normalize must be a boolean"),
            ("seed", Value::from(1.5), "seed must be an integer"),
        ] {
            let mut entries = vec![("type", Value::from("generate")), ("text", "hi".into())];
            entries.retain(|(k, _)| *k != key);
            entries.push((key, value));
            assert!(request(entries).unwrap_err().contains(needle), "{key}");
        }
        assert!(request(vec![("type", "generate".into())]).unwrap_err().contains("text is missing"));
    }

    #[test]
    fn stream_frames_never_carry_a_status_key() {
        for frame in [
            reply::stream_start(48_000),
            reply::stream_chunk(&[0.5], 0),
            reply::stream_end(1),
            reply::stream_error("x"),
        ] {
            let Value::Map(entries) = frame else { panic!() };
            assert!(entries.iter().all(|(k, _)| k.as_str() != Some("status")));
        }
    }
}
