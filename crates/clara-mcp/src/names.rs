//! Tool names a model provider accepts, made from an MCP server's names.
//!
//! MCP allows a tool name of up to 128 characters with `.` or `/`; OpenAI and
//! others accept only `^[a-zA-Z0-9_-]{1,64}$` for the whole `{server}__{tool}`.
//! [`exposed_names`] maps each original name to one that fits, stably (the
//! same list gives the same names) and without two tools sharing a name. The
//! original is kept beside it and is what a call sends.

use clara_tools::policy::sha256_hex;
use std::collections::HashMap;

/// The longest namespaced name a model provider accepts.
pub const MAX_NAMESPACED: usize = 64;

/// Characters of the hash suffix (after a `_`).
const HASH_CHARS: usize = 8;

/// The name each of `originals` (one server's tools, in order) is offered
/// under after `{server}__`, in the same order:
/// - characters other than ASCII letters, digits, `_` and `-` become `_`;
/// - a name longer than the room left after `{server}__` is cut, and ends with
///   `_` and a short hash of the original;
/// - a name that sanitising changed and that then equals another tool's name
///   gets the hash suffix too (a name that needed no change keeps it).
pub fn exposed_names(server: &str, originals: &[&str]) -> Vec<String> {
    let room = MAX_NAMESPACED
        .saturating_sub(server.len() + clara_core::tool::NAMESPACE_SEPARATOR.len())
        .max(HASH_CHARS + 2);
    let sanitised: Vec<String> = originals.iter().map(|name| sanitise(name)).collect();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for name in &sanitised {
        *uses.entry(name.as_str()).or_default() += 1;
    }
    originals
        .iter()
        .zip(&sanitised)
        .map(|(original, clean)| {
            let changed = *original != clean.as_str();
            let collides = uses.get(clean.as_str()).copied().unwrap_or(0) > 1;
            let too_long = clean.len() > room;
            if too_long || clean.is_empty() || (changed && collides) {
                with_hash(clean, original, room)
            } else {
                clean.clone()
            }
        })
        .collect()
}

/// `name` with every character outside `[a-zA-Z0-9_-]` replaced by `_`.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `clean`, cut so that `_` and the hash of `original` fit in `room`.
fn with_hash(clean: &str, original: &str, room: usize) -> String {
    let hash = short_hash(original);
    // `clean` is ASCII, so any byte index is a character boundary.
    let keep = clean.len().min(room - HASH_CHARS - 1);
    format!("{}_{hash}", &clean[..keep])
}

/// The first [`HASH_CHARS`] hex digits of SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    let mut hex = sha256_hex(text);
    hex.truncate(HASH_CHARS);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(server: &str, name: &str) -> bool {
        let full = format!("{server}__{name}");
        (1..=MAX_NAMESPACED).contains(&full.len())
            && full
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn good_names_are_kept() {
        assert_eq!(
            exposed_names("fs", &["read_file", "get-env"]),
            vec!["read_file", "get-env"]
        );
    }

    #[test]
    fn other_characters_become_underscores() {
        assert_eq!(
            exposed_names("gh", &["repo.list", "a/b c", "é"]),
            vec!["repo_list", "a_b_c", "_"]
        );
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let a = "x".repeat(100) + "a";
        let b = "x".repeat(100) + "b";
        let server = "s".repeat(24);
        let names = exposed_names(&server, &[&a, &b]);
        assert_ne!(names[0], names[1]);
        for name in &names {
            assert!(valid(&server, name), "{name}");
            assert_eq!(server.len() + 2 + name.len(), MAX_NAMESPACED);
        }
        assert!(names[0].starts_with("xxxx"));
        // Stable: the same list gives the same names.
        assert_eq!(names, exposed_names(&server, &[&a, &b]));
    }

    #[test]
    fn a_collision_made_by_sanitising_gets_a_hash_but_the_clean_name_stays() {
        let names = exposed_names("s", &["a.b", "a_b", "a/b"]);
        assert_eq!(names[1], "a_b");
        assert!(names[0].starts_with("a_b_") && names[0].len() == 3 + 1 + 8);
        assert!(names[2].starts_with("a_b_"));
        assert_ne!(names[0], names[2]);
        assert!(names.iter().all(|n| valid("s", n)));
    }

    #[test]
    fn an_empty_name_gets_a_hash() {
        let names = exposed_names("s", &[""]);
        assert!(valid("s", &names[0]), "{names:?}");
    }

    #[test]
    fn exactly_the_room_is_not_cut() {
        let server = "abc";
        let fits = "y".repeat(MAX_NAMESPACED - 5);
        assert_eq!(exposed_names(server, &[&fits]), vec![fits.clone()]);
        let over = fits + "y";
        let cut = &exposed_names(server, &[&over])[0];
        assert!(valid(server, cut) && cut.len() == MAX_NAMESPACED - 5);
    }
}
