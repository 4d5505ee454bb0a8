//! Diagnostics: what is wrong with the desired state, where (file, line, column, span),
//! and how to fix it. Rendered for people with miette (source snippet, underline, help)
//! and for machines as JSON. Pure: no I/O; callers print the rendered text.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::text::{SourceText, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The desired state cannot be used.
    Error,
    /// Worth a look; the desired state can be used.
    Warning,
    /// Context for another diagnostic.
    Note,
}

/// One finding about the desired state.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// A stable code, e.g. `fpga_sync::unknown_field`.
    pub code: &'static str,
    /// What is wrong, one line, lower-case, no final period.
    pub message: String,
    /// Where, when it has a place in a file. Boxed to keep `Result<_, Diagnostic>` small.
    pub location: Option<Box<Location>>,
    /// How to fix it.
    pub help: Option<String>,
    /// Other places that explain this one (the first definition of a duplicate).
    pub related: Vec<Diagnostic>,
}

/// A place in a file.
#[derive(Clone, Debug)]
pub struct Location {
    /// The file.
    pub source: SourceText,
    /// The bytes at fault.
    pub span: Span,
    /// A short label under the underline.
    pub label: Option<String>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            location: None,
            help: None,
            related: Vec::new(),
        }
    }

    /// A warning.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Places the diagnostic at `span` of `source`.
    pub fn at(mut self, source: &SourceText, span: Span) -> Self {
        self.location = Some(Box::new(Location {
            source: source.clone(),
            span,
            label: None,
        }));
        self
    }

    /// Sets the label under the underline.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        if let Some(location) = &mut self.location {
            location.label = Some(label.into());
        }
        self
    }

    /// Sets the help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a related place, e.g. where a duplicate was first defined.
    pub fn related(mut self, source: &SourceText, span: Span, message: impl Into<String>) -> Self {
        let mut note = Diagnostic::error(self.code, message).at(source, span);
        note.severity = Severity::Note;
        self.related.push(note);
        self
    }

    /// `file:line:column` of the start, when located.
    pub fn position(&self) -> Option<(String, usize, usize)> {
        self.location.as_ref().map(|l| {
            let (line, column) = l.source.line_col(l.span.start);
            (l.source.path.clone(), line, column)
        })
    }

    /// The diagnostic for people: a miette report with the snippet, the underline and the
    /// help. `color` picks the coloured theme.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(400)
            .with_wrap_lines(false)
            .with_links(false);
        let _ = handler.render_report(&mut out, &Report::new(self));
        out
    }

    /// The diagnostic for machines.
    pub fn to_json(&self) -> JsonDiagnostic {
        let place = self.location.as_ref().map(|l| {
            let (line, column) = l.source.line_col(l.span.start);
            let (end_line, end_column) = l.source.line_col(l.span.end);
            (l.source.path.clone(), line, column, end_line, end_column)
        });
        JsonDiagnostic {
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            file: place.as_ref().map(|p| p.0.clone()),
            line: place.as_ref().map(|p| p.1),
            column: place.as_ref().map(|p| p.2),
            end_line: place.as_ref().map(|p| p.3),
            end_column: place.as_ref().map(|p| p.4),
            help: self.help.clone(),
            related: self.related.iter().map(Diagnostic::to_json).collect(),
        }
    }
}

/// A diagnostic as `validate --format json` prints it. Lines and columns are 1-based;
/// columns count characters.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct JsonDiagnostic {
    /// `error`, `warning` or `note`.
    pub severity: Severity,
    /// Stable code, e.g. `fpga_sync::unknown_field`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// File path relative to the repository root (`null` when the problem is not in a
    /// file).
    pub file: Option<String>,
    /// Line of the start.
    pub line: Option<usize>,
    /// Column of the start.
    pub column: Option<usize>,
    /// Line of the end.
    pub end_line: Option<usize>,
    /// Column of the end.
    pub end_column: Option<usize>,
    /// How to fix it.
    pub help: Option<String>,
    /// Related places.
    pub related: Vec<JsonDiagnostic>,
}

/// miette's view of a [`Diagnostic`].
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<NamedSource<Arc<str>>>,
    related: Vec<Report<'a>>,
}

impl<'a> Report<'a> {
    fn new(diagnostic: &'a Diagnostic) -> Self {
        Report {
            diagnostic,
            source: diagnostic
                .location
                .as_ref()
                .map(|l| NamedSource::new(&l.source.path, l.source.text.clone())),
            related: diagnostic.related.iter().map(Report::new).collect(),
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let location = self.diagnostic.location.as_ref()?;
        let main = LabeledSpan::new_primary_with_span(location.label.clone(), location.span);
        // Related places in the same file show in the same snippet; others get their own.
        let same_file = self
            .diagnostic
            .related
            .iter()
            .filter(move |r| {
                r.location
                    .as_ref()
                    .is_some_and(|l| l.source.path == location.source.path)
            })
            .filter_map(|r| {
                r.location
                    .as_ref()
                    .map(|l| LabeledSpan::new_with_span(Some(r.message.clone()), l.span))
            });
        Some(Box::new(std::iter::once(main).chain(same_file)))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        let path = self.diagnostic.location.as_ref().map(|l| &l.source.path);
        let mut other_files = self
            .related
            .iter()
            .filter(move |r| r.diagnostic.location.as_ref().map(|l| &l.source.path) != path)
            .peekable();
        other_files.peek()?;
        Some(Box::new(other_files.map(|r| r as &dyn miette::Diagnostic)))
    }
}
