//! One parsed desired-state document: its kind, its file, and where each of its values
//! stands, so that any later check can point at the exact span. Pure: no I/O.

use crate::diagnostic::Diagnostic;
use crate::text::{SourceText, Span};
use crate::yaml::SpanIndex;

use super::kind::Kind;

/// Where a document and its values stand.
#[derive(Clone, Debug)]
pub struct DocContext {
    /// The document's kind.
    pub kind: Kind,
    /// The file it is in.
    pub source: SourceText,
    /// Spans by JSON pointer.
    pub index: SpanIndex,
}

impl DocContext {
    /// An error underlining the value at `pointer`.
    pub fn error_at(
        &self,
        pointer: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, message).at(&self.source, self.index.value(pointer))
    }

    /// An error underlining the key of the field at `pointer`.
    pub fn error_at_key(
        &self,
        pointer: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, message).at(&self.source, self.index.key(pointer))
    }

    /// The span of the value at `pointer`.
    pub fn span(&self, pointer: &str) -> Span {
        self.index.value(pointer)
    }

    /// The 1-based line the document's value at `pointer` starts on.
    pub fn line(&self, pointer: &str) -> usize {
        self.source.line_col(self.index.value(pointer).start).0
    }
}

/// A value declared in the repository, with where it was declared.
#[derive(Clone, Debug)]
pub struct Declared<T> {
    /// The value.
    pub spec: T,
    /// Where it was declared.
    pub context: DocContext,
}

impl<T> Declared<T> {
    /// `file:line` of the declaration, for messages and plans.
    pub fn origin(&self) -> String {
        format!("{}:{}", self.context.source.path, self.context.line(""))
    }
}
