//! Files on Discord, in and out: their size limits and the sentences for a
//! file Clara does not keep or cannot send. Pure: no I/O.
//!
//! Discord counts a megabyte as 1024 × 1024 bytes, and so do these limits.

/// One megabyte as Discord counts it.
pub const MB: u64 = 1024 * 1024;
/// The largest file a person sends that Clara keeps, by default.
pub const DEFAULT_MAX_FILE_MB: u64 = 25;
/// The most Clara uploads with one message, by default: Discord's default
/// upload limit (a boosted server takes more).
pub const DEFAULT_MAX_UPLOAD_MB: u64 = 10;

/// What the model reads for a message that is only files (the engine needs
/// words).
pub(crate) fn described(names: &[&str]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("[sent the file {one}]")),
        many => Some(format!("[sent the files {}]", many.join(", "))),
    }
}

/// The line added to a message whose file of `size` bytes is over `limit`:
/// the file is not downloaded, and the model can tell the person why.
pub(crate) fn not_kept(name: &str, size: u64, limit: u64) -> String {
    format!(
        "[{name} was not kept: {}, the limit is {}]",
        size_words(size),
        size_words(limit)
    )
}

/// The line added to a message whose file could not be downloaded.
pub(crate) fn not_loaded(name: &str) -> String {
    format!("[{name} was attached but could not be loaded]")
}

/// Why a file of `size` bytes was not sent, over the upload `limit`
/// (Clara's setting, or what Discord answered 413 to).
pub(crate) fn too_big_to_send(name: &str, size: u64, limit: u64) -> String {
    format!(
        "{name} could not be sent: it is {}, and Clara sends at most {} on Discord (discord.max_upload_mb; more only fits a boosted server).",
        size_words(size),
        size_words(limit)
    )
}

/// Why a file of `size` bytes was not sent when Discord refused it as too
/// large (413): the server allows less than Clara's setting.
pub(crate) fn refused_as_too_big(name: &str, size: u64) -> String {
    format!(
        "{name} could not be sent: at {} it is more than Discord takes in this channel.",
        size_words(size)
    )
}

/// A size as people read it: `25 MB`, `1.5 MB`, `300 kB`, `12 bytes`.
pub(crate) fn size_words(bytes: u64) -> String {
    if bytes >= MB {
        let tenths = (bytes * 10 + MB / 2) / MB;
        if tenths.is_multiple_of(10) {
            format!("{} MB", tenths / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    } else if bytes >= 1024 {
        format!("{} kB", bytes.div_ceil(1024))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_name_the_file_its_size_and_the_limit() {
        assert_eq!(
            not_kept("big.zip", 30 * MB, 25 * MB),
            "[big.zip was not kept: 30 MB, the limit is 25 MB]"
        );
        assert_eq!(size_words(MB + MB / 2), "1.5 MB");
        assert_eq!(size_words(2000), "2 kB");
        assert_eq!(size_words(7), "7 bytes");
        assert!(too_big_to_send("a.pdf", 12 * MB, 10 * MB).starts_with(
            "a.pdf could not be sent: it is 12 MB, and Clara sends at most 10 MB on Discord"
        ));
        assert_eq!(described(&[]), None);
        assert_eq!(
            described(&["a.txt", "b.pdf"]).as_deref(),
            Some("[sent the files a.txt, b.pdf]")
        );
    }
}
