use bytes::BytesMut;

use crate::http::{
    write_chunk_size, ChunkedDecoder, ChunkedError, ChunkedLimits, SyntaxError, CHUNK_END,
    LAST_CHUNK,
};

/// Outcome of decoding a whole input: payload and the bytes used, or the error.
type Outcome = Result<(Vec<u8>, usize), ChunkedError>;

/// Feeds `pieces` one after another, keeping unconsumed bytes as a reader would, until the
/// body is done or the input runs out. `Ok` carries the payload and the number of input
/// bytes used; an input that ends before the body is reported as `consumed == usize::MAX`.
fn decode_pieces(pieces: &[&[u8]], limits: ChunkedLimits) -> Outcome {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut payload = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut used = 0;
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            let step = decoder.decode(&pending)?;
            if let Some(range) = step.data.clone() {
                payload.extend_from_slice(&pending[range]);
            }
            pending.drain(..step.consumed);
            used += step.consumed;
            if step.done {
                return Ok((payload, used));
            }
            if step.consumed == 0 {
                break;
            }
        }
    }
    Ok((payload, usize::MAX))
}

fn decode_whole(input: &[u8]) -> Outcome {
    decode_pieces(&[input], ChunkedLimits::default())
}

/// (name, input, payload, bytes that belong to the body)
#[rustfmt::skip]
fn accepted_cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>, usize)> {
    let case = |name, input: &[u8], payload: &[u8]| {
        (name, input.to_vec(), payload.to_vec(), input.len())
    };
    vec![
        case("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("empty body", b"0\r\n\r\n", b""),
        case("two chunks", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        case("hex sizes", b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", b"0123456789abcdefghij"),
        case("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
        case("sixteen digits", b"0000000000000005\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("data with crlf inside", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),
        case("extension name", b"5;a\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension token value", b"5;a=b\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension quoted value", b"5;a=\"q d;\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension quoted escape", b"5;a=\"x\\\"y\\\\\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension quoted obs-text", b"5;a=\"caf\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension with bws", b"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extensions chained", b"5;a;b=c;d=\"e\"\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension quoted then bws", b"5;a=\"b\" ;c\r\nhello\r\n0\r\n\r\n", b"hello"),
        case("extension on last chunk", b"5\r\nhello\r\n0;a=b\r\n\r\n", b"hello"),
        case("one trailer", b"5\r\nhello\r\n0\r\nX-Trailer: value\r\n\r\n", b"hello"),
        case("framing trailers", b"0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n", b""),
        case("empty trailer value", b"0\r\nX:\r\n\r\n", b""),
        case("trailer obs-text", b"0\r\nX: caf\xc3\xa9\t\r\n\r\n", b""),
        (
            "bytes after the body",
            b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n".to_vec(),
            b"hello".to_vec(),
            15,
        ),
    ]
}

/// (name, input, error)
#[rustfmt::skip]
fn rejected_cases() -> Vec<(&'static str, Vec<u8>, ChunkedError)> {
    use ChunkedError as C;
    use SyntaxError as S;
    let raw = |bytes: &[u8]| bytes.to_vec();
    vec![
        // Chunk size.
        ("size 0x5", raw(b"0x5\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'x' }),
        ("size +5", raw(b"+5\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'+' }),
        ("size -1", raw(b"-1\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'-' }),
        ("size 5_0", raw(b"5_0\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'_' }),
        ("size g", raw(b"g\r\n"), C::InvalidChunkSize { byte: b'g' }),
        ("size empty", raw(b"\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'\r' }),
        ("size 17 digits", raw(b"00000000000000005\r\nhello\r\n0\r\n\r\n"), C::ChunkSizeTooLong),
        ("size 17 significant digits", raw(b"10000000000000000\r\n"), C::ChunkSizeTooLong),
        ("size leading space", raw(b" 5\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b' ' }),
        ("size leading tab", raw(b"\t5\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b'\t' }),
        ("size trailing space", raw(b"5 \r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("size bare lf", raw(b"5\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareLf)),
        ("size bare cr", raw(b"5\rhello\r\n0\r\n\r\n"), C::Syntax(S::BareCr)),
        ("size cr cr lf", raw(b"5\r\r\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareCr)),
        ("size lf first", raw(b"\n5\r\n"), C::Syntax(S::BareLf)),
        ("last chunk bare lf", raw(b"5\r\nhello\r\n0\n\r\n"), C::Syntax(S::BareLf)),
        // Extensions.
        ("extension bare lf after name", raw(b"5;a\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareLf)),
        ("extension bare lf after value", raw(b"5;a=b\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareLf)),
        ("extension bare lf in quoted", raw(b"5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareLf)),
        ("extension bare lf after semicolon", raw(b"5;\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareLf)),
        ("extension bare cr", raw(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), C::Syntax(S::BareCr)),
        ("extension ctl in name", raw(b"5;a\x01\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: 0x01 }),
        ("extension ctl in value", raw(b"5;a=b\x7f\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: 0x7f }),
        ("extension nul in quoted", raw(b"5;a=\"b\x00\"\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: 0 }),
        ("extension quoted crlf", raw(b"5;a=\"b\r\nc\"\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension unterminated quote", raw(b"5;a=\"b\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension escaped cr", raw(b"5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension empty name", raw(b"5;\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension no name", raw(b"5;=b\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'=' }),
        ("extension empty value", raw(b"5;a=\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension space after name", raw(b"5;a \r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension space after value", raw(b"5;a=b \r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'\r' }),
        ("extension text after quote", raw(b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'c' }),
        ("extension without semicolon", raw(b"5 a\r\nhello\r\n0\r\n\r\n"), C::InvalidExtension { byte: b'a' }),
        ("extension comma", raw(b"5,a\r\nhello\r\n0\r\n\r\n"), C::InvalidChunkSize { byte: b',' }),
        ("extension of 20 KiB", [&b"5;a="[..], &[b'x'; 20 * 1024], b"\r\nhello\r\n0\r\n\r\n"].concat(), C::ExtensionsTooLong { limit: 16 * 1024 }),
        ("extensions summed over chunks", [&b"1;"[..], &[b'x'; 9000], b"\r\na\r\n1;", &[b'x'; 9000], b"\r\nb\r\n0\r\n\r\n"].concat(), C::ExtensionsTooLong { limit: 16 * 1024 }),
        // Chunk data end.
        ("data then xx", raw(b"5\r\nhelloXX0\r\n\r\n"), C::MissingDataCrlf { byte: b'X' }),
        ("data then cr x", raw(b"5\r\nhello\rX0\r\n\r\n"), C::MissingDataCrlf { byte: b'X' }),
        ("data then bare lf", raw(b"5\r\nhello\n0\r\n\r\n"), C::MissingDataCrlf { byte: b'\n' }),
        ("data longer than size", raw(b"3\r\nhello\r\n0\r\n\r\n"), C::MissingDataCrlf { byte: b'l' }),
        // Trailer section.
        ("trailer obs-fold", raw(b"0\r\nX: a\r\n b\r\n\r\n"), C::Syntax(S::ObsFold)),
        ("trailer leading space", raw(b"0\r\n X: a\r\n\r\n"), C::Syntax(S::ObsFold)),
        ("trailer bare lf", raw(b"0\r\nX: a\n\r\n"), C::Syntax(S::BareLf)),
        ("trailer bare cr", raw(b"0\r\nX: a\rb\r\n\r\n"), C::Syntax(S::BareCr)),
        ("trailer space before colon", raw(b"0\r\nX : a\r\n\r\n"), C::Syntax(S::InvalidHeaderName { byte: b' ' })),
        ("trailer empty name", raw(b"0\r\n: a\r\n\r\n"), C::Syntax(S::EmptyHeaderName)),
        ("trailer missing colon", raw(b"0\r\nXa\r\n\r\n"), C::Syntax(S::MissingColon)),
        ("trailer nul in value", raw(b"0\r\nX: a\x00\r\n\r\n"), C::Syntax(S::InvalidHeaderValue { byte: 0 })),
        ("trailer bad name byte", raw(b"0\r\n(X: a\r\n\r\n"), C::Syntax(S::InvalidHeaderName { byte: b'(' })),
        ("final bare lf", raw(b"0\r\n\n"), C::Syntax(S::BareLf)),
        ("final cr cr", raw(b"0\r\n\r\r"), C::Syntax(S::BareCr)),
        ("trailers of 20 KiB", [&b"0\r\nX: "[..], &[b'v'; 20 * 1024], b"\r\n\r\n"].concat(), C::TrailersTooLarge { limit: 16 * 1024 }),
    ]
}

#[test]
fn accepted_bodies_table() {
    for (name, input, payload, used) in accepted_cases() {
        assert_eq!(decode_whole(&input), Ok((payload, used)), "case: {name}");
    }
}

#[test]
fn rejected_bodies_table() {
    for (name, input, expected) in rejected_cases() {
        assert_eq!(decode_whole(&input), Err(expected), "case: {name}");
    }
}

/// Returns the split points to try. Short inputs get all of them. The long limit cases get
/// the first and last 64 and every 61st in between, so the test stays fast.
fn split_points(len: usize) -> Vec<usize> {
    if len <= 1024 {
        return (0..=len).collect();
    }
    (0..64)
        .chain((64..len - 64).step_by(61))
        .chain(len - 64..=len)
        .collect()
}

/// Every split point must give the payload and result of the whole input.
#[test]
fn every_split_point_matches_whole() {
    let inputs = accepted_cases()
        .into_iter()
        .map(|(name, input, _, _)| (name, input))
        .chain(
            rejected_cases()
                .into_iter()
                .map(|(name, input, _)| (name, input)),
        );
    for (name, input) in inputs {
        let whole = decode_whole(&input);
        for split in split_points(input.len()) {
            let (head, tail) = input.split_at(split);
            let pieces = decode_pieces(&[head, tail], ChunkedLimits::default());
            assert_eq!(pieces, whole, "case: {name}, split at {split}");
        }
    }
}

#[test]
fn byte_at_a_time_matches_whole() {
    let inputs = accepted_cases()
        .into_iter()
        .map(|(name, input, _, _)| (name, input))
        .chain(
            rejected_cases()
                .into_iter()
                .map(|(name, input, _)| (name, input)),
        );
    for (name, input) in inputs {
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let pieces = decode_pieces(&bytes, ChunkedLimits::default());
        assert_eq!(pieces, decode_whole(&input), "case: {name}");
    }
}

#[test]
fn incomplete_body_needs_more() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let step = decoder.decode(b"");
    assert_eq!(step.as_ref().map(|step| step.consumed), Ok(0));
    assert_eq!(step.as_ref().map(|step| step.done), Ok(false));
    assert_eq!(step.map(|step| step.data), Ok(None));

    // Framing bytes are consumed even when no payload follows yet.
    let step = decoder.decode(b"5\r");
    assert_eq!(step.map(|step| step.consumed), Ok(2));
    assert!(!decoder.is_done());
}

#[test]
fn data_is_returned_one_slice_per_call() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nrest";
    let first = decoder.decode(input);
    assert_eq!(first.as_ref().map(|step| step.data.clone()), Ok(Some(3..6)));
    assert_eq!(first.as_ref().map(|step| step.consumed), Ok(6));
    let second = decoder.decode(&input[6..]);
    assert_eq!(
        second.as_ref().map(|step| step.data.clone()),
        Ok(Some(5..7))
    );
    let third = decoder.decode(&input[13..]);
    assert_eq!(third.as_ref().map(|step| step.done), Ok(true));
    assert_eq!(third.as_ref().map(|step| step.consumed), Ok(7));
    assert!(decoder.is_done());
    assert_eq!(&input[13 + 7..], b"rest");

    // A finished decoder consumes nothing more.
    let after = decoder.decode(b"more");
    assert_eq!(after.as_ref().map(|step| step.consumed), Ok(0));
    assert_eq!(after.map(|step| step.done), Ok(true));
}

#[test]
fn errors_are_sticky() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let expected = Err(ChunkedError::InvalidChunkSize { byte: b'x' });
    assert_eq!(decoder.decode(b"0x5\r\n"), expected);
    assert_eq!(decoder.decode(b"5\r\nhello\r\n0\r\n\r\n"), expected);
}

#[test]
fn huge_chunk_size_streams() {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let step = decoder.decode(b"ffffffffffffffff\r\nabc");
    assert_eq!(
        step.as_ref().map(|step| step.data.clone()),
        Ok(Some(18..21))
    );
    assert!(!decoder.is_done());
}

#[test]
fn limits_are_inclusive() {
    let limits = ChunkedLimits {
        max_extension_bytes: 4,
        max_trailer_bytes: 8,
    };
    // ";a=b" is 4 extension bytes; "X: 1\r\n\r\n" is 8 trailer bytes.
    let at_limit = b"1;a=b\r\nz\r\n0\r\nX: 1\r\n\r\n";
    assert_eq!(
        decode_pieces(&[at_limit], limits),
        Ok((b"z".to_vec(), at_limit.len()))
    );
    assert_eq!(
        decode_pieces(&[b"1;a=bc\r\nz\r\n0\r\n\r\n"], limits),
        Err(ChunkedError::ExtensionsTooLong { limit: 4 })
    );
    assert_eq!(
        decode_pieces(&[b"0\r\nX: 12\r\n\r\n"], limits),
        Err(ChunkedError::TrailersTooLarge { limit: 8 })
    );
}

#[test]
fn chunk_size_lines() {
    let cases: [(usize, &[u8]); 5] = [
        (1, b"1\r\n"),
        (15, b"f\r\n"),
        (255, b"ff\r\n"),
        (4096, b"1000\r\n"),
        (0x1234_abcd, b"1234abcd\r\n"),
    ];
    for (len, expected) in cases {
        let mut out = BytesMut::new();
        write_chunk_size(&mut out, len);
        assert_eq!(&out[..], expected, "len {len}");
    }
    let mut out = BytesMut::new();
    write_chunk_size(&mut out, usize::MAX);
    let expected = format!("{:x}\r\n", usize::MAX);
    assert_eq!(&out[..], expected.as_bytes());
}

#[test]
fn encoded_body_decodes() {
    let chunks: [&[u8]; 3] = [b"hello", &[b'x'; 300], b"\r\n0\r\n\r\n"];
    let mut body = BytesMut::new();
    for chunk in chunks {
        write_chunk_size(&mut body, chunk.len());
        body.extend_from_slice(chunk);
        body.extend_from_slice(CHUNK_END);
    }
    body.extend_from_slice(LAST_CHUNK);
    assert_eq!(decode_whole(&body), Ok((chunks.concat(), body.len())));
}
