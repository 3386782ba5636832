//! The frame decoder under random input, as a property test that runs with the
//! ordinary test suite (the coverage-guided fuzz target, with the same body,
//! is `crates/clara-protocol/fuzz`): any bytes give a frame or a typed error,
//! never a panic, and every frame decoded encodes back to itself.

use clara_protocol::convert::{outbound_of, validate_hello};
use clara_protocol::{ClientFrame, decode_client, decode_server, encode};
use proptest::prelude::*;

const MAX: usize = 64 * 1024;

/// Valid frames of both sides, to mutate.
const SEEDS: &[&str] = &[
    r#"{"v":1,"type":"hello","platform":"telegram","proof":"ab12","capabilities":{"max_message_chars":4096,"can_edit":true,"edit_cooldown_ms":1000},"adapter":"x/1"}"#,
    r#"{"v":1,"type":"inbound","id":"c-17","event_id":"tg-5512","conversation":{"channel":"42","kind":"dm"},"author":{"id":"7001","name":"Ann"},"text":"!high hi","sent_at_ms":1767225600000,"tier":"low","attachments":[{"type":"image","url":"https://e.org/c.jpg"},{"type":"image","media_type":"image/png","data":"iVBORw0K"}],"replying_to":[{"author":"Bob","text":"yo","from_clara":true}]}"#,
    r#"{"v":1,"type":"stop","conversation":{"channel":"42","kind":"server"},"author":{"id":"7001","name":"Ann"}}"#,
    r#"{"v":1,"type":"new_session","id":"c-19","conversation":{"channel":"42","kind":"group"},"author":{"id":"7001","name":"Ann"}}"#,
    r#"{"v":1,"type":"send_failed","request_id":4,"reason":"Too Many Requests","retry_after_ms":1200}"#,
    r#"{"v":1,"type":"sent","request_id":3,"message_id":"5519"}"#,
    r#"{"v":1,"type":"send","request_id":3,"thought":"0192f4c2-7a1e-7c3b-9d1e-3f5a6b7c8d90","conversation":{"channel":"42","kind":"direct"},"text":"It is a cat"}"#,
    r#"{"v":1,"type":"rejected","re":"c-18","code":"too_long","reason":"Too long.","chars":9000,"limit":8000}"#,
    r#"{"v":1,"type":"welcome","connection":"3f9a","max_frame_bytes":4194304,"ping_interval_ms":20000,"pong_timeout_ms":10000,"send_ack_timeout_ms":15000}"#,
    r#"{"v":1,"type":"error","code":"invalid_frame","message":"Bad.","re":"c-20"}"#,
];

/// Decodes both ways; whatever decodes must survive a round trip, and the
/// checks after decoding must not panic either.
fn check(bytes: &[u8]) {
    match decode_client(bytes, MAX) {
        Ok(frame) => {
            let again = decode_client(encode(&frame).as_bytes(), usize::MAX).unwrap();
            assert_eq!(again, frame);
            match &frame {
                ClientFrame::Hello(hello) => drop(validate_hello(hello)),
                ClientFrame::Inbound(inbound) => drop(inbound.to_core("fuzz", 0)),
                _ => {}
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    match decode_server(bytes, MAX) {
        Ok(frame) => {
            let again = decode_server(encode(&frame).as_bytes(), usize::MAX).unwrap();
            assert_eq!(again, frame);
            drop(outbound_of(frame));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}

/// A seed with a few random byte edits.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3_u8), 1..6);
    (prop::sample::select(SEEDS), edits).prop_map(|(seed, edits)| {
        let mut bytes = seed.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics_and_round_trips(bytes in mutated()) {
        check(&bytes);
    }
}

#[test]
fn the_seeds_are_valid_frames() {
    for seed in SEEDS {
        let ok = decode_client(seed.as_bytes(), MAX).is_ok()
            || decode_server(seed.as_bytes(), MAX).is_ok();
        assert!(ok, "{seed}");
    }
}
