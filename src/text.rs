//! Source text of one desired-state file and the position arithmetic on it: byte spans,
//! 1-based line and column numbers, and the conversion from the YAML parser's character
//! positions. Pure: no I/O.

use std::sync::Arc;

/// A half-open byte range `start..end` in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// First byte of the range.
    pub start: usize,
    /// One past the last byte of the range.
    pub end: usize,
}

impl Span {
    /// The range `start..end`; an inverted range is clamped to an empty one at `start`.
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The number of bytes covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

/// A desired-state file: its path inside the repository and its UTF-8 text.
#[derive(Clone, Debug)]
pub struct SourceText {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// The whole file. Shared so that every diagnostic can show a snippet without copying it.
    pub text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceText {
    /// Wraps `text`, indexing its line starts once.
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceText {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// The byte offset of a YAML parser position (1-based line, 0-based column in characters).
    pub fn offset_of(&self, line: usize, column_chars: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(column_chars)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let src = SourceText::new("a.yaml", "ab\nçé: x\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 1));
        let colon = src.text.find(':').unwrap();
        assert_eq!(src.line_col(colon), (2, 3));
        assert_eq!(src.offset_of(2, 2), colon);
    }
}
