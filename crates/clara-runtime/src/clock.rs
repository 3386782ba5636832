//! Wall-clock time, in the Unix milliseconds the store and core rules use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    // A clock before 1970 is a broken machine; 0 keeps the arithmetic sane.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
