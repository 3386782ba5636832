//! Fuzzes the gateway protocol's frame decoder: any bytes must give a frame or a
//! typed error, never a panic; a decoded frame must encode back to itself; and
//! the checks made after decoding (a hello's fields, an inbound's attachments)
//! must not panic either. The same body runs as a property test in the crate's
//! tests (`tests/it/decoder_props.rs`).
#![no_main]

use clara_protocol::convert::{outbound_of, validate_hello};
use clara_protocol::{ClientFrame, decode_client, decode_server, encode};
use libfuzzer_sys::fuzz_target;

/// A frame limit small enough that the size check is hit too.
const MAX: usize = 64 * 1024;

fuzz_target!(|bytes: &[u8]| {
    match decode_client(bytes, MAX) {
        Ok(frame) => {
            let again = decode_client(encode(&frame).as_bytes(), usize::MAX)
                .expect("an encoded frame decodes");
            assert_eq!(again, frame, "a client frame survives a round trip");
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
            let again = decode_server(encode(&frame).as_bytes(), usize::MAX)
                .expect("an encoded frame decodes");
            assert_eq!(again, frame, "a server frame survives a round trip");
            drop(outbound_of(frame));
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
