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

/// The state format written by this version.
pub const FORMAT_VERSION: u64 = 1;

/// One voice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Line {
    pub text: String,
    /// A reference clip for this line only; `None` uses the project's voice.
    pub voice: Option<PathBuf>,
}

impl Line {
    pub fn new(text: impl Into<String>) -> Self {
        Line { text: text.into(), voice: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    pub version: u64,
    pub lines: Vec<Line>,
    /// The reference clip every line clones unless it names its own.
    pub voice: Option<PathBuf>,
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
        let model = read_path(&mut fields, "model", &mut dropped);
        let export_dir = read_path(&mut fields, "export_dir", &mut dropped);
        if version <= FORMAT_VERSION {
            for unknown in fields.keys() {
                dropped.push(format!("unknown field {unknown:?}"));
            }
        }
        Project { version: FORMAT_VERSION, lines, voice, model, export_dir, dropped }
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
                    let voice = read_path(&mut fields, "voice", dropped);
                    lines.push(Line { text, voice });
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
    match fields.remove(name)? {
        Value::String(path) if !path.is_empty() => Some(PathBuf::from(path)),
        Value::String(_) | Value::Null => None,
        other => {
            dropped.push(format!("{name}: {} instead of a path", kind(&other)));
            None
        }
    }
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
        let project = Project {
            lines: vec![Line { text: "a".into(), voice: Some("/v.wav".into()) }, Line::new("b")],
            voice: Some("/ref.wav".into()),
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
