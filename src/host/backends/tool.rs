//! Running vendor tools (being written).
