//! Maps a field path found during validation (`rules[2].match.url`) back to a line and column
//! of the TOML text, so every configuration error names where to look.

use std::fmt;

use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a field path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A dotted field path such as `rules[0].authenticators[1].config.check_session_url`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// Returns a new path with `key` appended.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        FieldPath(segments)
    }

    /// Returns a new path with `index` appended.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.0 {
            match segment {
                Segment::Key(key) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Converts a byte offset into a 1-based line and column (columns count characters).
pub fn position_of(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Position { line, column }
}

/// A node of the parsed document: toml_edit exposes array members and inline-table members as
/// `Value` and array-of-tables members as `Table`, so the walk tracks all three.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    /// Returns the child under `segment` and the byte offset where it starts, if known.
    fn child(self, segment: &Segment) -> Option<(Node<'a>, Option<usize>)> {
        match (segment, self) {
            (Segment::Key(key), Node::Item(Item::Table(table))) | (Segment::Key(key), Node::Table(table)) => {
                let offset = table.key(key).and_then(|k| k.span()).map(|span| span.start);
                table.get(key).map(|item| (Node::Item(item), offset))
            }
            (Segment::Key(key), Node::Item(Item::Value(Value::InlineTable(table))))
            | (Segment::Key(key), Node::Value(Value::InlineTable(table))) => {
                let offset = table.key(key).and_then(|k| k.span()).map(|span| span.start);
                table.get(key).map(|value| (Node::Value(value), offset))
            }
            (Segment::Index(index), Node::Item(Item::ArrayOfTables(tables))) => {
                let table = tables.get(*index)?;
                Some((Node::Table(table), table.span().map(|span| span.start)))
            }
            (Segment::Index(index), Node::Item(Item::Value(Value::Array(array))))
            | (Segment::Index(index), Node::Value(Value::Array(array))) => {
                let value = array.get(*index)?;
                Some((Node::Value(value), value.span().map(|span| span.start)))
            }
            _ => None,
        }
    }
}

/// Finds the position of the deepest part of `path` present in `text`. When no part of it is
/// present, as for a required section that is missing, or when the text does not parse as
/// TOML, the position is the start of the file.
pub fn locate(text: &str, path: &FieldPath) -> Position {
    let Ok(document) = ImDocument::parse(text) else {
        return position_of(text, 0);
    };
    let mut node = Node::Item(document.as_item());
    let mut best = None;
    for segment in &path.0 {
        let Some((child, offset)) = node.child(segment) else {
            break;
        };
        if offset.is_some() {
            best = offset;
        }
        node = child;
    }
    position_of(text, best.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "workers = 2\n\n[[rules]]\nid = \"a\"\n\n[[rules]]\nid = \"b\"\nmatch = { url = \"http://x/<*>\", methods = [\"GET\", \"PUT\"] }\n";

    #[test]
    fn locates_nested_inline_fields() {
        let path = FieldPath::root().key("rules").index(1).key("match").key("methods").index(1);
        assert_eq!(locate(TEXT, &path), Position { line: 8, column: 51 });
    }

    #[test]
    fn falls_back_to_deepest_known_part() {
        let path = FieldPath::root().key("rules").index(1).key("authorizer");
        assert_eq!(locate(TEXT, &path), Position { line: 6, column: 1 });
    }

    #[test]
    fn missing_path_points_at_file_start() {
        let path = FieldPath::root().key("proxy").key("listen");
        assert_eq!(locate(TEXT, &path), Position { line: 1, column: 1 });
        assert_eq!(locate("", &path), Position { line: 1, column: 1 });
    }

    #[test]
    fn displays_paths_like_toml_keys() {
        let path = FieldPath::root().key("rules").index(0).key("mutators").index(2).key("X-User");
        assert_eq!(path.to_string(), "rules[0].mutators[2].X-User");
        assert_eq!(FieldPath::root().key("a b").to_string(), "\"a b\"");
    }
}
