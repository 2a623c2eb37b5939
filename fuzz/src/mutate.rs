//! Mutators: plain byte havoc for every target, and structure-aware mutators that change one
//! field of a format and write it back consistently (so the reader gets past its first
//! checks): JSON, safetensors headers, torch zips and their pickles, RIFF/WAV chunks,
//! CSV/TSV scripts, msgpack frames, and multi-file inputs ([`Parts`]).

use serde_json::Value;

use crate::rng::Rng;

/// The largest input a mutation may produce.
pub const MAX_INPUT: usize = 4 << 20;

// ---------------------------------------------------------------- bytes

const BYTES: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'\n', b'\\'];
const WORDS: [u64; 18] = [
    0,
    1,
    2,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Stacks 1 to 16 byte-level mutations: bit flips, byte and word sets (little- and
/// big-endian boundary values), arithmetic, deletions, insertions, duplication, truncation,
/// splicing with `other` and dictionary tokens. Half of the positions fall in the first
/// `head` bytes.
pub fn havoc(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dict: &[&[u8]], head: usize) {
    let rounds = 1 << rng.below(5);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(15) {
            0 if len > 0 => {
                let at = rng.position(len, head);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.position(len, head);
                data[at] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let at = rng.position(len, head);
                data[at] = *rng.pick(&BYTES);
            }
            3 | 4 if len > 0 => {
                let width = *rng.pick(&[2usize, 4, 8]);
                let at = rng.position(len, head);
                let mut word = *rng.pick(&WORDS);
                if rng.one_in(3) {
                    word = word.wrapping_neg();
                }
                let bytes = if rng.one_in(2) { word.to_le_bytes() } else { word.to_be_bytes() };
                let bytes = if rng.one_in(2) { &bytes[..width] } else { &bytes[8 - width..] };
                for (i, b) in bytes.iter().enumerate() {
                    if at + i < len {
                        data[at + i] = *b;
                    }
                }
            }
            5 if len > 0 => {
                let at = rng.position(len, head);
                let delta = rng.below(35) as u8;
                data[at] = if rng.one_in(2) { data[at].wrapping_add(delta) } else { data[at].wrapping_sub(delta) };
            }
            6 if len > 0 => {
                let at = rng.position(len, head);
                let most = if rng.one_in(4) { len } else { 16 };
                let n = 1 + rng.below((len - at).min(most));
                data.drain(at..at + n);
            }
            7 => {
                let at = rng.position(len + 1, head);
                let most = if rng.one_in(8) { 4096 } else { 16 };
                let n = 1 + rng.below(most);
                let fill: Vec<u8> = if rng.one_in(2) {
                    vec![*rng.pick(&BYTES); n]
                } else {
                    (0..n).map(|_| rng.next_u64() as u8).collect()
                };
                data.splice(at..at, fill);
            }
            8 if len > 0 => {
                let from = rng.position(len, head);
                let n = 1 + rng.below((len - from).min(256));
                let chunk = data[from..from + n].to_vec();
                let at = rng.position(len + 1, head);
                data.splice(at..at, chunk);
            }
            9 if len > 0 => {
                let at = if rng.one_in(2) { rng.below(len) } else { len - rng.below(len.min(64)) };
                data.truncate(at);
            }
            10 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(512));
                let at = rng.position(len + 1, head);
                let end = (at + n).min(len);
                data.splice(at..end, other[from..from + n].iter().copied());
            }
            11 if !other.is_empty() && len > 0 => {
                // Crossover: our head, their tail.
                let at = rng.below(len);
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            12 | 13 if !dict.is_empty() => {
                let token = *rng.pick(dict);
                let at = rng.position(len + 1, head);
                if rng.one_in(2) || at == len {
                    data.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(len);
                    data.splice(at..end, token.iter().copied());
                }
            }
            _ => {
                if len > 0 {
                    let at = rng.below(len);
                    data[at] = data[at].wrapping_add(1);
                } else {
                    data.push(rng.next_u64() as u8);
                }
            }
        }
    }
    data.truncate(MAX_INPUT);
}

// ---------------------------------------------------------------- JSON

/// Number literals written as raw text, so that what `serde_json::Value` cannot hold (1e400,
/// integers past u64, -0) still reaches the reader.
pub const NUMBERS: [&str; 44] = [
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "4",
    "7",
    "8",
    "16",
    "255",
    "256",
    "-128",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e309",
    "1e400",
    "1e-308",
    "5e-324",
    "0.5",
    "-0.5",
    "1.5",
    "1e10",
    "1e20",
    "0.0",
    "-0.0",
    "1E2",
    "123456789012345678901234567890",
    "100000",
    "1000000000",
    "3.4028236e38",
];

/// Other raw replacements: non-numbers where numbers are due, and type changes.
const OTHERS: [&str; 14] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "false",
    "\"NaN\"",
    "\"inf\"",
    "\"1\"",
    "\"\"",
    "[]",
    "{}",
    "[0]",
    "{\"\":0}",
];

const STRINGS: [&str; 16] = [
    "",
    " ",
    "a",
    "\u{0}",
    "é",
    "今天天气很好",
    "\u{feff}x",
    "../../../../etc/passwd",
    "/",
    "C:\\x",
    "\u{2581}",
    "<unk>",
    "nan",
    "-1",
    "1e400",
    "\u{10ffff}",
];

/// What a JSON mutator knows about one file: keys and strings worth trying there.
#[derive(Default, Clone, Copy)]
pub struct JsonHints {
    pub keys: &'static [&'static str],
    pub strings: &'static [&'static str],
}

/// Raw JSON text to put in place of placeholders after serialisation.
pub struct Raw(Vec<String>);

impl Raw {
    /// A placeholder serialised as a string and swapped for `text` afterwards.
    fn value(&mut self, text: String) -> Value {
        self.0.push(text);
        Value::String(format!("\u{1}RAW{}\u{1}", self.0.len() - 1))
    }

    pub fn apply(&self, json: String) -> String {
        let mut json = json;
        for (i, text) in self.0.iter().enumerate() {
            json = json.replacen(&format!("\"\\u0001RAW{i}\\u0001\""), text, 1);
        }
        json
    }
}

fn long_string(rng: &mut Rng) -> String {
    let n = 1 << (6 + rng.below(11));
    let unit = *rng.pick(&["a", "今", "\u{2581}", " ", "é"]);
    unit.repeat(n)
}

fn interesting_value(rng: &mut Rng, raw: &mut Raw, hints: &JsonHints) -> Value {
    match rng.below(6) {
        0 | 1 => raw.value(rng.pick(&NUMBERS).to_string()),
        2 => raw.value(rng.pick(&OTHERS).to_string()),
        3 if !hints.strings.is_empty() => Value::String(rng.pick(hints.strings).to_string()),
        4 if rng.one_in(4) => Value::String(long_string(rng)),
        _ => Value::String(rng.pick(&STRINGS).to_string()),
    }
}

/// A random node of `value`: each container is stopped at with probability 1/3 (always when
/// empty), otherwise a random child is entered.
fn random_node<'a>(rng: &mut Rng, value: &'a mut Value) -> &'a mut Value {
    let descend = match value {
        Value::Array(items) => !items.is_empty() && !rng.one_in(3),
        Value::Object(map) => !map.is_empty() && !rng.one_in(3),
        _ => false,
    };
    if !descend {
        return value;
    }
    match value {
        Value::Array(items) => {
            let i = rng.below(items.len());
            random_node(rng, &mut items[i])
        }
        Value::Object(map) => {
            let i = rng.below(map.len());
            let (_, child) = map.iter_mut().nth(i).expect("index in range");
            random_node(rng, child)
        }
        _ => unreachable!(),
    }
}

fn random_subtree(rng: &mut Rng, value: &Value) -> Value {
    let mut copy = value.clone();
    random_node(rng, &mut copy).clone()
}

/// One structural change to a parsed JSON document; `other` (another corpus entry, parsed)
/// gives subtrees to splice in.
pub fn mutate_json_value(rng: &mut Rng, doc: &mut Value, other: Option<&Value>, hints: &JsonHints) -> Raw {
    let mut raw = Raw(Vec::new());
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let node = random_node(rng, doc);
        match node {
            Value::Object(map) if !rng.one_in(4) => match rng.below(6) {
                0 | 1 if !map.is_empty() => {
                    let key = map.keys().nth(rng.below(map.len())).cloned().expect("index in range");
                    map.remove(&key);
                }
                2 if !map.is_empty() => {
                    let key = map.keys().nth(rng.below(map.len())).cloned().expect("index in range");
                    let value = map.remove(&key).expect("present");
                    let new_key = if hints.keys.is_empty() || rng.one_in(3) {
                        rng.pick(&STRINGS).to_string()
                    } else {
                        rng.pick(hints.keys).to_string()
                    };
                    map.insert(new_key, value);
                }
                3 if !map.is_empty() => {
                    let key = map.keys().nth(rng.below(map.len())).cloned().expect("index in range");
                    let value = interesting_value(rng, &mut raw, hints);
                    map.insert(key, value);
                }
                _ => {
                    let key = if hints.keys.is_empty() || rng.one_in(4) {
                        format!("k{}", rng.below(100))
                    } else {
                        rng.pick(hints.keys).to_string()
                    };
                    let value = match other {
                        Some(other) if rng.one_in(2) => random_subtree(rng, other),
                        _ => interesting_value(rng, &mut raw, hints),
                    };
                    map.insert(key, value);
                }
            },
            Value::Array(items) if !rng.one_in(4) => match rng.below(6) {
                0 if !items.is_empty() => {
                    items.remove(rng.below(items.len()));
                }
                1 if !items.is_empty() => {
                    let i = rng.below(items.len());
                    items.insert(i, items[i].clone());
                }
                2 => items.clear(),
                3 if !items.is_empty() && rng.one_in(4) => {
                    // A huge array: the same element many times.
                    let element = items[rng.below(items.len())].clone();
                    // At most about 1 MiB of JSON, whatever the element.
                    let size = serde_json::to_string(&element).map_or(1, |t| t.len() + 1);
                    let n = (1usize << (8 + rng.below(10))).min((1 << 20) / size);
                    items.extend(std::iter::repeat_n(element, n));
                }
                4 if items.len() > 1 => {
                    let (a, b) = (rng.below(items.len()), rng.below(items.len()));
                    items.swap(a, b);
                }
                _ => items.push(interesting_value(rng, &mut raw, hints)),
            },
            _ => match rng.below(8) {
                0..=3 => *node = interesting_value(rng, &mut raw, hints),
                4 => {
                    if let Some(other) = other {
                        *node = random_subtree(rng, other);
                    }
                }
                5 => *node = Value::Array(vec![node.take()]),
                6 if rng.one_in(8) => {
                    // Nesting deeper than any parser's recursion limit.
                    let mut v = node.take();
                    for _ in 0..(100 + rng.below(200)) {
                        v = Value::Array(vec![v]);
                    }
                    *node = v;
                }
                _ => {
                    let changed = match &*node {
                        Value::Number(n) => Value::String(n.to_string()),
                        Value::String(s) => match s.parse::<f64>() {
                            Ok(_) => raw.value(s.clone()),
                            Err(_) => Value::Null,
                        },
                        Value::Bool(b) => Value::from(*b as u8),
                        Value::Null => Value::Object(Default::default()),
                        other => Value::String(other.to_string()),
                    };
                    *node = changed;
                }
            },
        }
    }
    raw
}

/// Mutates a JSON document structurally; `None` when `data` is not JSON (callers fall back to
/// [`havoc`]). The result is sometimes truncated or byte-mutated as well.
pub fn mutate_json(rng: &mut Rng, data: &[u8], other: &[u8], hints: &JsonHints) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(data).ok()?;
    let other: Option<Value> = if rng.one_in(2) { serde_json::from_slice(other).ok() } else { None };
    let raw = mutate_json_value(rng, &mut doc, other.as_ref(), hints);
    let text = if rng.one_in(2) { serde_json::to_string(&doc) } else { serde_json::to_string_pretty(&doc) };
    let mut out = raw.apply(text.ok()?).into_bytes();
    if rng.one_in(12) {
        let at = rng.below(out.len() + 1);
        out.truncate(at);
    } else if rng.one_in(10) {
        havoc(rng, &mut out, &[], &[b"\"", b"{", b"}", b"[", b"]", b",", b":", b"\\u0000", b"\\ud800"], 1 << 20);
    }
    out.truncate(MAX_INPUT);
    Some(out)
}

// ---------------------------------------------------------------- safetensors

const DTYPES: [&str; 22] = [
    "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "I8", "BOOL", "F8_E4M3", "F8_E5M2", "U16", "I16", "U32", "U64",
    "C64", "F4", "F6_E2M3", "E8M0", "F8_E8M0", "f32", "",
];

const DIMS: [u64; 15] = [
    0,
    1,
    2,
    3,
    4,
    64,
    1 << 16,
    (1 << 31) - 1,
    1 << 31,
    1 << 32,
    3_037_000_500,
    (1 << 61) - 1,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
];

/// Splits a safetensors file into its header (as JSON) and data.
fn split_safetensors(data: &[u8]) -> Option<(serde_json::Map<String, Value>, &[u8])> {
    let len = u64::from_le_bytes(data.get(..8)?.try_into().ok()?) as usize;
    let header = data.get(8..8usize.checked_add(len)?)?;
    match serde_json::from_slice(header).ok()? {
        Value::Object(map) => Some((map, &data[8 + len..])),
        _ => None,
    }
}

/// Mutates a safetensors file: one tensor's dtype, shape or offsets, the header as JSON, the
/// length prefix, or the data; the header is written back with a correct length prefix most
/// of the time.
pub fn mutate_safetensors(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let Some((mut header, body)) = split_safetensors(data) else {
        let mut out = data.to_vec();
        havoc(rng, &mut out, other, &[b"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"], 256);
        return out;
    };
    let mut body = body.to_vec();
    let mut raw = Raw(Vec::new());
    let names: Vec<String> = header.keys().filter(|k| *k != "__metadata__").cloned().collect();
    let dim = |rng: &mut Rng, raw: &mut Raw| -> Value {
        if rng.one_in(8) {
            raw.value(rng.pick(&["-1", "1.5", "\"2\"", "null"]).to_string())
        } else {
            Value::from(*rng.pick(&DIMS))
        }
    };
    match rng.below(10) {
        0..=4 if !names.is_empty() => {
            let name = rng.pick(&names).clone();
            let entry = header.get_mut(&name).expect("present");
            match (rng.below(4), entry) {
                (0, Value::Object(fields)) => {
                    fields.insert("dtype".into(), Value::from(*rng.pick(&DTYPES)));
                }
                (1, Value::Object(fields)) => {
                    let shape = match rng.below(5) {
                        0 => Value::Array(vec![]),
                        1 => Value::Array((0..1 + rng.below(3)).map(|_| dim(rng, &mut raw)).collect()),
                        2 => Value::Array(vec![Value::from(1); 1 + rng.below(80)]),
                        _ => {
                            let mut shape = fields.get("shape").cloned().unwrap_or(Value::Array(vec![]));
                            if let Value::Array(dims) = &mut shape
                                && !dims.is_empty()
                            {
                                let i = rng.below(dims.len());
                                dims[i] = dim(rng, &mut raw);
                            }
                            shape
                        }
                    };
                    fields.insert("shape".into(), shape);
                }
                (2, Value::Object(fields)) => {
                    let (start, end) = match fields.get("data_offsets") {
                        Some(Value::Array(o)) if o.len() == 2 => {
                            (o[0].as_u64().unwrap_or(0), o[1].as_u64().unwrap_or(0))
                        }
                        _ => (0, 0),
                    };
                    let total = body.len() as u64;
                    let pick = |rng: &mut Rng| match rng.below(8) {
                        0 => start,
                        1 => end,
                        2 => total,
                        3 => total + 1 + rng.below(16) as u64,
                        4 => start.wrapping_add(rng.below(9) as u64).wrapping_sub(4),
                        5 => end.wrapping_add(rng.below(9) as u64).wrapping_sub(4),
                        _ => *rng.pick(&DIMS),
                    };
                    let offsets = match rng.below(4) {
                        0 => vec![Value::from(end), Value::from(start)],
                        1 => vec![Value::from(pick(rng))],
                        _ => vec![Value::from(pick(rng)), Value::from(pick(rng))],
                    };
                    fields.insert("data_offsets".into(), Value::Array(offsets));
                }
                (_, entry) => {
                    let hints = JsonHints { keys: &["dtype", "shape", "data_offsets"], strings: &DTYPES };
                    mutate_json_value(rng, entry, None, &hints);
                }
            }
        }
        5 if !names.is_empty() => {
            // Drop or duplicate a tensor (a duplicate overlaps the original's bytes).
            let name = rng.pick(&names).clone();
            if rng.one_in(2) {
                header.remove(&name);
            } else {
                let entry = header[&name].clone();
                header.insert(format!("{name}{}", rng.pick(&["", ".x", "_", "\u{0}"])), entry);
            }
        }
        6 => {
            let hints = JsonHints { keys: &["dtype", "shape", "data_offsets", "__metadata__"], strings: &DTYPES };
            let mut doc = Value::Object(header);
            raw = mutate_json_value(rng, &mut doc, None, &hints);
            header = match doc {
                Value::Object(map) => map,
                other => {
                    let mut map = serde_json::Map::new();
                    map.insert("x".into(), other);
                    map
                }
            };
        }
        7 if rng.one_in(2) => {
            // Lay the tensors out again, one after another by their (possibly huge) declared
            // sizes, so that shape changes come with offsets that tile.
            let mut start = 0u64;
            for name in &names {
                if let Some(Value::Object(fields)) = header.get_mut(name) {
                    let width = match fields.get("dtype").and_then(Value::as_str) {
                        Some("F64" | "I64" | "U64" | "C64") => 8,
                        Some("F32" | "I32" | "U32") => 4,
                        Some("F16" | "BF16" | "I16" | "U16") => 2,
                        _ => 1,
                    };
                    let count = fields
                        .get("shape")
                        .and_then(Value::as_array)
                        .map_or(0, |dims| dims.iter().fold(1u64, |n, d| n.wrapping_mul(d.as_u64().unwrap_or(0))));
                    let end = start.wrapping_add(count.wrapping_mul(width));
                    fields.insert("data_offsets".into(), Value::from(vec![start, end]));
                    start = end;
                }
            }
        }
        7 => match rng.below(3) {
            0 => body.truncate(rng.below(body.len() + 1)),
            1 => body.extend(std::iter::repeat_n(0u8, 1 + rng.below(64))),
            _ => havoc(rng, &mut body, other, &[], 64),
        },
        _ => {}
    }
    let text = raw.apply(serde_json::to_string(&Value::Object(header)).unwrap_or_default());
    let mut text = text.into_bytes();
    if rng.one_in(3) {
        // safetensors pads headers with spaces to 8 bytes.
        text.resize(text.len().div_ceil(8) * 8, b' ');
    }
    let mut len = text.len() as u64;
    if rng.one_in(8) {
        len = match rng.below(5) {
            0 => *rng.pick(&DIMS),
            1 => len.wrapping_add(1),
            2 => len.wrapping_sub(1),
            3 => (text.len() + body.len()) as u64,
            _ => 100_000_001,
        };
    }
    let mut out = len.to_le_bytes().to_vec();
    out.extend(text);
    out.extend(body);
    if rng.one_in(10) {
        havoc(rng, &mut out, other, &[], 512);
    }
    out.truncate(MAX_INPUT);
    out
}

// ---------------------------------------------------------------- torch zip / pickle

/// Pickle opcodes and fragments worth inserting.
const PICKLE_TOKENS: [&[u8]; 32] = [
    b"(",
    b")",
    b".",
    b"}",
    b"]",
    b"t",
    b"R",
    b"u",
    b"e",
    b"s",
    b"a",
    b"N",
    b"Q",
    b"\x85",
    b"\x86",
    b"\x87",
    b"\x88",
    b"\x89",
    b"\x94",
    b"\x80\x02",
    b"\x80\x05",
    b"K\xff",
    b"J\xff\xff\xff\xff",
    b"J\xff\xff\xff\x7f",
    b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\x8a\x00",
    b"h\x00",
    b"q\x00",
    b"r\xff\xff\xff\xff",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"ctorch\nFloatStorage\n",
    b"X\xff\xff\xff\x7f",
];

const STORAGES: [&str; 12] = [
    "FloatStorage",
    "HalfStorage",
    "BFloat16Storage",
    "DoubleStorage",
    "IntStorage",
    "LongStorage",
    "ByteStorage",
    "BoolStorage",
    "ShortStorage",
    "CharStorage",
    "ComplexFloatStorage",
    "QInt8Storage",
];

/// Mutates a pickle: an integer argument (BININT1/2/4, LONG1) set to a boundary value, a
/// string (storage type, storage key, device) changed, a length prefix corrupted, opcodes
/// inserted, or plain havoc.
pub fn mutate_pickle(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let find = |data: &[u8], op: u8| -> Vec<usize> {
        data.iter().enumerate().filter(|&(_, &b)| b == op).map(|(i, _)| i).collect()
    };
    match rng.below(6) {
        0 | 1 => {
            let op = *rng.pick(&[b'K', b'M', b'J', 0x8a]);
            let at = find(data, op);
            if at.is_empty() {
                return havoc(rng, data, other, &PICKLE_TOKENS, 1 << 12);
            }
            let i = *rng.pick(&at) + 1;
            let word = *rng.pick(&WORDS);
            let width = match op {
                b'K' => 1,
                b'M' => 2,
                b'J' => 4,
                _ => {
                    // LONG1: a length byte, then that many little-endian bytes.
                    if i < data.len() {
                        let n = data[i] as usize;
                        let bytes = word.to_le_bytes();
                        let end = (i + 1 + n).min(data.len());
                        let new_len = *rng.pick(&[1usize, 2, 4, 8]);
                        data.splice(i..end, std::iter::once(new_len as u8).chain(bytes[..new_len].iter().copied()));
                    }
                    return;
                }
            };
            for (k, b) in word.to_le_bytes()[..width].iter().enumerate() {
                if i + k < data.len() {
                    data[i + k] = *b;
                }
            }
        }
        2 => {
            // A storage type or another string replaced by one of the same family.
            let text = String::from_utf8_lossy(data).into_owned();
            let known: Vec<&str> = STORAGES.iter().copied().filter(|s| text.contains(s)).collect();
            if let Some(from) = known.first() {
                let to = rng.pick(&STORAGES);
                let from = from.as_bytes();
                if let Some(pos) = data.windows(from.len()).position(|w| w == from) {
                    data.splice(pos..pos + from.len(), to.bytes());
                }
            } else {
                havoc(rng, data, other, &PICKLE_TOKENS, 1 << 12);
            }
        }
        3 => {
            // A BINUNICODE / SHORT_BINUNICODE length corrupted.
            let op = *rng.pick(&[b'X', 0x8c]);
            let at = find(data, op);
            if let Some(&i) = at.get(rng.below(at.len().max(1))) {
                let word = *rng.pick(&WORDS);
                let width = if op == b'X' { 4 } else { 1 };
                for (k, b) in word.to_le_bytes()[..width].iter().enumerate() {
                    if i + 1 + k < data.len() {
                        data[i + 1 + k] = *b;
                    }
                }
            }
        }
        _ => havoc(rng, data, other, &PICKLE_TOKENS, 1 << 12),
    }
}

fn read_zip(data: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).ok()?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        entries.push((file.name().ok()?.into_owned(), bytes));
    }
    Some(entries)
}

fn write_zip(entries: &[(String, Vec<u8>)], align: bool) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        let options = if align { stored.with_alignment(64) } else { stored };
        zip.start_file(name.as_str(), options).ok()?;
        zip.write_all(bytes).ok()?;
    }
    Some(zip.finish().ok()?.into_inner())
}

/// Mutates a torch checkpoint. A zip is unpacked, one entry changed (the pickle with
/// [`mutate_pickle`], a storage truncated or grown, `byteorder`/`version` rewritten, an entry
/// dropped, duplicated or renamed) and packed again with valid CRCs, or its raw zip header
/// fields are set to boundary values. Legacy and tar files get pickle mutation and havoc.
pub fn mutate_torch(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let is_zip = data.starts_with(b"PK\x03\x04");
    if !is_zip || rng.one_in(6) {
        if rng.one_in(2) {
            mutate_zip_headers(rng, &mut out);
        } else {
            mutate_pickle(rng, &mut out, other);
        }
        return out;
    }
    let Some(mut entries) = read_zip(data) else {
        havoc(rng, &mut out, other, &PICKLE_TOKENS, 1 << 12);
        return out;
    };
    if entries.is_empty() {
        return out;
    }
    let i = rng.below(entries.len());
    let name = entries[i].0.clone();
    match rng.below(10) {
        0..=4 => {
            let pickle = entries.iter().position(|(n, _)| n.ends_with(".pkl")).unwrap_or(i);
            mutate_pickle(rng, &mut entries[pickle].1, other);
        }
        5 => {
            let bytes = &mut entries[i].1;
            match rng.below(3) {
                0 => bytes.truncate(rng.below(bytes.len() + 1)),
                1 => bytes.extend(std::iter::repeat_n(0u8, 1 + rng.below(64))),
                _ => bytes.clear(),
            }
        }
        6 => {
            const BYTEORDER: [&[u8]; 4] = [b"big", b"", b"little\n", b"\xff"];
            const VERSION: [&[u8]; 5] = [b"3\n", b"1000\n", b"", b"-1", b"2"];
            let options: &[&[u8]] = if name.ends_with("byteorder") { &BYTEORDER } else { &VERSION };
            let text = *rng.pick(options);
            entries[i].1 = text.to_vec();
        }
        7 => {
            entries.remove(i);
        }
        8 => {
            let copy = entries[i].clone();
            entries.insert(rng.below(entries.len() + 1), copy);
        }
        _ => {
            let new = match rng.below(4) {
                0 => format!("{name}9"),
                1 => name.replace("/data/", "/data/../"),
                2 => format!("other/{name}"),
                _ => name.rsplit_once('/').map_or(name.clone(), |(dir, _)| format!("{dir}/{}", rng.below(1000))),
            };
            entries[i].0 = new;
        }
    }
    write_zip(&entries, rng.one_in(2)).unwrap_or(out)
}

/// Sets one size, offset or count field of a zip local header, central directory entry or
/// end record to a boundary value (the archive is not repacked).
fn mutate_zip_headers(rng: &mut Rng, data: &mut [u8]) {
    /// A record's signature and its size fields as (offset, width).
    type Record = (&'static [u8; 4], &'static [(usize, usize)]);
    const FIELDS: [Record; 3] = [
        (b"PK\x03\x04", &[(8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)]),
        (b"PK\x01\x02", &[(10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (42, 4)]),
        (b"PK\x05\x06", &[(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)]),
    ];
    let (signature, fields) = rng.pick(&FIELDS);
    let at: Vec<usize> = data.windows(4).enumerate().filter(|(_, w)| w == signature).map(|(i, _)| i).collect();
    if at.is_empty() {
        return;
    }
    let start = *rng.pick(&at);
    let (offset, width) = *rng.pick(fields);
    let word = *rng.pick(&WORDS);
    for (k, b) in word.to_le_bytes()[..width].iter().enumerate() {
        if let Some(slot) = data.get_mut(start + offset + k) {
            *slot = *b;
        }
    }
}

// ---------------------------------------------------------------- RIFF / WAV

struct Chunk {
    id: [u8; 4],
    size: u32,
    data: Vec<u8>,
}

fn parse_riff(data: &[u8]) -> Option<Vec<Chunk>> {
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return None;
    }
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= data.len() {
        let id: [u8; 4] = data[at..at + 4].try_into().ok()?;
        let size = u32::from_le_bytes(data[at + 4..at + 8].try_into().ok()?);
        let end = (at + 8).saturating_add(size as usize).min(data.len());
        chunks.push(Chunk { id, size, data: data[at + 8..end].to_vec() });
        at = end + (size as usize & 1);
    }
    Some(chunks)
}

/// Mutates a WAV file chunk by chunk: format fields (tag, channels, rate, byte rate, block
/// align, bits, extensible fields), chunk sizes (RIFF, fmt, data) set to boundary values,
/// chunks added, dropped, duplicated or reordered, sample data cut; the file is written
/// back with each chunk's (possibly false) declared size.
pub fn mutate_wav(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let Some(mut chunks) = parse_riff(data) else {
        let mut out = data.to_vec();
        havoc(rng, &mut out, other, &[b"RIFF", b"WAVE", b"fmt ", b"data", b"LIST", b"fact"], 64);
        return out;
    };
    let mut riff_size: Option<u32> = None;
    let fmt = chunks.iter().position(|c| &c.id == b"fmt ");
    match rng.below(10) {
        0..=3 if fmt.is_some() => {
            let fmt = &mut chunks[fmt.expect("checked")].data;
            // (offset, width, values)
            let fields: [(usize, usize, &[u64]); 9] = [
                (0, 2, &[0, 1, 2, 3, 6, 7, 0x55, 0xfffe, 0xffff]),
                (2, 2, &[0, 1, 2, 3, 6, 8, 255, 256, 65535]),
                (
                    4,
                    4,
                    &[
                        0,
                        1,
                        7,
                        3999,
                        4000,
                        8000,
                        11025,
                        16000,
                        16001,
                        44099,
                        44100,
                        48000,
                        96000,
                        192000,
                        768_000,
                        768_001,
                        999_983,
                        1 << 20,
                        0x7fff_ffff,
                        0xffff_ffff,
                    ],
                ),
                (8, 4, &[0, 1, 0xffff_ffff, 64000, 192000]),
                (12, 2, &[0, 1, 2, 3, 4, 6, 8, 65535]),
                (14, 2, &[0, 1, 4, 7, 8, 12, 16, 20, 24, 32, 33, 48, 64, 65535]),
                (16, 2, &[0, 22, 0xffff]),
                (18, 2, &[0, 1, 8, 16, 24, 32, 65535]),
                (24, 4, &[0, 1, 3, 0xffff_ffff]),
            ];
            let (offset, width, values) = *rng.pick(&fields);
            let value = *rng.pick(values);
            if rng.one_in(5) && fmt.len() < 40 {
                // Make it an extensible header (cbSize 22, valid bits, mask, PCM/float GUID).
                fmt.resize(16, 0);
                fmt[0..2].copy_from_slice(&0xfffeu16.to_le_bytes());
                fmt.extend_from_slice(&22u16.to_le_bytes());
                fmt.extend_from_slice(&16u16.to_le_bytes());
                fmt.extend_from_slice(&3u32.to_le_bytes());
                let tag = *rng.pick(&[1u8, 3, 2, 0]);
                fmt.extend_from_slice(&[tag, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
            }
            for (k, b) in value.to_le_bytes()[..width].iter().enumerate() {
                if let Some(slot) = fmt.get_mut(offset + k) {
                    *slot = *b;
                }
            }
            if fmt.len() >= 16 && rng.one_in(2) {
                // Keep the derived fields consistent, as readers check them.
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]) as u32;
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let bits = u16::from_le_bytes([fmt[14], fmt[15]]) as u32;
                let align = channels.wrapping_mul(bits.div_ceil(8));
                fmt[8..12].copy_from_slice(&rate.wrapping_mul(align).to_le_bytes());
                fmt[12..14].copy_from_slice(&(align as u16).to_le_bytes());
            }
        }
        4 => {
            let c = rng.below(chunks.len().max(1));
            if let Some(chunk) = chunks.get_mut(c) {
                chunk.size = match rng.below(6) {
                    0 => 0,
                    1 => chunk.size.wrapping_add(1),
                    2 => chunk.size.wrapping_sub(1),
                    3 => u32::MAX,
                    4 => 0x8000_0000,
                    _ => chunk.size / 2,
                };
            }
        }
        5 => riff_size = Some(*rng.pick(&[0u32, 4, 36, u32::MAX, data.len() as u32 * 2])),
        6 => {
            let id = *rng.pick(&[b"LIST", b"fact", b"JUNK", b"data", b"fmt ", b"smpl", b"\0\0\0\0"]);
            let n = *rng.pick(&[0usize, 1, 3, 4, 16, 40]);
            let chunk = Chunk { id: *id, size: n as u32, data: vec![rng.next_u64() as u8; n] };
            chunks.insert(rng.below(chunks.len() + 1), chunk);
        }
        7 if !chunks.is_empty() => {
            let c = rng.below(chunks.len());
            if rng.one_in(2) {
                chunks.remove(c);
            } else {
                let (a, b) = (c, rng.below(chunks.len()));
                chunks.swap(a, b);
            }
        }
        8 => {
            if let Some(chunk) = chunks.iter_mut().find(|c| &c.id == b"data") {
                let n = rng.below(chunk.data.len() + 1);
                chunk.data.truncate(n);
                if !rng.one_in(3) {
                    chunk.size = n as u32;
                }
            }
        }
        _ => {
            let mut out = data.to_vec();
            havoc(rng, &mut out, other, &[b"fmt ", b"data"], 64);
            return out;
        }
    }
    let body_len: usize = chunks.iter().map(|c| 8 + c.data.len() + (c.data.len() & 1)).sum();
    let mut out = Vec::with_capacity(12 + body_len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.unwrap_or((4 + body_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    for chunk in &chunks {
        out.extend_from_slice(&chunk.id);
        out.extend_from_slice(&chunk.size.to_le_bytes());
        out.extend_from_slice(&chunk.data);
        if chunk.data.len() & 1 == 1 {
            out.push(0);
        }
    }
    out.truncate(MAX_INPUT);
    out
}

// ---------------------------------------------------------------- CSV / TSV scripts

const CELLS: [&str; 30] = [
    "",
    "id",
    "text",
    "voice",
    "prompt_wav",
    "prompt_text",
    "seed",
    "cfg",
    "steps",
    "min_len",
    "max_len",
    "-1",
    "0",
    "1e309",
    "NaN",
    "inf",
    "-inf",
    "18446744073709551616",
    "18446744073709551615",
    "4294967296",
    "3.5",
    "../x.wav",
    "/abs/x.wav",
    ".hidden",
    "a/b",
    "\"quoted \"\" cell\"",
    "\"unterminated",
    "\"multi\nline\"",
    "今天天气很好",
    "\u{feff}id",
];

/// Mutates a script table: a cell replaced by a column name or a boundary value, a column
/// or row added, dropped or duplicated, delimiters and line ends swapped, or havoc.
pub fn mutate_script(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    if rng.one_in(4) || std::str::from_utf8(data).is_err() {
        let mut out = data.to_vec();
        havoc(rng, &mut out, other, &[b"\t", b",", b"\n", b"\r\n", b"\"", b"\xff", b"\xe9"], 1 << 10);
        return out;
    }
    let text = String::from_utf8_lossy(data);
    let delimiter = if text.lines().next().is_some_and(|l| l.contains('\t')) { '\t' } else { ',' };
    let mut rows: Vec<Vec<String>> =
        text.split('\n').map(|l| l.split(delimiter).map(str::to_owned).collect()).collect();
    if rows.is_empty() {
        rows.push(vec![String::new()]);
    }
    let r = rng.below(rows.len());
    match rng.below(8) {
        0..=2 => {
            let c = rng.below(rows[r].len());
            rows[r][c] = if rng.one_in(6) { "x".repeat(1 << rng.below(14)) } else { rng.pick(&CELLS).to_string() };
        }
        3 => {
            let c = rng.below(rows[r].len() + 1);
            rows[r].insert(c, rng.pick(&CELLS).to_string());
        }
        4 if rows[r].len() > 1 => {
            let c = rng.below(rows[r].len());
            rows[r].remove(c);
        }
        5 => {
            let row = rows[r].clone();
            let n = if rng.one_in(8) { 1 << rng.below(10) } else { 1 };
            for _ in 0..n {
                rows.insert(rng.below(rows.len() + 1), row.clone());
            }
        }
        6 if rows.len() > 1 => {
            rows.remove(r);
        }
        _ => {
            let swapped = if delimiter == '\t' { ',' } else { '\t' };
            let c = rng.below(rows[r].len());
            rows[r][c].push(swapped);
        }
    }
    let newline = if rng.one_in(6) { "\r\n" } else { "\n" };
    let mut out =
        rows.iter().map(|row| row.join(&delimiter.to_string())).collect::<Vec<_>>().join(newline).into_bytes();
    out.truncate(MAX_INPUT);
    out
}

// ---------------------------------------------------------------- msgpack frames

fn mutate_msgpack(rng: &mut Rng, value: &mut rmpv::Value, keys: &[&str]) {
    use rmpv::Value as V;
    let descend = match value {
        V::Array(items) => !items.is_empty() && !rng.one_in(3),
        V::Map(entries) => !entries.is_empty() && !rng.one_in(3),
        _ => false,
    };
    if descend {
        match value {
            V::Array(items) => {
                let i = rng.below(items.len());
                return mutate_msgpack(rng, &mut items[i], keys);
            }
            V::Map(entries) => {
                let i = rng.below(entries.len());
                let entry = &mut entries[i];
                return if rng.one_in(4) {
                    mutate_msgpack(rng, &mut entry.0, keys)
                } else {
                    mutate_msgpack(rng, &mut entry.1, keys)
                };
            }
            _ => unreachable!(),
        }
    }
    if let V::Map(entries) = value
        && !rng.one_in(3)
    {
        match rng.below(3) {
            0 if !entries.is_empty() => {
                entries.remove(rng.below(entries.len()));
            }
            1 if !entries.is_empty() => {
                let i = rng.below(entries.len());
                entries.push(entries[i].clone());
            }
            _ => {
                let key = V::from(*rng.pick(keys));
                let mut new = V::Nil;
                mutate_msgpack(rng, &mut new, keys);
                entries.push((key, new));
            }
        }
        return;
    }
    *value = match rng.below(14) {
        0 => V::Nil,
        1 => V::Boolean(rng.one_in(2)),
        2 => V::from(*rng.pick(&WORDS)),
        3 => V::from(-(*rng.pick(&WORDS) as i64)),
        4 => V::from(*rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308, 5e-324, 0.5, 1e20])),
        5 => V::F32(*rng.pick(&[f32::NAN, f32::INFINITY, 3.0, 0.0, -1.0])),
        6 => V::from(*rng.pick(&STRINGS)),
        7 => V::from(*rng.pick(keys)),
        8 => V::Binary(vec![0xff; rng.below(64)]),
        9 => V::Array(vec![V::from(1); rng.below(8)]),
        10 => V::Map(vec![]),
        11 => V::Ext(rng.below(256) as i8, vec![0; rng.below(16)]),
        12 => V::from("\u{fffd}\u{0}"),
        _ => V::from(long_string(rng)),
    };
}

/// Splits a stream into its frames' payloads (`None` if a length is out of range).
fn split_frames(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut frames = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
        if len < 4 || len > rest.len() {
            return None;
        }
        frames.push(&rest[4..len]);
        rest = &rest[len..];
    }
    rest.is_empty().then_some(frames)
}

/// Mutates a bridge stream: one frame's msgpack value changed and re-encoded with a correct
/// length, a length set to a boundary value, frames dropped, duplicated or spliced, or havoc.
pub fn mutate_frames(rng: &mut Rng, data: &[u8], other: &[u8], keys: &[&str]) -> Vec<u8> {
    let Some(frames) = split_frames(data).filter(|f| !f.is_empty() && !rng.one_in(6)) else {
        let mut out = data.to_vec();
        havoc(rng, &mut out, other, &[b"\x00\x00\x00\x04", b"\x80", b"\x81\xa4type", b"\xc0", b"\xdb"], 64);
        return out;
    };
    let mut frames: Vec<Vec<u8>> = frames.into_iter().map(<[u8]>::to_vec).collect();
    let i = rng.below(frames.len());
    let mut lengths: Vec<Option<u32>> = vec![None; frames.len()];
    match rng.below(8) {
        0..=3 => {
            if let Ok(mut value) = rmpv::decode::read_value(&mut &frames[i][..]) {
                mutate_msgpack(rng, &mut value, keys);
                let mut payload = Vec::new();
                if rmpv::encode::write_value(&mut payload, &value).is_ok() {
                    frames[i] = payload;
                }
            } else {
                havoc(rng, &mut frames[i], other, &[], 64);
            }
        }
        4 => lengths[i] = Some(*rng.pick(&[0u32, 3, 4, 5, 16 << 20, (16 << 20) + 1, u32::MAX])),
        5 => {
            let copy = frames[i].clone();
            frames.insert(rng.below(frames.len() + 1), copy);
            lengths.push(None);
        }
        6 if frames.len() > 1 => {
            frames.remove(i);
            lengths.pop();
        }
        _ => havoc(rng, &mut frames[i], other, &[b"\xc0", b"\xa4type", b"\x81"], 64),
    }
    let mut out = Vec::new();
    for (frame, length) in frames.iter().zip(lengths) {
        out.extend_from_slice(&length.unwrap_or(frame.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(frame);
    }
    out.truncate(MAX_INPUT);
    out
}

// ---------------------------------------------------------------- multi-file inputs

/// Several files in one input: each part but the last is prefixed with its length (u32 LE);
/// the last takes the rest. Any bytes decode (missing parts are empty), so every input is a
/// valid case.
pub struct Parts;

impl Parts {
    pub fn encode(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if i + 1 < parts.len() {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(part);
        }
        out
    }

    pub fn decode(data: &[u8], count: usize) -> Vec<&[u8]> {
        let mut parts = Vec::with_capacity(count);
        let mut rest = data;
        for i in 0..count {
            if i + 1 == count {
                parts.push(rest);
                break;
            }
            let Some(len) = rest.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize) else {
                parts.push(&[][..]);
                rest = &[];
                continue;
            };
            let len = len.min(rest.len() - 4);
            parts.push(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        parts
    }
}
