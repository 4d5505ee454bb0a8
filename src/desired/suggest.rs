//! "Did you mean ...?" for misspelt names. Pure: no I/O.

/// The candidate closest to `word`, if one is close enough to be a likely typo. Spelling
/// variants that differ only in case, `-` or `_` always match.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let folded = fold(word);
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = if fold(candidate) == folded {
            2.0
        } else {
            strsim::jaro_winkler(&folded, &fold(candidate))
        };
        if score >= 0.85 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_spelling_variants() {
        let keys = ["bs-name", "bs-uuid", "vendor", "board", "shell_id"];
        assert_eq!(closest("bs_uuid", keys), Some("bs-uuid"));
        assert_eq!(closest("bs-uid", keys), Some("bs-uuid"));
        assert_eq!(closest("vendr", keys), Some("vendor"));
        assert_eq!(closest("shellid", keys), Some("shell_id"));
        assert_eq!(closest("colour", keys), None);
    }
}
