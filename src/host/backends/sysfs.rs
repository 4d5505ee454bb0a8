//! sysfs attribute helpers (being written).
