//! The raw-byte conformance table (`tests/conformance/requests.tsv`): every row is sent on
//! its own connection to one gateway, and the statuses, whether the connection stays open,
//! and what the upstream received are compared with the row. The table covers request
//! smuggling (CL.TE, TE.CL, TE.TE, duplicate Content-Length, bare LF, chunk-size and
//! chunk-extension tricks), header syntax, Host, path bypasses against a rule set where only
//! `/public/<anything>` is anonymous, header ownership, Expect and pipelining.

mod support;

use support::table::{parse_table, run_row, TableGateway};

/// Limits of the table gateway; the rows that test limits depend on them.
const TABLE_LIMITS: &str = r#"
max_request_line_bytes = 1024
max_header_line_bytes = 1024
max_headers = 20
max_head_bytes = 4096
max_chunk_extension_bytes = 64
max_trailer_bytes = 128
"#;

#[test]
fn conformance_table() {
    let rows = parse_table(include_str!("conformance/requests.tsv"));
    assert!(rows.len() >= 150, "the table has only {} rows", rows.len());
    let setup = TableGateway::start(TABLE_LIMITS, "");

    let mut failures = Vec::new();
    for row in &rows {
        failures.extend(run_row(&setup, row));
    }
    println!("{} rows, {} failures", rows.len(), failures.len());
    assert!(failures.is_empty(), "{} failed checks:\n{}", failures.len(), failures.join("\n"));
}
