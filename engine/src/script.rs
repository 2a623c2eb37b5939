//! Voice-line scripts: a TSV or CSV table of lines, each turned into the text and
//! [`GenerateOptions`] of one rendering (what `voxcpm batch` renders).
//!
//! The first row names the columns: `id` and `text` are required; `voice`, `prompt_wav`,
//! `prompt_text`, `seed`, `cfg`, `steps`, `min_len` and `max_len` are optional per line (a
//! blank cell takes the default passed in). Relative paths are relative to the script's
//! folder. A line without a seed gets one derived from its id and text ([`derived_seed`]), so
//! re-rendering it gives the same take. A row that cannot be rendered (unreadable, a bad
//! number, a duplicate id) is kept as a [`Row`] holding its error, so one bad line does not
//! lose the rest; a bad header fails the whole script.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::runtime::GenerateOptions;

/// The columns a script may have.
pub const COLUMNS: [&str; 10] =
    ["id", "text", "voice", "prompt_wav", "prompt_text", "seed", "cfg", "steps", "min_len", "max_len"];

/// One voice line, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// A file name (letters, digits, '-', '_' and '.', not starting with '.').
    pub id: String,
    pub text: String,
    pub options: GenerateOptions,
}

/// A script row: a line, or why it cannot be rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based row number in the file (the header is row 1).
    pub number: usize,
    /// The row's id cell, if it has one (also for rows that failed).
    pub id: Option<String>,
    pub line: std::result::Result<Line, String>,
}

/// The field delimiter a script's file name implies: tab for `.tsv`/`.tab`/`.txt`, comma for
/// `.csv`; `None` for anything else.
pub fn delimiter_for(path: &Path) -> Option<u8> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("tsv") | Some("tab") | Some("txt") => Some(b'\t'),
        Some("csv") => Some(b','),
        _ => None,
    }
}

/// Reads a script file; the delimiter comes from its extension, relative paths are resolved
/// against its folder. Blank cells take `defaults` (its speech options, `normalize`, `denoise`
/// and clip paths; never its seed: a line without one gets [`derived_seed`]).
pub fn read_script(path: &Path, defaults: &GenerateOptions) -> Result<Vec<Row>> {
    let Some(delimiter) = delimiter_for(path) else {
        return Err(Error::InvalidInput(format!("{}: the script must be a .tsv or .csv file", path.display())));
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    read_script_from(file, delimiter, base, defaults).map_err(|e| match e {
        Error::InvalidInput(message) => Error::InvalidInput(format!("{}: {message}", path.display())),
        other => other,
    })
}

/// Reads a script from any reader (a file, bytes in memory), with `delimiter` between fields
/// and relative paths resolved against `base`. Errors name no file; [`read_script`] adds it.
pub fn read_script_from(input: impl Read, delimiter: u8, base: &Path, defaults: &GenerateOptions) -> Result<Vec<Row>> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).trim(csv::Trim::All).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::InvalidInput(format!("no readable header row ({e})")))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(Error::InvalidInput(format!("unknown column {unknown:?} (known: {})", COLUMNS.join(", "))));
    }
    for required in ["id", "text"] {
        if !headers.iter().any(|h| h == required) {
            return Err(Error::InvalidInput(format!("the header has no {required:?} column")));
        }
    }
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let number = index + 2; // 1-based, after the header
        let row = match record {
            Err(e) => Row { number, id: None, line: Err(format!("unreadable row ({e})")) },
            Ok(record) => {
                let fields: HashMap<&str, &str> =
                    headers.iter().map(String::as_str).zip(record.iter()).filter(|(_, v)| !v.is_empty()).collect();
                let id = fields.get("id").map(|s| s.to_string());
                let line = parse_line(&fields, base, defaults).and_then(|line| {
                    if seen.insert(line.id.clone()) { Ok(line) } else { Err(format!("duplicate id {:?}", line.id)) }
                });
                Row { number, id, line }
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

fn parse_line(fields: &HashMap<&str, &str>, base: &Path, defaults: &GenerateOptions) -> Result<Line, String> {
    let id = fields.get("id").ok_or("no id")?.to_string();
    let safe = |c: char| c.is_alphanumeric() || "-_.".contains(c);
    if id.starts_with('.') || !id.chars().all(safe) {
        return Err(format!("id {id:?} must be a file name: letters, digits, '-', '_' and '.', not starting with '.'"));
    }
    let text = fields.get("text").ok_or("no text")?.to_string();
    fn number<T: std::str::FromStr>(fields: &HashMap<&str, &str>, name: &str, default: T) -> Result<T, String> {
        fields.get(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name} {v:?} is not a valid number")))
    }
    let mut speech = defaults.speech;
    speech.cfg_value = number(fields, "cfg", speech.cfg_value)?;
    speech.inference_timesteps = number(fields, "steps", speech.inference_timesteps)?;
    speech.min_len = number(fields, "min_len", speech.min_len)?;
    speech.max_len = number(fields, "max_len", speech.max_len)?;
    let seed = number(fields, "seed", derived_seed(&id, &text))?;
    let path = |name: &str| fields.get(name).map(|p| base.join(p));
    let options = GenerateOptions {
        audio_prompt: path("voice").or_else(|| defaults.audio_prompt.clone()),
        prompt_wav_path: path("prompt_wav").or_else(|| defaults.prompt_wav_path.clone()),
        prompt_text: fields.get("prompt_text").map(|s| s.to_string()).or_else(|| defaults.prompt_text.clone()),
        speech,
        normalize: defaults.normalize,
        denoise: defaults.denoise,
        seed: Some(seed),
    };
    Ok(Line { id, text, options })
}

/// A stable seed for a line without one: the first 8 bytes (little-endian) of
/// SHA-256(id, 0, text).
pub fn derived_seed(id: &str, text: &str) -> u64 {
    let digest = Sha256::new().chain_update(id).chain_update([0]).chain_update(text).finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[u8], delimiter: u8) -> Result<Vec<Row>> {
        read_script_from(text, delimiter, Path::new("/scripts"), &GenerateOptions::default())
    }

    #[test]
    fn lines_take_their_cells_and_defaults_fill_the_blanks() {
        let rows = rows(b"id\ttext\tvoice\tseed\tcfg\n a \t hello \tv.wav\t5\t\nb\tthere\t\t\t1.5\n", b'\t').unwrap();
        let a = rows[0].line.as_ref().unwrap();
        assert_eq!((a.id.as_str(), a.text.as_str(), a.options.seed), ("a", "hello", Some(5)));
        assert_eq!(a.options.audio_prompt.as_deref(), Some(Path::new("/scripts/v.wav")));
        assert_eq!(a.options.speech.cfg_value, GenerateOptions::default().speech.cfg_value);
        let b = rows[1].line.as_ref().unwrap();
        assert_eq!((b.options.speech.cfg_value, b.options.seed), (1.5, Some(derived_seed("b", "there"))));
        assert_eq!(rows[1].number, 3);
    }

    #[test]
    fn bad_rows_are_kept_with_their_error_and_bad_headers_fail() {
        let rows = rows(b"id,text,steps\nok,x,\nok,y,\n.hidden,z,\nn,w,many\n", b',').unwrap();
        let errors: Vec<_> = rows.iter().map(|r| r.line.as_ref().err().cloned().unwrap_or_default()).collect();
        assert!(errors[0].is_empty() && errors[1].contains("duplicate"), "{errors:?}");
        assert!(errors[2].contains("file name") && errors[3].contains("\"many\""), "{errors:?}");
        assert!(self::rows(b"name,words\n", b',').unwrap_err().to_string().contains("unknown column \"name\""));
        assert!(self::rows(b"id\n", b',').unwrap_err().to_string().contains("\"text\""));
    }

    #[test]
    fn read_script_names_the_file_and_needs_a_known_extension() {
        let err = read_script(Path::new("lines.doc"), &GenerateOptions::default()).unwrap_err().to_string();
        assert!(err.contains("lines.doc") && err.contains(".tsv"), "{err}");
    }
}
