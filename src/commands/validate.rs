//! `fpga-sync validate`: reads the desired state, checks it all, and reports every problem
//! for people (miette) or machines (JSON). I/O: `source`, stdout and stderr.

use std::collections::BTreeMap;
use std::io::Write;

use crate::cli::{Format, ValidateArgs};
use crate::desired::{self, Outcome};
use crate::diagnostic::{Diagnostic, Severity};
use crate::output::{FORMAT_VERSION, SourceReport, ValidateReport};
use crate::source::{self, Snapshot};

/// Runs `validate`; returns whether the desired state is valid.
pub fn run(args: &ValidateArgs, color: bool) -> std::io::Result<bool> {
    let spec = args.source.spec();
    let mut snapshot = match source::read(&spec) {
        Ok(s) => s,
        Err(d) => {
            report(args.format, None, None, &[d], color)?;
            return Ok(false);
        }
    };
    if let Some(allowed) = &spec.require_signed_by
        && let Err(d) = snapshot.verify_signature(allowed)
    {
        report(args.format, Some(&snapshot), None, &[d], color)?;
        return Ok(false);
    }
    let outcome = crate::reconcile::check(&snapshot);
    let valid = outcome.desired.is_some();
    report(
        args.format,
        Some(&snapshot),
        Some(&outcome),
        &outcome.diagnostics,
        color,
    )?;
    Ok(valid)
}

fn counts(outcome: &Outcome) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    if let Some(d) = &outcome.desired {
        counts.insert("Bitstream", d.bitstreams.len());
        counts.insert("Trait", d.traits.len());
        counts.insert("ResourceClass", d.resource_classes.len());
        counts.insert("Flavor", d.flavors.len());
        counts.insert("HostGroup", d.host_groups.len());
    }
    counts
}

fn report(
    format: Format,
    snapshot: Option<&Snapshot>,
    outcome: Option<&Outcome>,
    diagnostics: &[Diagnostic],
    color: bool,
) -> std::io::Result<()> {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    match format {
        Format::Json => super::print_json(&ValidateReport {
            format_version: FORMAT_VERSION,
            valid: errors == 0 && outcome.is_some(),
            source: snapshot.map(|s| SourceReport {
                repo: s.origin.clone(),
                commit: s.commit.clone(),
                reference: s.reference.clone(),
                dir: s.dir.clone(),
            }),
            documents: outcome
                .map(counts)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect(),
            skipped_files: outcome
                .map(|o| o.foreign.iter().map(|(f, _)| f.clone()).collect())
                .unwrap_or_default(),
            diagnostics: diagnostics.iter().map(Diagnostic::to_json).collect(),
        }),
        Format::Human => {
            let mut err = std::io::stderr().lock();
            for d in diagnostics {
                write!(err, "{}", d.render(color))?;
            }
            let Some(snapshot) = snapshot else {
                return Ok(());
            };
            if !super::quiet() {
                writeln!(err, "read {}", snapshot.describe())?;
            }
            if let Some(outcome) = outcome {
                for (file, n) in outcome.foreign.iter().filter(|_| !super::quiet()) {
                    writeln!(
                        err,
                        "note: skipped `{file}`: its {n} document(s) are not fpga-sync's (no `apiVersion: {}`)",
                        desired::API_VERSION
                    )?;
                }
                if outcome.desired.is_some() {
                    let summary: Vec<String> = counts(outcome)
                        .iter()
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect();
                    writeln!(
                        std::io::stdout(),
                        "valid: {} documents ({})",
                        outcome.documents,
                        summary.join(", ")
                    )?;
                } else {
                    let warnings = diagnostics.len() - errors;
                    let warn = if warnings > 0 {
                        format!(" and {warnings} warning(s)")
                    } else {
                        String::new()
                    };
                    writeln!(err, "invalid: {errors} error(s){warn}")?;
                }
            }
            Ok(())
        }
    }
}
