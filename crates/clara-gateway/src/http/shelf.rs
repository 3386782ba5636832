//! The files Clara sent on the web page (a chart the sandbox drew), kept in
//! memory so the page can fetch them by a random id: the most recent ones of a
//! conversation only, within a count and a byte budget.
//!
//! Nothing here is written to disk: after a restart, or once a file is pushed
//! off the shelf, its link answers 404 and the reply's text stays.

use axum::body::Bytes;
use clara_core::{FileBlob, ThoughtId};
use serde::Serialize;
use std::collections::VecDeque;

/// Where the page fetches a kept file: this prefix and the file's id.
pub(crate) const FILE_URL_PREFIX: &str = "/api/chat/files/";

/// How many files, and how many bytes of them, a conversation keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShelfLimits {
    /// The most files kept; the oldest go first.
    pub(crate) files: usize,
    /// The most bytes kept in all; the oldest go first (the newest file is
    /// always kept, whatever its size: the engine bounds what it sends).
    pub(crate) bytes: usize,
}

/// A kept file as the page learns of it (the `file` event, `hello`'s `files`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ShownFile {
    /// The reply it belongs to.
    pub(crate) thought: ThoughtId,
    /// Its random id (32 hex digits).
    pub(crate) id: String,
    /// Its name, as the tool gave it (untrusted text).
    pub(crate) name: String,
    /// Its MIME type.
    pub(crate) media_type: String,
    /// Its size in bytes.
    pub(crate) size: usize,
    /// A line to show with it (untrusted text).
    pub(crate) caption: Option<String>,
    /// Whether the page shows it as a picture (and the route serves it inline).
    pub(crate) image: bool,
    /// Where to fetch it.
    pub(crate) url: String,
}

/// A kept file: what the page is told, and the bytes.
#[derive(Clone, Debug)]
pub(crate) struct KeptFile {
    pub(crate) shown: ShownFile,
    pub(crate) data: Bytes,
}

/// One conversation's kept files, oldest first.
#[derive(Debug)]
pub(crate) struct Shelf {
    limits: ShelfLimits,
    files: VecDeque<KeptFile>,
    bytes: usize,
}

impl Shelf {
    /// An empty shelf within `limits`.
    pub(crate) fn new(limits: ShelfLimits) -> Self {
        Self {
            limits,
            files: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Keeps `file` of reply `thought` under `id`, dropping the oldest files
    /// beyond the limits; returns what the page is told.
    pub(crate) fn keep(
        &mut self,
        id: String,
        thought: ThoughtId,
        file: FileBlob,
        caption: Option<String>,
    ) -> ShownFile {
        let image = file.is_image();
        let shown = ShownFile {
            thought,
            url: format!("{FILE_URL_PREFIX}{id}"),
            id,
            size: file.data.len(),
            name: file.name,
            media_type: file.media_type,
            caption,
            image,
        };
        self.bytes += shown.size;
        self.files.push_back(KeptFile {
            shown: shown.clone(),
            data: Bytes::from(file.data),
        });
        while self.files.len() > 1
            && (self.files.len() > self.limits.files || self.bytes > self.limits.bytes)
        {
            if let Some(old) = self.files.pop_front() {
                self.bytes -= old.shown.size;
            }
        }
        shown
    }

    /// The file with `id`, if it is still kept.
    pub(crate) fn get(&self, id: &str) -> Option<KeptFile> {
        self.files.iter().find(|f| f.shown.id == id).cloned()
    }

    /// What the page is told of every kept file, oldest first.
    pub(crate) fn shown(&self) -> Vec<ShownFile> {
        self.files.iter().map(|f| f.shown.clone()).collect()
    }

    /// Forgets every file (a new session).
    pub(crate) fn clear(&mut self) {
        self.files.clear();
        self.bytes = 0;
    }
}

/// A fresh random id for a file: 128 bits, so a link cannot be guessed.
pub(crate) fn new_file_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(name: &str, size: usize) -> FileBlob {
        FileBlob::new(name, vec![7; size])
    }

    #[test]
    fn the_oldest_files_go_first_by_count_and_by_bytes() {
        let mut shelf = Shelf::new(ShelfLimits {
            files: 3,
            bytes: 100,
        });
        let t = ThoughtId::new();
        for i in 0..4 {
            shelf.keep(format!("f{i}"), t, blob("a.png", 10), None);
        }
        let ids: Vec<String> = shelf.shown().into_iter().map(|f| f.id).collect();
        assert_eq!(ids, ["f1", "f2", "f3"], "by count");
        shelf.keep("big".into(), t, blob("b.csv", 85), Some("data".into()));
        let ids: Vec<String> = shelf.shown().into_iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            ["f3", "big"],
            "by bytes: 10 + 85 fits, 20 + 85 does not"
        );
        assert!(shelf.get("f1").is_none());
        let big = shelf.get("big").map(|f| f.shown);
        assert_eq!(
            big.as_ref().map(|f| (f.size, f.image, f.url.as_str())),
            Some((85, false, "/api/chat/files/big"))
        );
    }

    #[test]
    fn the_newest_file_stays_even_when_it_alone_is_over_the_budget() {
        let mut shelf = Shelf::new(ShelfLimits { files: 2, bytes: 5 });
        let t = ThoughtId::new();
        shelf.keep("small".into(), t, blob("a.txt", 2), None);
        let shown = shelf.keep("huge".into(), t, blob("chart.png", 50), None);
        assert!(shown.image);
        assert_eq!(shelf.shown().len(), 1);
        assert_eq!(shelf.get("huge").map(|f| f.data.len()), Some(50));
        shelf.clear();
        assert!(shelf.shown().is_empty());
        assert!(shelf.get("huge").is_none());
    }

    #[test]
    fn ids_are_long_random_hex() {
        let a = new_file_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_file_id());
    }
}
