//! The voice lines and file choices saved with the host project.
//!
//! nice-plug stores this as one JSON field. It is read leniently: whatever is well formed is
//! kept, everything else is dropped and listed in [`Project::dropped`], so a damaged or older
//! project still opens with as much of its script as can be recovered.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// MIDI has 128 keys; line k plays on base note + k.
pub const MAX_LINES: usize = 128;

/// The state format written by this version: 2 added takes and the continuation prompt;
/// formats 0 (bare strings) and 1 (lines without takes or prompt) still read.
pub const FORMAT_VERSION: u64 = 2;

/// The most takes a line may ask for: each is a full render, kept on disk and in memory.
pub const MAX_TAKES: usize = 8;

/// One voice line. Fields left at their defaults are not saved (lines are many), so a line
/// that uses no takes or prompt saves as in format 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub text: String,
    /// A reference clip for this line only; `None` uses the project's voice.
    pub voice: Option<PathBuf>,
    /// How many variations to render (1..=[`MAX_TAKES`]); take k uses the seed parameter + k.
    #[serde(skip_serializing_if = "is_one")]
    pub takes: usize,
    /// The seed of the take MIDI plays; `None` (or a seed that is not among the takes) plays
    /// take 1. A seed rather than an index, so a choice stays with its audio when the seed
    /// parameter moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen_seed: Option<u64>,
    /// This line's continuation prompt; when either half is set the project's is not used.
    #[serde(flatten)]
    pub prompt: Prompt,
}

impl Default for Line {
    fn default() -> Self {
        Line { text: String::new(), voice: None, takes: 1, chosen_seed: None, prompt: Prompt::default() }
    }
}

impl Line {
    pub fn new(text: impl Into<String>) -> Self {
        Line { text: text.into(), ..Line::default() }
    }
}

/// A continuation prompt: a clip the line carries on from, and what is said in it (the
/// engine's `prompt_wav_path` + `prompt_text`). Both or neither; a half is the line's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Prompt {
    #[serde(rename = "prompt_wav", skip_serializing_if = "Option::is_none")]
    pub wav: Option<PathBuf>,
    #[serde(rename = "prompt_text", skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Prompt {
    pub fn is_empty(&self) -> bool {
        self.wav.is_none() && self.text.is_none()
    }
}

fn is_one(takes: &usize) -> bool {
    *takes == 1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    pub version: u64,
    pub lines: Vec<Line>,
    /// The reference clip every line clones unless it names its own.
    pub voice: Option<PathBuf>,
    /// The continuation prompt of every line that sets none of its own.
    #[serde(flatten)]
    pub prompt: Prompt,
    /// The checkpoint folder; `None` picks one as the CLI does (VOXCPM_MODEL, a fetched copy,
    /// then the random-weight demo checkpoint of a source checkout).
    pub model: Option<PathBuf>,
    /// Where "export" writes a line's WAV; `None` = the user's home directory.
    pub export_dir: Option<PathBuf>,
    /// What the last load could not read (never saved).
    #[serde(skip)]
    pub dropped: Vec<String>,
}

impl Default for Project {
    fn default() -> Self {
        Project {
            version: FORMAT_VERSION,
            lines: vec![Line::new("Hello from VoxCPM."), Line::new("This line plays on the next key.")],
            voice: None,
            prompt: Prompt::default(),
            model: None,
            export_dir: None,
            dropped: Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for Project {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Project::from_value(Value::deserialize(deserializer)?))
    }
}

impl Project {
    /// Reads what it can of a saved project; never fails.
    pub fn from_value(value: Value) -> Project {
        let mut dropped = Vec::new();
        let Value::Object(mut fields) = value else {
            dropped.push(format!("the saved project is {} instead of an object; starting empty", kind(&value)));
            return Project { lines: Vec::new(), dropped, ..Project::default() };
        };
        let version = match fields.remove("version") {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(FORMAT_VERSION),
            None => 0,
            Some(other) => {
                dropped.push(format!("version: {} is not a number", kind(&other)));
                0
            }
        };
        if version > FORMAT_VERSION {
            dropped.push(format!(
                "the project was saved by a newer version (format {version}); fields this version does not know are ignored"
            ));
        }
        let lines = match fields.remove("lines") {
            Some(Value::Array(items)) => read_lines(items, &mut dropped),
            None => Vec::new(),
            Some(other) => {
                dropped.push(format!("lines: {} instead of a list", kind(&other)));
                Vec::new()
            }
        };
        let voice = read_path(&mut fields, "voice", &mut dropped);
        let prompt = read_prompt(&mut fields, "", &mut dropped);
        let model = read_path(&mut fields, "model", &mut dropped);
        let export_dir = read_path(&mut fields, "export_dir", &mut dropped);
        if version <= FORMAT_VERSION {
            for unknown in fields.keys() {
                dropped.push(format!("unknown field {unknown:?}"));
            }
        }
        Project { version: FORMAT_VERSION, lines, voice, prompt, model, export_dir, dropped }
    }
}

fn read_lines(items: Vec<Value>, dropped: &mut Vec<String>) -> Vec<Line> {
    if items.len() > MAX_LINES {
        dropped.push(format!("lines {}..{}: only {MAX_LINES} lines fit on the keyboard", MAX_LINES + 1, items.len()));
    }
    let mut lines = Vec::new();
    for (index, item) in items.into_iter().take(MAX_LINES).enumerate() {
        let number = index + 1;
        match item {
            // Format 0 saved bare strings.
            Value::String(text) => lines.push(Line::new(text)),
            Value::Object(mut fields) => match fields.remove("text") {
                Some(Value::String(text)) => {
                    let line = format!("line {number}: ");
                    let voice = read_path(&mut fields, "voice", dropped);
                    let takes = read_takes(&mut fields, &line, dropped);
                    let chosen_seed = read_seed(&mut fields, &line, dropped);
                    let prompt = read_prompt(&mut fields, &line, dropped);
                    lines.push(Line { text, voice, takes, chosen_seed, prompt });
                }
                other => {
                    dropped.push(format!("line {number}: no text ({})", other.as_ref().map_or("missing", kind)));
                    lines.push(Line::default());
                }
            },
            other => {
                dropped.push(format!("line {number}: {} instead of a line", kind(&other)));
                lines.push(Line::default());
            }
        }
    }
    lines
}

fn read_path(fields: &mut serde_json::Map<String, Value>, name: &str, dropped: &mut Vec<String>) -> Option<PathBuf> {
    read_labelled_path(fields, "", name, dropped)
}

/// As [`read_path`], naming a dropped value as `{prefix}{name}` (the line it belongs to).
fn read_labelled_path(
    fields: &mut serde_json::Map<String, Value>,
    prefix: &str,
    name: &str,
    dropped: &mut Vec<String>,
) -> Option<PathBuf> {
    match fields.remove(name)? {
        Value::String(path) if !path.is_empty() => Some(PathBuf::from(path)),
        Value::String(_) | Value::Null => None,
        other => {
            dropped.push(format!("{prefix}{name}: {} instead of a path", kind(&other)));
            None
        }
    }
}

/// A line's take count; absent (formats 0 and 1) is one take, more than [`MAX_TAKES`] is cut.
fn read_takes(fields: &mut serde_json::Map<String, Value>, line: &str, dropped: &mut Vec<String>) -> usize {
    let value = match fields.remove("takes") {
        None | Some(Value::Null) => return 1,
        Some(value) => value,
    };
    match value.as_u64() {
        Some(takes @ 1..) if takes <= MAX_TAKES as u64 => takes as usize,
        Some(takes @ 1..) => {
            dropped.push(format!("{line}takes: {takes} takes, only {MAX_TAKES} kept"));
            MAX_TAKES
        }
        _ => {
            let what = if value.is_number() { format!("{value}") } else { kind(&value).to_owned() };
            dropped.push(format!("{line}takes: {what} instead of a number of takes (1 to {MAX_TAKES}); one take kept"));
            1
        }
    }
}

fn read_seed(fields: &mut serde_json::Map<String, Value>, line: &str, dropped: &mut Vec<String>) -> Option<u64> {
    match fields.remove("chosen_seed")? {
        Value::Null => None,
        value => value.as_u64().or_else(|| {
            let what = if value.is_number() { format!("{value}") } else { kind(&value).to_owned() };
            dropped.push(format!("{line}chosen_seed: {what} instead of a seed; take 1 plays"));
            None
        }),
    }
}

fn read_prompt(fields: &mut serde_json::Map<String, Value>, prefix: &str, dropped: &mut Vec<String>) -> Prompt {
    let wav = read_labelled_path(fields, prefix, "prompt_wav", dropped);
    let text = match fields.remove("prompt_text") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text).filter(|t| !t.is_empty()),
        Some(other) => {
            dropped.push(format!("{prefix}prompt_text: {} instead of a transcript", kind(&other)));
            None
        }
    };
    Prompt { wav, text }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_saved_project_reads_back_unchanged() {
        let prompt = |wav: &str, text: &str| Prompt { wav: Some(wav.into()), text: Some(text.into()) };
        let project = Project {
            lines: vec![
                Line { text: "a".into(), voice: Some("/v.wav".into()), ..Line::default() },
                Line::new("b"),
                Line { takes: 5, chosen_seed: Some(3), prompt: prompt("/p.wav", "Said before."), ..Line::new("c") },
                Line { prompt: Prompt { wav: Some("/half.wav".into()), text: None }, ..Line::new("d") },
            ],
            voice: Some("/ref.wav".into()),
            prompt: prompt("/project-prompt.wav", "The project's prompt."),
            model: Some("/models/voxcpm2".into()),
            export_dir: None,
            ..Project::default()
        };
        let text = serde_json::to_string(&project).unwrap();
        assert_eq!(serde_json::from_str::<Project>(&text).unwrap(), project);
    }

    #[test]
    fn damaged_parts_are_dropped_and_named_and_the_rest_is_kept() {
        let saved = json!({
            "version": 1,
            "lines": [{"text": "kept", "voice": 7}, 42, {"voice": "/x.wav"}, "old style"],
            "voice": ["not", "a", "path"],
            "model": "/m",
            "colour": "blue",
        });
        let project = Project::from_value(saved);
        let texts: Vec<_> = project.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["kept", "", "", "old style"]);
        assert_eq!(project.model, Some(PathBuf::from("/m")));
        assert_eq!(project.voice, None);
        let dropped = project.dropped.join("\n");
        for expected in
            ["voice: a number", "line 2: a number", "line 3: no text (missing)", "voice: a list", "\"colour\""]
        {
            assert!(dropped.contains(expected), "{expected:?} missing from:\n{dropped}");
        }
    }

    #[test]
    fn a_line_without_takes_or_prompt_saves_as_format_1_did() {
        let saved = serde_json::to_value(Line::new("plain")).unwrap();
        assert_eq!(saved, json!({"text": "plain", "voice": null}));
    }

    #[test]
    fn a_format_1_project_opens_with_one_take_per_line_and_no_prompt() {
        let saved = json!({
            "version": 1,
            "lines": [{"text": "one", "voice": null}, {"text": "two", "voice": "/v.wav"}, "format 0"],
            "voice": null,
            "model": null,
            "export_dir": null,
        });
        let project = Project::from_value(saved);
        assert!(project.dropped.is_empty(), "{:?}", project.dropped);
        assert_eq!(project.lines.len(), 3);
        for line in &project.lines {
            assert_eq!((line.takes, line.chosen_seed, &line.prompt), (1, None, &Prompt::default()), "{line:?}");
        }
        assert_eq!(project.prompt, Prompt::default());
        assert_eq!(project.version, FORMAT_VERSION);
    }

    #[test]
    fn damaged_takes_seeds_and_prompts_are_dropped_and_named_and_the_line_kept() {
        let saved = json!({
            "version": 2,
            "lines": [
                {"text": "a", "takes": "three", "chosen_seed": 4},
                {"text": "b", "takes": 0, "chosen_seed": -1},
                {"text": "c", "takes": 40, "chosen_seed": "x", "prompt_wav": 5, "prompt_text": "kept"},
                {"text": "d", "takes": 2.5, "prompt_wav": "/p.wav", "prompt_text": ["no"]},
                {"text": "e", "takes": 6, "chosen_seed": 9},
            ],
            "prompt_text": 12,
        });
        let project = Project::from_value(saved);
        let got: Vec<_> = project.lines.iter().map(|l| (l.text.as_str(), l.takes, l.chosen_seed)).collect();
        assert_eq!(got, [("a", 1, Some(4)), ("b", 1, None), ("c", MAX_TAKES, None), ("d", 1, None), ("e", 6, Some(9))]);
        assert_eq!(project.lines[2].prompt, Prompt { wav: None, text: Some("kept".into()) });
        assert_eq!(project.lines[3].prompt, Prompt { wav: Some("/p.wav".into()), text: None });
        assert_eq!(project.prompt, Prompt::default());
        let dropped = project.dropped.join("\n");
        for expected in [
            "line 1: takes: a string instead of a number of takes (1 to 8)",
            "line 2: takes: 0 instead of a number of takes",
            "line 2: chosen_seed: -1 instead of a seed",
            "line 3: takes: 40 takes, only 8 kept",
            "line 3: chosen_seed: a string instead of a seed",
            "line 3: prompt_wav: a number instead of a path",
            "line 4: takes: 2.5 instead of a number of takes",
            "line 4: prompt_text: a list instead of a transcript",
            "prompt_text: a number instead of a transcript",
        ] {
            assert!(dropped.contains(expected), "{expected:?} missing from:\n{dropped}");
        }
        assert_eq!(project.dropped.len(), 9, "{dropped}");
    }

    #[test]
    fn a_project_that_is_not_an_object_starts_empty_and_says_so() {
        let project = Project::from_value(json!("garbage"));
        assert!(project.lines.is_empty());
        assert_eq!(project.dropped.len(), 1);
        assert!(project.dropped[0].contains("a string"));
    }

    #[test]
    fn more_lines_than_keys_are_cut_with_a_note() {
        let lines: Vec<_> = (0..MAX_LINES + 3).map(|i| json!(format!("line {i}"))).collect();
        let project = Project::from_value(json!({ "version": 1, "lines": lines }));
        assert_eq!(project.lines.len(), MAX_LINES);
        assert!(project.dropped[0].contains("only 128 lines"));
    }
}
