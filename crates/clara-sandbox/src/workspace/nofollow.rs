//! Opening things under a directory one component at a time, never following
//! a symbolic link.
//!
//! Code in the sandbox writes the workspace while Clara reads and writes it
//! from the host: a directory checked a moment ago may be a link to `/etc`
//! now. Walking with `openat(…, O_NOFOLLOW)` from a descriptor of the
//! workspace itself leaves no moment in which a swapped path is followed.

use rustix::fs::{AtFlags, Mode, OFlags, openat, renameat, unlinkat};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Why a walk stopped, before it is put in words.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// Component `index` is a symbolic link.
    Link(usize),
    /// Component `index` is not a directory (a file where a directory was needed).
    NotDir(usize),
    /// Component `index` does not exist.
    Missing(usize),
    /// Component `index` is a directory where a file was needed.
    IsDir(usize),
    /// Component `index` is neither a file nor a directory (a FIFO, a socket, a device).
    Special(usize),
    /// Anything else.
    Io(io::Error),
}

impl From<io::Error> for WalkError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<Errno> for WalkError {
    fn from(errno: Errno) -> Self {
        Self::Io(errno.into())
    }
}

const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens directory `path` itself (its last component must not be a link).
pub(crate) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR, Mode::empty())?)
}

/// What `name` in `dir` is, without following it when it is a link.
pub(crate) fn entry_metadata(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Metadata> {
    // An O_PATH descriptor of the entry itself (the link, when it is one)
    // gives std's `Metadata` through fstat, with nothing opened for reading.
    let fd = openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    File::from(fd).metadata()
}

/// Names the error of opening component `index` (`name` in `dir`).
fn classify(dir: BorrowedFd<'_>, name: &OsStr, index: usize, errno: Errno) -> WalkError {
    match errno {
        Errno::NOENT => WalkError::Missing(index),
        Errno::LOOP | Errno::NOTDIR => match entry_metadata(dir, name) {
            Ok(meta) if meta.file_type().is_symlink() => WalkError::Link(index),
            Ok(_) => WalkError::NotDir(index),
            Err(error) => WalkError::Io(error),
        },
        other => WalkError::Io(other.into()),
    }
}

/// Opens the directory `parts` under `root`, every component a real
/// directory; with `create`, missing ones are made (mode 0755).
pub(crate) fn open_dir(
    root: BorrowedFd<'_>,
    parts: &[OsString],
    create: bool,
) -> Result<OwnedFd, WalkError> {
    let mut current: OwnedFd = rustix::io::dup(root)?;
    for (index, name) in parts.iter().enumerate() {
        let next = match openat(current.as_fd(), name.as_os_str(), DIR, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(current.as_fd(), name.as_os_str(), Mode::from(0o755)) {
                    // Made by someone else meanwhile: opening it decides.
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => return Err(errno.into()),
                }
                openat(current.as_fd(), name.as_os_str(), DIR, Mode::empty())
                    .map_err(|errno| classify(current.as_fd(), name, index, errno))?
            }
            Err(errno) => return Err(classify(current.as_fd(), name, index, errno)),
        };
        current = next;
    }
    Ok(current)
}

/// Opens regular file `name` in `dir` for reading. A FIFO or device is
/// refused before anything blocks on it.
pub(crate) fn open_file(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    index: usize,
) -> Result<File, WalkError> {
    // NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = openat(dir, name, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::LOOP => WalkError::Link(index),
        Errno::NOENT => WalkError::Missing(index),
        other => WalkError::Io(other.into()),
    })?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(WalkError::IsDir(index));
    }
    if !meta.is_file() {
        return Err(WalkError::Special(index));
    }
    // Reads of a regular file never block; the flag only mattered for open.
    rustix::fs::fcntl_setfl(&file, OFlags::empty())?;
    Ok(file)
}

/// Creates `name` in `dir`; fails with `AlreadyExists` when anything (a link
/// included) is there.
pub(crate) fn create_new(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(openat(dir, name, flags, Mode::from(0o644))?))
}

/// Replaces `name` in `dir` with `bytes`, whole or not at all: written to a
/// new file beside it, then renamed over it (a rename replaces a link itself,
/// never what it points to).
pub(crate) fn replace(dir: BorrowedFd<'_>, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    let (temp_name, mut temp) = create_temp(dir)?;
    let written = temp.write_all(bytes).and_then(|()| temp.sync_all());
    let renamed = written.and_then(|()| Ok(renameat(dir, &temp_name, dir, name)?));
    if renamed.is_err() {
        let _ = unlinkat(dir, &temp_name, AtFlags::empty());
    }
    renamed
}

/// A fresh hidden file in `dir`, for [`replace`].
fn create_temp(dir: BorrowedFd<'_>) -> io::Result<(OsString, File)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    for attempt in 0..100u32 {
        let name = OsString::from(format!(
            ".clara-write-{}-{stamp}-{attempt}",
            std::process::id()
        ));
        match create_new(dir, &name) {
            Ok(file) => return Ok((name, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

/// Removes file `name` from `dir` (never a directory; a link is removed itself).
pub(crate) fn remove_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    Ok(unlinkat(dir, name, AtFlags::empty())?)
}

/// The names in `dir`, without `.` and `..`.
pub(crate) fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}
