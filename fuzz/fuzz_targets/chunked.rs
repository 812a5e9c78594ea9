//! Property: decoding any bytes whole and split at a fuzzer-chosen point gives the same
//! payload, the same number of bytes used and the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::{ChunkedDecoder, ChunkedError, ChunkedLimits};

/// Payload and bytes used when the body ended, `None` when the input ran out first.
type Outcome = Result<(Vec<u8>, Option<usize>), ChunkedError>;

fuzz_target!(|data: &[u8]| {
    // Four header bytes: a 16-bit split selector, then the extension and trailer limits,
    // kept small so that the limit errors are reachable.
    let [split_high, split_low, extension_limit, trailer_limit, body @ ..] = data else {
        return;
    };
    let limits = ChunkedLimits {
        max_extension_bytes: usize::from(*extension_limit),
        max_trailer_bytes: usize::from(*trailer_limit),
    };
    let split = usize::from(u16::from_be_bytes([*split_high, *split_low])) % (body.len() + 1);

    let whole = decode(&[body], limits);
    let (head, tail) = body.split_at(split);
    assert_eq!(decode(&[head, tail], limits), whole);
});

/// Feeds `pieces` in order, keeping unconsumed bytes as a connection's read buffer would.
fn decode(pieces: &[&[u8]], limits: ChunkedLimits) -> Outcome {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut payload = Vec::new();
    let mut pending = Vec::new();
    let mut used = 0;
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            let step = decoder.decode(&pending)?;
            assert!(step.consumed <= pending.len());
            if let Some(range) = step.data.clone() {
                assert!(range.end <= step.consumed);
                payload.extend_from_slice(&pending[range]);
            }
            pending.drain(..step.consumed);
            used += step.consumed;
            if step.done {
                assert!(decoder.is_done());
                return Ok((payload, Some(used)));
            }
            if step.consumed == 0 {
                break;
            }
        }
    }
    Ok((payload, None))
}
