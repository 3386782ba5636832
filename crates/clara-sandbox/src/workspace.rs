//! Each person's workspace: a directory on the host (`<root>/<user id>`),
//! seen inside the sandbox as `/workspace`, and safe host-side access to it
//! for the file tools and for uploads.
//!
//! Code in the sandbox can put anything in the workspace — links to `/etc`
//! included — so every host-side access here:
//! - takes a path relative to the workspace or under `/workspace/`, and
//!   refuses other absolute paths and any `..`;
//! - reads only what resolves inside the workspace (links that stay inside
//!   are followed, links leading out are refused: the path is canonicalised
//!   and its prefix checked), then opens it by walking the real path with
//!   `O_NOFOLLOW`, so a link swapped in meanwhile is refused too;
//! - writes only through real directories, never through a link at all;
//! - caps the size of what it reads and writes.

mod nofollow;

use clara_core::{FileBlob, UserId};
use nofollow::WalkError;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Where the workspace is inside the sandbox.
pub const INSIDE: &str = "/workspace";
/// Clara's own corner of a workspace (run logs, scripts, caches), left out of
/// "files created or changed".
pub const CLARA_DIR: &str = ".clara";
/// Where run logs and scripts go, relative to the workspace.
pub const RUNS_DIR: &str = ".clara/runs";
/// Where files people send land, relative to the workspace.
pub const UPLOADS_DIR: &str = "uploads";

/// Why a workspace path cannot be used: one sentence for the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    /// An absolute path outside `/workspace`.
    #[error(
        "{0:?} is outside the workspace: give a path relative to /workspace, or one starting with /workspace/."
    )]
    Outside(String),
    /// A path with `..`.
    #[error("{0:?} goes up with `..`; give a path inside /workspace without `..`.")]
    GoesUp(String),
    /// An empty path, or one with a NUL character.
    #[error("{0:?} is not a usable path.")]
    Invalid(String),
    /// A link leading out of the workspace.
    #[error("{0} is a symbolic link leading out of the workspace; the file tools stay inside it.")]
    LinkOut(String),
    /// A link where the file tools write.
    #[error(
        "{0} is a symbolic link; the file tools write only to real paths inside the workspace, so remove the link or use another path."
    )]
    Link(String),
    /// Nothing there.
    #[error("{0} does not exist.")]
    NotFound(String),
    /// A directory where a file was needed.
    #[error("{0} is a directory, not a file.")]
    IsDir(String),
    /// A file where a directory was needed.
    #[error("{0} is not a directory.")]
    NotDir(String),
    /// A FIFO, socket or device.
    #[error("{0} is not a regular file.")]
    Special(String),
    /// Past the size cap.
    #[error("{path} is {size}, more than the {limit} the file tools handle.")]
    TooLarge {
        /// The path inside the sandbox.
        path: String,
        /// Its size, in words.
        size: String,
        /// The cap, in words.
        limit: String,
    },
    /// The host's file system failed (the message never names a host path).
    #[error("The workspace could not be used: {0}.")]
    Io(String),
    /// The person's id cannot name a directory.
    #[error("There is no workspace for this person: their id cannot name a directory.")]
    BadUser,
}

impl From<io::Error> for WorkspaceError {
    fn from(error: io::Error) -> Self {
        // std and rustix errors carry no path, so no host path leaks here.
        Self::Io(error.to_string())
    }
}

/// A path inside a workspace, checked: no `..`, nothing outside `/workspace`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkspacePath {
    parts: Vec<String>,
}

impl WorkspacePath {
    /// The workspace itself.
    pub fn root() -> Self {
        Self { parts: Vec::new() }
    }

    /// Reads a path as the model or a person writes it: relative to the
    /// workspace (`data/a.csv`, `./a.csv`), or absolute under `/workspace/`
    /// (or `~/`, the sandbox's home). Refuses other absolute paths and `..`.
    pub fn parse(raw: &str) -> Result<Self, WorkspaceError> {
        let trimmed = raw.trim();
        if trimmed.contains('\0') {
            return Err(WorkspaceError::Invalid(raw.to_owned()));
        }
        let relative = if let Some(rest) = strip_dir(trimmed, INSIDE) {
            rest
        } else if let Some(rest) = strip_dir(trimmed, "~") {
            rest
        } else if trimmed.starts_with('/') {
            return Err(WorkspaceError::Outside(raw.to_owned()));
        } else {
            trimmed
        };
        let mut parts = Vec::new();
        for part in relative.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(WorkspaceError::GoesUp(raw.to_owned())),
                name => parts.push(name.to_owned()),
            }
        }
        Ok(Self { parts })
    }

    /// A path made of `parts` (each one name, checked like [`Self::parse`]).
    fn from_parts(parts: &[OsString]) -> Self {
        Self {
            parts: parts
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
        }
    }

    /// Its components.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// Whether it is the workspace itself.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// Its last component (the file's name), unless it is the workspace itself.
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The path as the sandbox sees it: `/workspace/data/a.csv`.
    pub fn inside(&self) -> String {
        let mut out = INSIDE.to_owned();
        for part in &self.parts {
            out.push('/');
            out.push_str(part);
        }
        out
    }

    /// The path relative to the workspace: `data/a.csv`, or `.` for the root.
    pub fn relative(&self) -> String {
        if self.parts.is_empty() {
            ".".to_owned()
        } else {
            self.parts.join("/")
        }
    }

    /// This path with `name` appended.
    pub fn join(&self, name: &str) -> Self {
        let mut parts = self.parts.clone();
        parts.push(name.to_owned());
        Self { parts }
    }

    fn os_parts(&self) -> Vec<OsString> {
        self.parts.iter().map(OsString::from).collect()
    }
}

/// `path` without the directory `dir` in front (`/workspace/a` → `a`,
/// `/workspace` → ``), or `None` when it is not under `dir`.
fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// What kind of thing an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed by a listing).
    Link,
    /// A FIFO, socket or device.
    Other,
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its path relative to the listed directory (`a.csv`, `sub/b.csv`).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes (for a file).
    pub size: u64,
    /// When it last changed.
    pub modified: Option<SystemTime>,
}

/// A directory's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The directory listed.
    pub dir: WorkspacePath,
    /// Its entries, directories before their contents, by name.
    pub entries: Vec<Entry>,
    /// Whether there were more than the listing could hold.
    pub truncated: bool,
}

/// A file's size and time in a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// Its size in bytes.
    pub size: u64,
    /// When it last changed.
    pub modified: Option<SystemTime>,
}

/// Every regular file of a workspace (outside `.clara/`), to tell what a run
/// created or changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Files by path relative to the workspace.
    pub files: BTreeMap<String, FileStamp>,
    /// Whether the workspace had more files than a snapshot holds.
    pub truncated: bool,
}

/// What changed between two [`Snapshot`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Files created or changed, with their size now.
    pub written: Vec<(String, u64)>,
    /// Files that are gone.
    pub removed: Vec<String>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

impl Snapshot {
    /// What changed from `before` to this snapshot.
    pub fn changes_since(&self, before: &Snapshot) -> Changes {
        let written = self
            .files
            .iter()
            .filter(|(path, stamp)| before.files.get(*path) != Some(*stamp))
            .map(|(path, stamp)| (path.clone(), stamp.size))
            .collect();
        let removed = before
            .files
            .keys()
            .filter(|path| !self.files.contains_key(*path))
            .cloned()
            .collect();
        Changes { written, removed }
    }
}

/// The files of a new run: its log (open for writing) and its id.
#[derive(Debug)]
pub struct RunFiles {
    /// `<timestamp>-<n>`, unique in the workspace.
    pub id: String,
    /// The log file, created empty, for the host to write the output into.
    pub log: std::fs::File,
    /// The log's path inside the sandbox.
    pub log_path: String,
    /// The script's path inside the sandbox, when one was written.
    pub script_path: Option<String>,
}

/// The most files a snapshot records.
const SNAPSHOT_FILES: usize = 20_000;

/// Every person's workspace, under one root directory on the host.
#[derive(Clone, Debug)]
pub struct Workspaces {
    root: PathBuf,
    max_file_bytes: u64,
}

impl Workspaces {
    /// Workspaces under `root` (`<data dir>/workspaces`); the file tools read
    /// and write at most `max_file_bytes` at once.
    pub fn new(root: impl Into<PathBuf>, max_file_bytes: u64) -> Self {
        Self {
            root: root.into(),
            max_file_bytes,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The most bytes a file tool reads or writes at once.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// `user`'s workspace on the host, `<root>/<user id>`, made (mode 0700)
    /// when missing.
    pub fn dir_for(&self, user: &UserId) -> io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let name = user.to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the user id cannot name a directory",
            ));
        }
        let dir = self.root.join(name);
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
        {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        // A link in place of the workspace would send every run elsewhere.
        let meta = std::fs::symlink_metadata(&dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the workspace is not a directory",
            ));
        }
        Ok(dir)
    }

    fn open(&self, user: &UserId) -> Result<(PathBuf, OwnedFd), WorkspaceError> {
        let dir = self.dir_for(user).map_err(|error| {
            if error.kind() == io::ErrorKind::InvalidInput {
                WorkspaceError::BadUser
            } else {
                error.into()
            }
        })?;
        let fd = nofollow::open_root(&dir)?;
        Ok((dir, fd))
    }

    /// Where `path` really is, as components under the workspace: links that
    /// stay inside resolved, links leading out refused.
    fn resolve_existing(
        &self,
        dir: &Path,
        path: &WorkspacePath,
    ) -> Result<Vec<OsString>, WorkspaceError> {
        let base = dir.canonicalize()?;
        let target = path.parts.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
        let real = match target.canonicalize() {
            Ok(real) => real,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(WorkspaceError::NotFound(path.inside()));
            }
            // A file used as a directory on the way.
            Err(error) if error.kind() == io::ErrorKind::NotADirectory => {
                return Err(WorkspaceError::NotFound(path.inside()));
            }
            Err(error) => return Err(error.into()),
        };
        let relative = real
            .strip_prefix(&base)
            .map_err(|_| WorkspaceError::LinkOut(path.inside()))?;
        Ok(relative
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_owned()),
                _ => None,
            })
            .collect())
    }

    /// Reads file `path` of `user`'s workspace, at most
    /// [`Self::max_file_bytes`].
    pub fn read(&self, user: &UserId, path: &WorkspacePath) -> Result<Vec<u8>, WorkspaceError> {
        let (dir, root) = self.open(user)?;
        let parts = self.resolve_existing(&dir, path)?;
        let Some((name, parents)) = parts.split_last() else {
            return Err(WorkspaceError::IsDir(path.inside()));
        };
        let named = |e| walk_error(path, e);
        let parent = nofollow::open_dir(root.as_fd(), parents, false).map_err(named)?;
        let file = nofollow::open_file(parent.as_fd(), name, parents.len()).map_err(named)?;
        let size = file.metadata()?.len();
        if size > self.max_file_bytes {
            return Err(self.too_large(path, size));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(self.max_file_bytes + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > self.max_file_bytes {
            // It grew while being read.
            return Err(self.too_large(path, bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Writes `bytes` to `path` (replacing what is there, whole or not at
    /// all), making missing directories. Refuses links anywhere on the way.
    pub fn write(
        &self,
        user: &UserId,
        path: &WorkspacePath,
        bytes: &[u8],
    ) -> Result<(), WorkspaceError> {
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(self.too_large(path, bytes.len() as u64));
        }
        let (_, root) = self.open(user)?;
        let parts = path.os_parts();
        let Some((name, parents)) = parts.split_last() else {
            return Err(WorkspaceError::IsDir(path.inside()));
        };
        let parent =
            nofollow::open_dir(root.as_fd(), parents, true).map_err(|e| walk_error(path, e))?;
        match nofollow::entry_metadata(parent.as_fd(), name) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(WorkspaceError::Link(path.inside()));
            }
            Ok(meta) if meta.is_dir() => return Err(WorkspaceError::IsDir(path.inside())),
            Ok(meta) if !meta.is_file() => return Err(WorkspaceError::Special(path.inside())),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        nofollow::replace(parent.as_fd(), name, bytes)?;
        Ok(())
    }

    /// Lists directory `path` (links inside the workspace followed to get
    /// there, none followed below it); with `recursive`, its subdirectories
    /// too, except `.clara/` unless `path` is in it. At most `max_entries`.
    pub fn list(
        &self,
        user: &UserId,
        path: &WorkspacePath,
        recursive: bool,
        max_entries: usize,
    ) -> Result<Listing, WorkspaceError> {
        let (dir, root) = self.open(user)?;
        let parts = self.resolve_existing(&dir, path)?;
        let fd =
            nofollow::open_dir(root.as_fd(), &parts, false).map_err(|e| walk_error(path, e))?;
        let listed = WorkspacePath::from_parts(&parts);
        let skip_clara = recursive && listed.is_root();
        let mut listing = Listing {
            dir: listed,
            entries: Vec::new(),
            truncated: false,
        };
        let mut visit = |entry: Entry| {
            if listing.entries.len() >= max_entries {
                listing.truncated = true;
                return false;
            }
            listing.entries.push(entry);
            true
        };
        walk(fd, "", recursive, skip_clara, &mut visit)?;
        Ok(listing)
    }

    /// Every regular file of `user`'s workspace outside `.clara/`, with its
    /// size and time.
    pub fn snapshot(&self, user: &UserId) -> Result<Snapshot, WorkspaceError> {
        let (_, root) = self.open(user)?;
        let mut snapshot = Snapshot::default();
        let mut visit = |entry: Entry| {
            if entry.kind != EntryKind::File {
                return true;
            }
            if snapshot.files.len() >= SNAPSHOT_FILES {
                snapshot.truncated = true;
                return false;
            }
            snapshot.files.insert(
                entry.path,
                FileStamp {
                    size: entry.size,
                    modified: entry.modified,
                },
            );
            true
        };
        walk(root, "", true, true, &mut visit)?;
        Ok(snapshot)
    }

    /// Makes the files of a new run in `.clara/runs/`: its log, and its
    /// script when `script` is given (`<id>.<script extension>`). `stamp` is
    /// the time as `YYYYMMDD-HHMMSS`; the id adds a number that makes it
    /// unique.
    pub fn create_run(
        &self,
        user: &UserId,
        stamp: &str,
        script: Option<(&str, &[u8])>,
    ) -> Result<RunFiles, WorkspaceError> {
        let (_, root) = self.open(user)?;
        let runs = WorkspacePath::parse(RUNS_DIR)?;
        let dir = nofollow::open_dir(root.as_fd(), &runs.os_parts(), true)
            .map_err(|e| walk_error(&runs, e))?;
        for n in 1..10_000u32 {
            let id = format!("{stamp}-{n}");
            let log_name = format!("{id}.log");
            let log = match nofollow::create_new(dir.as_fd(), log_name.as_ref()) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error.into()),
            };
            let script_path = match script {
                Some((extension, bytes)) => {
                    let name = format!("{id}.{extension}");
                    let mut file = nofollow::create_new(dir.as_fd(), name.as_ref())?;
                    file.write_all(bytes)?;
                    Some(runs.join(&name).inside())
                }
                None => None,
            };
            return Ok(RunFiles {
                log_path: runs.join(&log_name).inside(),
                id,
                log,
                script_path,
            });
        }
        Err(WorkspaceError::Io(
            "no free name for the run's log".to_owned(),
        ))
    }

    /// Removes all but the newest `keep` runs' files from `.clara/runs/`.
    pub fn prune_runs(&self, user: &UserId, keep: usize) -> Result<(), WorkspaceError> {
        let (_, root) = self.open(user)?;
        let runs = WorkspacePath::parse(RUNS_DIR)?;
        let dir = match nofollow::open_dir(root.as_fd(), &runs.os_parts(), false) {
            Ok(dir) => dir,
            Err(WalkError::Missing(_)) => return Ok(()),
            Err(error) => return Err(walk_error(&runs, error)),
        };
        // A run's files share the id before the extension.
        let mut ids: BTreeMap<String, (Option<SystemTime>, Vec<OsString>)> = BTreeMap::new();
        for name in nofollow::names(dir.as_fd())? {
            let text = name.to_string_lossy().into_owned();
            let id = text
                .rsplit_once('.')
                .map_or(text.as_str(), |(id, _)| id)
                .to_owned();
            let modified = nofollow::entry_metadata(dir.as_fd(), &name)
                .ok()
                .filter(|m| !m.is_dir())
                .and_then(|m| m.modified().ok());
            let slot = ids.entry(id).or_default();
            slot.0 = slot.0.max(modified);
            slot.1.push(name);
        }
        let mut by_age: Vec<_> = ids.into_values().collect();
        by_age.sort_by_key(|run| std::cmp::Reverse(run.0));
        for (_, names) in by_age.into_iter().skip(keep) {
            for name in names {
                // A directory someone made here is left alone (unlink fails).
                let _ = nofollow::remove_file(dir.as_fd(), &name);
            }
        }
        Ok(())
    }

    /// Stores a file a person sent in `uploads/`, under its name made safe
    /// (`-1`, `-2`… added when taken), and returns its path inside the
    /// sandbox (`/workspace/uploads/report.csv`).
    pub fn put_upload(&self, user: &UserId, file: &FileBlob) -> Result<String, WorkspaceError> {
        let uploads = WorkspacePath::parse(UPLOADS_DIR)?;
        let name = safe_file_name(&file.name);
        if file.data.len() as u64 > self.max_file_bytes {
            return Err(self.too_large(&uploads.join(&name), file.data.len() as u64));
        }
        let (_, root) = self.open(user)?;
        let dir = nofollow::open_dir(root.as_fd(), &uploads.os_parts(), true)
            .map_err(|e| walk_error(&uploads, e))?;
        for n in 0..10_000u32 {
            let candidate = numbered(&name, n);
            let mut out = match nofollow::create_new(dir.as_fd(), candidate.as_ref()) {
                Ok(out) => out,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error.into()),
            };
            if let Err(error) = out.write_all(&file.data) {
                let _ = nofollow::remove_file(dir.as_fd(), candidate.as_ref());
                return Err(error.into());
            }
            return Ok(uploads.join(&candidate).inside());
        }
        Err(WorkspaceError::Io(format!("no free name for {name}")))
    }

    fn too_large(&self, path: &WorkspacePath, size: u64) -> WorkspaceError {
        WorkspaceError::TooLarge {
            path: path.inside(),
            size: human_size(size),
            limit: human_size(self.max_file_bytes),
        }
    }
}

/// Visits the entries under `dir` (paths prefixed with `prefix`), sorted,
/// depth first, never following a link; `visit` returns false to stop.
/// Returns false when stopped.
fn walk(
    dir: OwnedFd,
    prefix: &str,
    recursive: bool,
    skip_clara: bool,
    visit: &mut dyn FnMut(Entry) -> bool,
) -> io::Result<bool> {
    let mut names = nofollow::names(dir.as_fd())?;
    names.sort();
    for name in names {
        let meta = match nofollow::entry_metadata(dir.as_fd(), &name) {
            Ok(meta) => meta,
            // Removed since the directory was read.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let kind = if meta.file_type().is_symlink() {
            EntryKind::Link
        } else if meta.is_dir() {
            EntryKind::Dir
        } else if meta.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        let path = format!("{prefix}{}", name.to_string_lossy());
        let entry = Entry {
            path: path.clone(),
            kind,
            size: if kind == EntryKind::File {
                meta.len()
            } else {
                0
            },
            modified: meta.modified().ok(),
        };
        if skip_clara && prefix.is_empty() && name == CLARA_DIR {
            continue;
        }
        if !visit(entry) {
            return Ok(false);
        }
        if recursive && kind == EntryKind::Dir {
            let sub = match nofollow::open_dir(dir.as_fd(), &[name], false) {
                Ok(sub) => sub,
                // Swapped for a link or removed meanwhile: not listed.
                Err(_) => continue,
            };
            if !walk(sub, &format!("{path}/"), recursive, false, visit)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The error of a walk along `path`, naming the component at fault.
fn walk_error(path: &WorkspacePath, error: WalkError) -> WorkspaceError {
    let upto = |index: usize| {
        WorkspacePath {
            parts: path.parts.iter().take(index + 1).cloned().collect(),
        }
        .inside()
    };
    match error {
        WalkError::Link(i) => WorkspaceError::Link(upto(i)),
        WalkError::NotDir(i) => WorkspaceError::NotDir(upto(i)),
        WalkError::Missing(i) => WorkspaceError::NotFound(upto(i)),
        WalkError::IsDir(i) => WorkspaceError::IsDir(upto(i)),
        WalkError::Special(i) => WorkspaceError::Special(upto(i)),
        WalkError::Io(error) => error.into(),
    }
}

/// The longest name [`safe_file_name`] gives, in bytes (file systems allow
/// 255; letters of other scripts take up to four bytes each).
const MAX_NAME_BYTES: usize = 120;

/// A file name safe to store: the last component of `name` only, letters,
/// digits, `.`, `-` and `_` (anything else becomes `_`), no leading dot, at
/// most 120 bytes with the extension kept; `file` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.chars().all(|c| c == '_' || c == '.') {
        return "file".to_owned();
    }
    if cleaned.len() <= MAX_NAME_BYTES {
        return cleaned.to_owned();
    }
    let (stem, extension) = split_extension(cleaned);
    let extension = take_bytes(extension, MAX_NAME_BYTES / 4);
    let stem = take_bytes(stem, MAX_NAME_BYTES.saturating_sub(extension.len()));
    format!("{stem}{extension}")
}

/// The longest start of `text` of at most `max` bytes that ends on a character.
fn take_bytes(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `name` split before its extension: `a.tar.gz` → (`a.tar`, `.gz`).
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(0) | None => (name, ""),
        Some(dot) => name.split_at(dot),
    }
}

/// `name` with `-n` before its extension (`report-2.csv`); `name` itself for 0.
fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    let (stem, extension) = split_extension(name);
    format!("{stem}-{n}{extension}")
}

/// A size in words: `512 bytes`, `23 KB`, `1.5 MB`.
pub fn human_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    const GB: u64 = 1024 * MB;
    let scaled = |unit: u64, name: &str| {
        let value = bytes as f64 / unit as f64;
        if value < 10.0 {
            let text = format!("{value:.1}");
            format!("{} {name}", text.trim_end_matches(".0"))
        } else {
            format!("{value:.0} {name}")
        }
    };
    match bytes {
        1 => "1 byte".to_owned(),
        0..KB => format!("{bytes} bytes"),
        KB..MB => scaled(KB, "KB"),
        MB..GB => scaled(MB, "MB"),
        _ => scaled(GB, "GB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn setup() -> (tempfile::TempDir, Workspaces, UserId, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let spaces = Workspaces::new(temp.path().join("workspaces"), 1024);
        let user = UserId::new();
        let dir = spaces.dir_for(&user).unwrap();
        (temp, spaces, user, dir)
    }

    fn p(raw: &str) -> WorkspacePath {
        WorkspacePath::parse(raw).unwrap()
    }

    #[test]
    fn paths_are_relative_or_under_workspace() {
        assert_eq!(p("data/a.csv").inside(), "/workspace/data/a.csv");
        assert_eq!(p("/workspace/data/a.csv").relative(), "data/a.csv");
        assert_eq!(p("./a//b/./c").relative(), "a/b/c");
        assert_eq!(p("~/x").relative(), "x");
        assert!(p("/workspace").is_root());
        assert!(p("").is_root());
        assert!(matches!(
            WorkspacePath::parse("/etc/passwd"),
            Err(WorkspaceError::Outside(_))
        ));
        assert!(matches!(
            WorkspacePath::parse("/workspacefoo/x"),
            Err(WorkspaceError::Outside(_))
        ));
        assert!(matches!(
            WorkspacePath::parse("../x"),
            Err(WorkspaceError::GoesUp(_))
        ));
        assert!(matches!(
            WorkspacePath::parse("a/../../x"),
            Err(WorkspaceError::GoesUp(_))
        ));
        assert!(matches!(
            WorkspacePath::parse("a\0b"),
            Err(WorkspaceError::Invalid(_))
        ));
    }

    #[test]
    fn the_workspace_is_private_and_named_by_the_user() {
        let (_temp, spaces, user, dir) = setup();
        assert_eq!(dir, spaces.root().join(user.to_string()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(spaces.dir_for(&user).unwrap(), dir);
    }

    #[test]
    fn a_workspace_replaced_by_a_link_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let spaces = Workspaces::new(temp.path().join("w"), 1024);
        let user = UserId::new();
        std::fs::create_dir_all(spaces.root()).unwrap();
        symlink(temp.path(), spaces.root().join(user.to_string())).unwrap();
        assert!(spaces.dir_for(&user).is_err());
    }

    #[test]
    fn files_are_written_and_read_back() {
        let (_temp, spaces, user, dir) = setup();
        spaces.write(&user, &p("sub/dir/a.txt"), b"hello").unwrap();
        assert_eq!(std::fs::read(dir.join("sub/dir/a.txt")).unwrap(), b"hello");
        spaces
            .write(&user, &p("/workspace/sub/dir/a.txt"), b"again")
            .unwrap();
        assert_eq!(spaces.read(&user, &p("sub/dir/a.txt")).unwrap(), b"again");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("sub/dir")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn reads_and_writes_have_a_cap() {
        let (_temp, spaces, user, dir) = setup();
        let error = spaces.write(&user, &p("big"), &[0; 2000]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/workspace/big is 2 KB, more than the 1 KB the file tools handle."
        );
        std::fs::write(dir.join("big"), [0; 2000]).unwrap();
        assert!(matches!(
            spaces.read(&user, &p("big")),
            Err(WorkspaceError::TooLarge { .. })
        ));
    }

    #[test]
    fn links_leading_out_are_refused_and_links_inside_followed() {
        let (temp, spaces, user, dir) = setup();
        std::fs::write(temp.path().join("secret"), "key").unwrap();
        symlink(temp.path().join("secret"), dir.join("out")).unwrap();
        symlink("/etc", dir.join("etc")).unwrap();
        std::fs::write(dir.join("real.txt"), "ok").unwrap();
        symlink("real.txt", dir.join("in")).unwrap();
        assert_eq!(
            spaces.read(&user, &p("out")),
            Err(WorkspaceError::LinkOut("/workspace/out".into()))
        );
        assert!(matches!(
            spaces.read(&user, &p("etc/passwd")),
            Err(WorkspaceError::LinkOut(_))
        ));
        assert!(matches!(
            spaces.list(&user, &p("etc"), false, 10),
            Err(WorkspaceError::LinkOut(_))
        ));
        assert_eq!(spaces.read(&user, &p("in")).unwrap(), b"ok");
    }

    #[test]
    fn writes_never_go_through_a_link() {
        let (temp, spaces, user, dir) = setup();
        let outside = temp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, dir.join("d")).unwrap();
        assert_eq!(
            spaces.write(&user, &p("d/x"), b"x"),
            Err(WorkspaceError::Link("/workspace/d".into()))
        );
        std::fs::write(dir.join("real"), "r").unwrap();
        symlink("real", dir.join("inner")).unwrap();
        assert_eq!(
            spaces.write(&user, &p("inner"), b"x"),
            Err(WorkspaceError::Link("/workspace/inner".into()))
        );
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert_eq!(std::fs::read(dir.join("real")).unwrap(), b"r");
    }

    #[test]
    fn special_files_and_directories_are_not_read() {
        let (_temp, spaces, user, dir) = setup();
        std::fs::create_dir(dir.join("d")).unwrap();
        assert!(matches!(
            spaces.read(&user, &p("d")),
            Err(WorkspaceError::IsDir(_))
        ));
        assert!(matches!(
            spaces.read(&user, &p("/workspace")),
            Err(WorkspaceError::IsDir(_))
        ));
        let fifo = std::process::Command::new("mkfifo")
            .arg(dir.join("pipe"))
            .status()
            .unwrap();
        assert!(fifo.success());
        // Returns at once instead of waiting for a writer.
        assert!(matches!(
            spaces.read(&user, &p("pipe")),
            Err(WorkspaceError::Special(_))
        ));
        assert!(matches!(
            spaces.read(&user, &p("nothing")),
            Err(WorkspaceError::NotFound(_))
        ));
        std::fs::write(dir.join("file"), "x").unwrap();
        assert_eq!(
            spaces.read(&user, &p("file/inner")),
            Err(WorkspaceError::NotFound("/workspace/file/inner".into()))
        );
        assert_eq!(
            spaces.write(&user, &p("file/inner"), b"x"),
            Err(WorkspaceError::NotDir("/workspace/file".into()))
        );
    }

    #[test]
    fn listings_show_kinds_sizes_and_skip_clara_when_recursive() {
        let (_temp, spaces, user, dir) = setup();
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::create_dir_all(dir.join(".clara/runs")).unwrap();
        std::fs::write(dir.join("a/b/c.txt"), "123").unwrap();
        std::fs::write(dir.join("z.txt"), "1").unwrap();
        symlink("/etc", dir.join("link")).unwrap();
        let flat = spaces
            .list(&user, &WorkspacePath::root(), false, 100)
            .unwrap();
        let names: Vec<_> = flat.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, [".clara", "a", "link", "z.txt"]);
        assert_eq!(flat.entries[2].kind, EntryKind::Link);
        let deep = spaces
            .list(&user, &WorkspacePath::root(), true, 100)
            .unwrap();
        let names: Vec<_> = deep.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c.txt", "link", "z.txt"]);
        assert_eq!(deep.entries[2].size, 3);
        let short = spaces.list(&user, &WorkspacePath::root(), true, 2).unwrap();
        assert!(short.truncated);
        assert_eq!(short.entries.len(), 2);
    }

    #[test]
    fn snapshots_tell_what_changed() {
        let (_temp, spaces, user, dir) = setup();
        std::fs::write(dir.join("keep"), "k").unwrap();
        std::fs::write(dir.join("gone"), "g").unwrap();
        std::fs::write(dir.join("edit"), "e").unwrap();
        let before = spaces.snapshot(&user).unwrap();
        std::fs::remove_file(dir.join("gone")).unwrap();
        std::fs::write(dir.join("edit"), "edited").unwrap();
        std::fs::create_dir_all(dir.join("new")).unwrap();
        std::fs::write(dir.join("new/file"), "n").unwrap();
        std::fs::create_dir_all(dir.join(".clara")).unwrap();
        std::fs::write(dir.join(".clara/log"), "l").unwrap();
        let after = spaces.snapshot(&user).unwrap();
        let changes = after.changes_since(&before);
        assert_eq!(
            changes.written,
            vec![("edit".to_owned(), 6), ("new/file".to_owned(), 1)]
        );
        assert_eq!(changes.removed, vec!["gone".to_owned()]);
    }

    #[test]
    fn runs_get_unique_files() {
        let (_temp, spaces, user, dir) = setup();
        let first = spaces
            .create_run(&user, "20260101-000000", Some(("py", b"print(1)")))
            .unwrap();
        assert_eq!(first.id, "20260101-000000-1");
        assert_eq!(
            first.log_path,
            "/workspace/.clara/runs/20260101-000000-1.log"
        );
        assert_eq!(
            first.script_path.as_deref(),
            Some("/workspace/.clara/runs/20260101-000000-1.py")
        );
        let second = spaces.create_run(&user, "20260101-000000", None).unwrap();
        assert_eq!(second.id, "20260101-000000-2");
        assert_eq!(
            std::fs::read(dir.join(".clara/runs/20260101-000000-1.py")).unwrap(),
            b"print(1)"
        );
        spaces.prune_runs(&user, 1).unwrap();
        let left = std::fs::read_dir(dir.join(".clara/runs")).unwrap().count();
        assert!(left <= 2, "{left} files left");
    }

    #[test]
    fn uploads_get_safe_unique_names() {
        let (_temp, spaces, user, dir) = setup();
        let file = FileBlob::new("../../etc/Report (final).csv", b"a,b".to_vec());
        assert_eq!(
            spaces.put_upload(&user, &file).unwrap(),
            "/workspace/uploads/Report__final_.csv"
        );
        assert_eq!(
            spaces.put_upload(&user, &file).unwrap(),
            "/workspace/uploads/Report__final_-1.csv"
        );
        assert_eq!(
            std::fs::read(dir.join("uploads/Report__final_-1.csv")).unwrap(),
            b"a,b"
        );
        let big = FileBlob::new("big.bin", vec![0; 4096]);
        assert!(matches!(
            spaces.put_upload(&user, &big),
            Err(WorkspaceError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_file_name("a/b\\c.txt"), "c.txt");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name("Überblick 2.csv"), "Überblick_2.csv");
        let long = format!("{}.xlsx", "x".repeat(300));
        let short = safe_file_name(&long);
        assert_eq!(short.len(), 120);
        assert!(short.ends_with("x.xlsx"));
        // Letters of other scripts are several bytes each: the cut is in bytes.
        let chinese = format!("{}.csv", "数".repeat(100));
        let short = safe_file_name(&chinese);
        assert!(short.len() <= 120 && short.ends_with("数.csv"), "{short}");
        assert_eq!(numbered("a.tar.gz", 2), "a.tar-2.gz");
        assert_eq!(numbered("noext", 1), "noext-1");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(5), "5 bytes");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(23 * 1024 + 100), "23 KB");
        assert_eq!(human_size(20 * 1024 * 1024), "20 MB");
    }
}
