//! The binary: exit codes, JSON output, help texts.
