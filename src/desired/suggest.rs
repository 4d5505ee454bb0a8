//! "Did you mean ...?" for misspelt names. Pure: no I/O.

/// The candidate closest to `word`, if one is close enough to be a likely typo: at most a
/// third of its characters edited (transpositions count once), as rustc judges. Spelling
/// variants that differ only in case, `-` or `_` always match.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let folded = fold(word);
    let limit = (folded.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&folded, &fold(c)), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
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
        assert_eq!(closest("opea", ["opae", "xrt", "sim"]), Some("opae"));
        assert_eq!(
            closest("CUSTOM_FPGA_XILINX", ["CUSTOM_FPGA_INTEL_PF"]),
            None
        );
    }
}
