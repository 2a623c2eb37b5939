//! VoxCPMEx v2.1 framing: a 4-byte big-endian length that counts itself, then one msgpack
//! map with string keys.

use std::io::{self, Read, Write};

use rmpv::Value;

/// The largest request accepted. Requests carry text and options, never audio; a bigger
/// declared length is a corrupt or hostile stream, refused before anything is allocated.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;

/// Nesting deeper than this is refused (requests are flat maps).
const MAX_DEPTH: usize = 16;

/// Why no request could be read.
#[derive(Debug)]
pub enum FrameError {
    /// The input ended cleanly between frames.
    Eof,
    /// The stream cannot be trusted any more (bad length, truncated frame, read error): the
    /// bridge answers once and exits, since it cannot find the next frame boundary.
    Fatal(String),
    /// One frame's payload is unusable; the next frame can still be read.
    BadPayload(String),
}

/// Reads one frame's payload.
pub fn read_frame(input: &mut impl Read) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        match input.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::Eof),
            Ok(0) => return Err(FrameError::Fatal(format!("input ended inside a frame header ({filled} of 4 bytes)"))),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Fatal(format!("cannot read input: {e}"))),
        }
    }
    let length = u32::from_be_bytes(header);
    if length < 4 {
        return Err(FrameError::Fatal(format!("frame length {length} is below 4 (it counts its own 4 bytes)")));
    }
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::Fatal(format!("frame length {length} exceeds the limit of {MAX_FRAME_BYTES} bytes")));
    }
    let mut payload = vec![0u8; (length - 4) as usize];
    input.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            FrameError::Fatal(format!("input ended inside a frame (expected {} payload bytes)", length - 4))
        }
        _ => FrameError::Fatal(format!("cannot read input: {e}")),
    })?;
    Ok(payload)
}

/// Decodes a payload into its map, requiring string keys and exactly one value.
pub fn decode_map(payload: &[u8]) -> Result<Vec<(String, Value)>, FrameError> {
    let bad = |m: String| FrameError::BadPayload(m);
    let mut cursor = payload;
    let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_DEPTH)
        .map_err(|e| bad(format!("payload is not valid msgpack ({e})")))?;
    if !cursor.is_empty() {
        return Err(bad(format!("{} bytes follow the msgpack value", cursor.len())));
    }
    let Value::Map(entries) = value else {
        return Err(bad("payload is not a msgpack map".into()));
    };
    entries
        .into_iter()
        .map(|(key, value)| match key {
            Value::String(s) if s.is_str() => Ok((s.into_str().unwrap_or_default(), value)),
            other => Err(bad(format!("map key {other} is not a string"))),
        })
        .collect()
}

/// Writes one frame holding `value` and flushes it.
pub fn write_frame(output: &mut impl Write, value: &Value) -> io::Result<()> {
    let mut payload = Vec::new();
    rmpv::encode::write_value(&mut payload, value).map_err(io::Error::other)?;
    let length = u32::try_from(payload.len() + 4).map_err(|_| io::Error::other("reply larger than 4 GiB"))?;
    output.write_all(&length.to_be_bytes())?;
    output.write_all(&payload)?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, value).unwrap();
        out
    }

    #[test]
    fn the_length_counts_its_own_four_bytes() {
        let bytes = framed(&Value::Map(vec![("type".into(), "ping".into())]));
        let length = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(length, bytes.len());
        let payload = read_frame(&mut &bytes[..]).unwrap();
        assert_eq!(decode_map(&payload).unwrap(), vec![("type".to_string(), Value::from("ping"))]);
    }

    #[test]
    fn broken_streams_and_payloads_are_told_apart() {
        assert!(matches!(read_frame(&mut &[][..]), Err(FrameError::Eof)));
        assert!(matches!(read_frame(&mut &[0, 0][..]), Err(FrameError::Fatal(_))));
        assert!(matches!(read_frame(&mut &[0, 0, 0, 3][..]), Err(FrameError::Fatal(m)) if m.contains("below 4")));
        assert!(
            matches!(read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..]), Err(FrameError::Fatal(m)) if m.contains("limit"))
        );
        assert!(
            matches!(read_frame(&mut &[0, 0, 0, 9, 1][..]), Err(FrameError::Fatal(m)) if m.contains("inside a frame"))
        );
        assert_eq!(read_frame(&mut &[0, 0, 0, 4][..]).unwrap(), Vec::<u8>::new());
        for (payload, why) in [
            (&[][..], "msgpack"),
            (&[0x93, 1, 2, 3][..], "not a msgpack map"),
            (&[0x81, 1, 2][..], "not a string"),
            (&[0x80, 0x80][..], "follow"),
            (&[0xdb, 0xff, 0xff, 0xff, 0xff][..], "msgpack"), // a 4 GiB string in 5 bytes
        ] {
            match decode_map(payload) {
                Err(FrameError::BadPayload(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{payload:?}: {other:?}"),
            }
        }
    }
}
