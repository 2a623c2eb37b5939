//! Property tests of the bridge's input side: any bytes, any lengths, any msgpack values give
//! an error or a request, never a panic, a hang or an allocation beyond the frame limit.

use std::sync::LazyLock;

use proptest::prelude::*;
use rmpv::Value;
use voxcpm_engine::bridge::{FrameError, MAX_FRAME_BYTES, REQUEST_KEYS, decode_map, parse, read_frame};

/// Reads every frame of `input` and parses what decodes; returns how many frames were read.
fn consume(mut input: &[u8]) -> usize {
    let mut frames = 0;
    loop {
        match read_frame(&mut input) {
            Ok(payload) => {
                frames += 1;
                if let Ok(map) = decode_map(&payload) {
                    let _ = parse(map);
                }
            }
            Err(FrameError::Eof | FrameError::Fatal(_)) => return frames,
            Err(FrameError::BadPayload(m)) => panic!("read_frame never judges payloads: {m}"),
        }
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

/// `type` first (the property test below sets it itself), then every key a request reads.
static KEYS: LazyLock<Vec<&str>> = LazyLock::new(|| std::iter::once("type").chain(REQUEST_KEYS).collect());
const TYPES: [&str; 7] = ["init", "generate", "generate_streaming", "load_lora", "unload_lora", "ping", "other"];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        consume(&bytes);
    }

    #[test]
    fn declared_lengths_are_checked_before_reading(length in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut input = length.to_be_bytes().to_vec();
        input.extend(&body);
        match read_frame(&mut &input[..]) {
            Ok(payload) => prop_assert_eq!(payload.len() as u32 + 4, length),
            Err(FrameError::Fatal(m)) => prop_assert!(!(4..=MAX_FRAME_BYTES).contains(&length) || (length - 4) as usize > body.len(), "{}", m),
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn any_value_of_any_known_key_parses_or_is_refused_by_name(
        kind in 0..TYPES.len(),
        fields in proptest::collection::vec((0..KEYS.len(), value()), 0..8),
    ) {
        let mut map = vec![("type".to_owned(), Value::from(TYPES[kind]))];
        map.extend(fields.into_iter().filter(|(k, _)| *k != 0).map(|(k, v)| (KEYS[k].to_owned(), v)));
        if let Err(message) = parse(map) {
            prop_assert!(KEYS.iter().any(|k| message.contains(k)), "{}", message);
        }
    }

    #[test]
    fn any_msgpack_value_decodes_or_is_refused(v in value()) {
        let mut payload = Vec::new();
        rmpv::encode::write_value(&mut payload, &v).unwrap();
        match decode_map(&payload) {
            Ok(map) => { let _ = parse(map); }
            Err(FrameError::BadPayload(_)) => {}
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }
}
