use super::*;

fn headers<'a>(fields: &'a [(&'a str, &'a str)]) -> Vec<Header<'a>> {
    fields
        .iter()
        .map(|(name, value)| Header {
            name,
            value: value.as_bytes(),
        })
        .collect()
}

/// Header fields of one table row, as (name, value) pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

const CHUNKED: BodyLength = BodyLength::Chunked;
const EMPTY: BodyLength = BodyLength::Empty;
const fn fixed(length_bytes: u64) -> BodyLength {
    BodyLength::Fixed { length_bytes }
}

#[test]
fn request_framing_body_length() {
    let cases: &[(u8, Fields, Result<BodyLength, FramingError>)] = &[
        (1, &[], Ok(EMPTY)),
        (1, &[("Content-Length", "0")], Ok(fixed(0))),
        (1, &[("content-length", "42")], Ok(fixed(42))),
        (
            1,
            &[("Content-Length", "5"), ("Content-Length", "5")],
            Ok(fixed(5)),
        ),
        (1, &[("Content-Length", "5, 5")], Ok(fixed(5))),
        (
            1,
            &[("Content-Length", "18446744073709551615")],
            Ok(fixed(u64::MAX)),
        ),
        (
            1,
            &[("Content-Length", "18446744073709551616")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", "")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", " , ")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Transfer-Encoding", "")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Transfer-Encoding", ","), ("Transfer-Encoding", "chunked")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Content-Length", "+5")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", "-1")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", "0x10")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", "5 5")],
            Err(FramingError::InvalidContentLength),
        ),
        (
            1,
            &[("Content-Length", "5"), ("Content-Length", "6")],
            Err(FramingError::ConflictingContentLength),
        ),
        (
            1,
            &[("Content-Length", "5, 6")],
            Err(FramingError::ConflictingContentLength),
        ),
        (1, &[("Transfer-Encoding", "chunked")], Ok(CHUNKED)),
        (1, &[("Transfer-Encoding", "CHUNKED")], Ok(CHUNKED)),
        (1, &[("Transfer-Encoding", "gzip, chunked")], Ok(CHUNKED)),
        (
            1,
            &[
                ("Transfer-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
            ],
            Ok(CHUNKED),
        ),
        (
            1,
            &[("Transfer-Encoding", "chunked, gzip")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Transfer-Encoding", "chunked, chunked")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[
                ("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "chunked"),
            ],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Transfer-Encoding", "identity")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Transfer-Encoding", "xchunked")],
            Err(FramingError::UnsupportedTransferEncoding),
        ),
        (
            1,
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            Err(FramingError::TransferEncodingWithContentLength),
        ),
        (
            1,
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            Err(FramingError::TransferEncodingWithContentLength),
        ),
        (
            0,
            &[("Transfer-Encoding", "chunked")],
            Err(FramingError::TransferEncodingInHttp10),
        ),
        (0, &[("Content-Length", "3")], Ok(fixed(3))),
    ];
    for (version, fields, expected) in cases {
        let fields = headers(fields);
        let actual = request_framing(*version, &fields).map(|framing| framing.body);
        assert_eq!(actual, *expected, "HTTP/1.{version} with {fields:?}");
    }
}

#[test]
fn request_framing_connection() {
    let cases: &[(u8, Fields, ConnectionReply)] = &[
        (1, &[], ConnectionReply::Persistent),
        (
            1,
            &[("Connection", "keep-alive")],
            ConnectionReply::Persistent,
        ),
        (1, &[("Connection", "close")], ConnectionReply::Close),
        (
            1,
            &[("connection", "Keep-Alive, CLOSE")],
            ConnectionReply::Close,
        ),
        (
            1,
            &[("Connection", "upgrade"), ("Connection", "close")],
            ConnectionReply::Close,
        ),
        (1, &[("Connection", "closed")], ConnectionReply::Persistent),
        (0, &[], ConnectionReply::Close),
        (
            0,
            &[("Connection", "keep-alive")],
            ConnectionReply::PersistentHttp10,
        ),
        (
            0,
            &[("Connection", "keep-alive, close")],
            ConnectionReply::Close,
        ),
    ];
    for (version, fields, expected) in cases {
        let fields = headers(fields);
        let actual = request_framing(*version, &fields).map(|framing| framing.connection);
        assert_eq!(actual, Ok(*expected), "HTTP/1.{version} with {fields:?}");
    }
}

#[test]
fn request_framing_expect_continue() {
    let cases: &[(u8, Fields, bool)] = &[
        (
            1,
            &[("Expect", "100-continue"), ("Content-Length", "10")],
            true,
        ),
        (
            1,
            &[
                ("expect", " 100-Continue "),
                ("Transfer-Encoding", "chunked"),
            ],
            true,
        ),
        (1, &[("Expect", "100-continue")], false),
        (
            1,
            &[("Expect", "100-continue"), ("Content-Length", "0")],
            true,
        ),
        (
            0,
            &[("Expect", "100-continue"), ("Content-Length", "10")],
            false,
        ),
        (1, &[("Expect", "200-ok"), ("Content-Length", "10")], false),
    ];
    for (version, fields, expected) in cases {
        let fields = headers(fields);
        let actual = request_framing(*version, &fields).map(|framing| framing.expects_continue);
        assert_eq!(actual, Ok(*expected), "HTTP/1.{version} with {fields:?}");
    }
}

#[test]
fn connection_reply_header_lines() {
    assert_eq!(ConnectionReply::Persistent.header_line(), b"");
    assert_eq!(
        ConnectionReply::PersistentHttp10.header_line(),
        b"Connection: keep-alive\r\n"
    );
    assert_eq!(
        ConnectionReply::Close.header_line(),
        b"Connection: close\r\n"
    );
    assert!(ConnectionReply::Persistent.keeps_open());
    assert!(ConnectionReply::PersistentHttp10.keeps_open());
    assert!(!ConnectionReply::Close.keeps_open());
}

/// Feeds `input` in one call and returns the decoder's verdict.
fn discard_whole(input: &[u8]) -> Result<ChunkedProgress, ChunkedError> {
    ChunkedDecoder::new().discard(input)
}

/// Feeds `input` one byte per call and returns the total consumed when the body ends.
fn discard_bytewise(input: &[u8]) -> Result<Option<usize>, ChunkedError> {
    let mut decoder = ChunkedDecoder::new();
    for (index, byte) in input.iter().enumerate() {
        match decoder.discard(std::slice::from_ref(byte))? {
            ChunkedProgress::Done { consumed } => {
                assert_eq!(consumed, 1, "a done call consumes the byte it was given");
                return Ok(Some(index + 1));
            }
            ChunkedProgress::NeedMore => {}
        }
    }
    Ok(None)
}

#[test]
fn chunked_complete_bodies() {
    let cases: &[&[u8]] = &[
        b"0\r\n\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"A\r\n0123456789\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"0005\r\nhello\r\n000\r\n\r\n",
        b"5;name=value\r\nhello\r\n0\r\n\r\n",
        b"5 ;name=\"quoted value\"\r\nhello\r\n0;last\r\n\r\n",
        b"5\t;ext\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
        b"3\r\n\r\n\r\r\n0\r\n\r\n",
    ];
    for input in cases {
        assert_eq!(
            discard_whole(input),
            Ok(ChunkedProgress::Done {
                consumed: input.len()
            }),
            "whole {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(
            discard_bytewise(input),
            Ok(Some(input.len())),
            "bytewise {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn chunked_stops_at_next_request() {
    let input = b"2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    let body_length = b"2\r\nhi\r\n0\r\n\r\n".len();
    assert_eq!(
        discard_whole(input),
        Ok(ChunkedProgress::Done {
            consumed: body_length
        })
    );
}

#[test]
fn chunked_incomplete_bodies_need_more() {
    let cases: &[&[u8]] = &[
        b"",
        b"5",
        b"5\r",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r",
        b"5\r\nhello\r\n0\r\n",
        b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
        b"5\r\nhello\r\n0\r\n\r",
        b"ffffffffffffffff\r\n",
    ];
    for input in cases {
        assert_eq!(
            discard_whole(input),
            Ok(ChunkedProgress::NeedMore),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn chunked_malformed_bodies() {
    let long_extension = [
        b"1;".as_slice(),
        &[b'x'; MAX_CHUNK_LINE_BYTES as usize],
        b"\r\n",
    ]
    .concat();
    let long_trailer = [
        b"0\r\nX: ".as_slice(),
        &[b'y'; MAX_CHUNK_LINE_BYTES as usize],
        b"\r\n\r\n",
    ]
    .concat();
    let many_trailers = [
        b"0\r\n".as_slice(),
        &b"X-Trailer: 0123456789\r\n".repeat(1000),
        b"\r\n",
    ]
    .concat();
    let cases: Vec<(&[u8], ChunkedError)> = vec![
        (b"\r\n", ChunkedError::InvalidChunkSize { found: b'\r' }),
        (b"g\r\n", ChunkedError::InvalidChunkSize { found: b'g' }),
        (b";ext\r\n", ChunkedError::InvalidChunkSize { found: b';' }),
        (b" 5\r\n", ChunkedError::InvalidChunkSize { found: b' ' }),
        (b"-5\r\n", ChunkedError::InvalidChunkSize { found: b'-' }),
        (b"0x5\r\n", ChunkedError::InvalidChunkSize { found: b'x' }),
        (
            b"5 5\r\nhello\r\n",
            ChunkedError::InvalidChunkSize { found: b'5' },
        ),
        (b"10000000000000000\r\n", ChunkedError::ChunkSizeOverflow),
        (
            b"5\nhello\r\n",
            ChunkedError::InvalidChunkSize { found: b'\n' },
        ),
        (
            b"5\r\rhello",
            ChunkedError::ExpectedLineEnd { found: b'\r' },
        ),
        (b"5;a\nb\r\n", ChunkedError::ControlByte { found: b'\n' }),
        (b"5;a\x00\r\n", ChunkedError::ControlByte { found: 0 }),
        (
            b"5\r\nhelloX\r\n",
            ChunkedError::ExpectedLineEnd { found: b'X' },
        ),
        (
            b"5\r\nhello\rX",
            ChunkedError::ExpectedLineEnd { found: b'X' },
        ),
        (
            b"5\r\nhello\n0\r\n\r\n",
            ChunkedError::ExpectedLineEnd { found: b'\n' },
        ),
        (b"0\r\n\n", ChunkedError::ControlByte { found: b'\n' }),
        (
            b"0\r\nX: y\n\r\n",
            ChunkedError::ControlByte { found: b'\n' },
        ),
        (
            b"0\r\nX: y\r\r\n",
            ChunkedError::ExpectedLineEnd { found: b'\r' },
        ),
        (b"0\r\n\rX", ChunkedError::ExpectedLineEnd { found: b'X' }),
        (&long_extension, ChunkedError::LineTooLong),
        (&long_trailer, ChunkedError::LineTooLong),
        (&many_trailers, ChunkedError::TrailerTooLarge),
    ];
    for (input, expected) in cases {
        let shown = String::from_utf8_lossy(&input[..input.len().min(40)]).into_owned();
        assert_eq!(discard_whole(input), Err(expected), "whole {shown:?}");
        assert_eq!(discard_bytewise(input), Err(expected), "bytewise {shown:?}");
    }
}

#[test]
fn chunked_large_chunk_spans_calls() {
    let mut decoder = ChunkedDecoder::new();
    assert_eq!(
        decoder.discard(b"100000\r\n"),
        Ok(ChunkedProgress::NeedMore)
    );
    let data = vec![b'z'; 0x10_0000];
    for piece in data.chunks(7919) {
        assert_eq!(decoder.discard(piece), Ok(ChunkedProgress::NeedMore));
    }
    assert_eq!(
        decoder.discard(b"\r\n0\r\n\r\nNEXT"),
        Ok(ChunkedProgress::Done { consumed: 7 })
    );
}
