//! Files replaced whole: written beside their final name, flushed to the disk, then renamed, so
//! the name never holds a half-written file (a full disk, a crash, a power cut). It keeps what
//! it held, or gets the new contents whole.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` through `write`, which is handed the partial file to fill. On any failure the
/// partial file is removed and the error names `path`.
pub fn replace(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let partial = partial_path(path);
    let written = write(&partial)
        .and_then(|()| sync(&partial))
        .and_then(|()| std::fs::rename(&partial, path).map_err(|e| Error::write(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(|e| match e {
        Error::Write { source, .. } => Error::write(path, source),
        other => other,
    })
}

/// `dir/.name.partial` for `dir/name`, where [`replace`] writes before renaming: hidden, and
/// on the same file system as the target.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Some file systems report a full disk only when the data reaches the disk, and a power cut
/// must not leave an empty file under the final name.
fn sync(path: &Path) -> Result<()> {
    File::open(path).and_then(|file| file.sync_all()).map_err(|e| Error::write(path, e))
}
