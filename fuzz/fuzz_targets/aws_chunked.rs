//! The aws-chunked decoder (s3/chunked.rs, with sigv4/chunk.rs checking
//! chunk and trailer signatures), fed a body cut into frames.
//!
//! Input: a flags byte (bits 0-1 the flavour: signed, signed with trailer,
//! unsigned with trailer; bit 2: no signature chain; bit 3: the connection
//! fails after the last frame; bit 4: the declared length is the next u16,
//! else it is found by decoding once), the declared length (u16 LE), a
//! frame count (low 4 bits) and that many frame lengths (u16 LE), then the
//! body. Signed bodies are signed as AWS's example (see
//! `larder::fuzzing::CHUNKED_SECRET`).
//!
//! Whatever the body, the decoder must not panic, must stop at the
//! declared length, and must decode the same whatever the framing.

#![no_main]

use larder::fuzzing::{aws_chunked, ChunkedOutcome, Flavour};
use larder_fuzz::{frames, Choices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices(data);
    let flags = choices.byte();
    let flavour = match flags & 3 {
        0 => Flavour::Signed,
        1 => Flavour::SignedWithTrailer,
        _ => Flavour::UnsignedWithTrailer,
    };
    let signed = flags & 4 == 0;
    let fail_at_end = flags & 8 != 0;
    let explicit_declared = choices.u16();
    let count = choices.byte() & 0x0f;
    let lengths: Vec<usize> = (0..count).map(|_| usize::from(choices.u16())).collect();
    let body = choices.rest();

    let decode = |declared: u64, lengths: &[usize]| {
        let outcome = aws_chunked(flavour, signed, declared, frames(body, lengths.iter().copied()), fail_at_end);
        assert!(outcome.data.len() as u64 <= declared, "decoded past the declared length");
        assert!(outcome.trailers.len() <= 16, "too many trailers kept");
        if outcome.result.is_ok() {
            assert_eq!(outcome.data.len() as u64, declared, "a complete body is as long as declared");
            assert!(!fail_at_end, "a failed connection is a failed upload");
        }
        outcome
    };

    let outcome = if flags & 16 != 0 {
        decode(u64::from(explicit_declared), &lengths)
    } else {
        // Decode once without a limit, then with what came out declared.
        let unlimited = decode(u64::MAX, &lengths);
        let outcome = decode(unlimited.data.len() as u64, &lengths);
        assert!(unlimited.data.starts_with(&outcome.data), "the declared length changed the bytes");
        outcome
    };
    let declared = if flags & 16 != 0 { u64::from(explicit_declared) } else { outcome.data.len() as u64 };
    // The same body in one frame decodes the same.
    let whole = decode(declared, &[]);
    assert_eq!(summary(&outcome), summary(&whole), "the framing changed the outcome");
});

fn summary(outcome: &ChunkedOutcome) -> (&[u8], &[(String, String)], Result<(), &'static str>) {
    (&outcome.data, &outcome.trailers, outcome.result.as_ref().map(|_| ()).map_err(|error| error.code))
}
