//! Export: a line's chosen take, or each of its rendered takes, written as WAVs at the model's
//! rate into the export folder, named by line, take and seed so takes never overwrite each
//! other and a file says which render it holds.

use std::path::PathBuf;

use voxcpm_engine::wav::write_float_file;

use super::{ExportTakes, WorkerState};
use crate::takes;

/// The file name of take `take` (0-based) of line `line` (0-based), rendered with `seed`.
pub(super) fn file_name(line: usize, take: usize, seed: u64) -> String {
    format!("voxcpm-line-{}-take-{}-seed-{seed}.wav", line + 1, take + 1)
}

impl WorkerState {
    /// Writes the takes asked for and notes what was written, what was not rendered yet, or
    /// the first write that failed (naming the file and the OS error).
    pub(super) fn export(&mut self, line: usize, which: ExportTakes) {
        let number = line + 1;
        let Some((slot, base)) = self.lines.get(line).and_then(|slot| Some((slot, slot.spec.as_ref()?.seed))) else {
            return self.status.add_note(format!("line {number}: nothing to export yet (not rendered)"));
        };
        let wanted: Vec<usize> = match which {
            ExportTakes::Chosen => vec![slot.chosen],
            ExportTakes::All => (0..slot.takes.len()).collect(),
        };
        let (rendered, missing): (Vec<usize>, Vec<usize>) =
            wanted.into_iter().partition(|&take| slot.takes.get(take).is_some_and(|t| t.clip.is_some()));
        if rendered.is_empty() {
            return self.status.add_note(format!("line {number}: nothing to export yet (not rendered)"));
        }
        let dir = self.params.project().export_dir.clone().unwrap_or_else(home_dir);
        let mut written = Vec::new();
        for take in rendered {
            let Some(clip) = slot.takes[take].clip.as_ref() else { continue };
            let path = dir.join(file_name(line, take, takes::take_seed(base, take)));
            if let Err(e) = write_float_file(&path, &clip.samples, clip.sample_rate) {
                return self.status.add_note(format!("line {number}: export failed: {e}"));
            }
            written.push(path);
        }
        let mut note = match written.as_slice() {
            [one] => format!("line {number} exported to {}", one.display()),
            _ => {
                let names: Vec<_> = written.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect();
                format!("line {number}: {} takes exported to {}: {}", written.len(), dir.display(), names.join(", "))
            }
        };
        if !missing.is_empty() {
            let missing: Vec<_> = missing.iter().map(|take| (take + 1).to_string()).collect();
            note.push_str(&format!(" (not rendered yet: take {})", missing.join(", ")));
        }
        self.status.add_note(note);
    }
}

fn home_dir() -> PathBuf {
    std::env::var_os(if cfg!(windows) { "USERPROFILE" } else { "HOME" })
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use voxcpm_engine::audio_io::read_wav_mono;

    use super::*;
    use crate::handoff::{Clip, ToAudio};
    use crate::project::Line;
    use crate::status::Status;
    use crate::worker::Command;
    use crate::worker::tests::{Running, start, wait_until};

    /// The newest note that contains `text`, waiting for it.
    fn note_with(status: &Status, text: &str) -> String {
        let mut found = String::new();
        wait_until(text, || match status.model().notes.iter().rev().find(|n| n.contains(text)) {
            Some(note) => {
                found = note.clone();
                true
            }
            None => false,
        });
        found
    }

    /// Line 1's takes as they reach the audio thread, by take, once all `count` have.
    fn takes_of_line_one(running: &mut Running, count: usize) -> Vec<Clip> {
        let mut takes = vec![None; count];
        wait_until("every take", || {
            if let Ok(ToAudio::Take { line: 0, take, clip: Some(clip) }) = running.audio.from_worker.pop() {
                takes[take] = Some(clip);
            }
            takes.iter().all(Option::is_some)
        });
        takes.into_iter().flatten().collect()
    }

    fn exported(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|f| f.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn export(running: &Running, takes: ExportTakes) -> String {
        running.status.clear_notes();
        running.commands.send(Command::Export { line: 0, takes }).unwrap();
        note_with(&running.status, "exported")
    }

    #[test]
    fn export_writes_the_chosen_take_or_every_take_named_by_line_take_and_seed() {
        let cache = tempfile::tempdir().unwrap();
        let exports = tempfile::tempdir().unwrap();
        let line = Line { takes: 3, chosen_seed: Some(2), ..Line::new("Export me.") };
        let mut running = start(vec![line], cache.path());
        running.params.project_mut().export_dir = Some(exports.path().to_owned());
        let takes = takes_of_line_one(&mut running, 3);

        let note = export(&running, ExportTakes::Chosen);
        assert_eq!(exported(exports.path()), ["voxcpm-line-1-take-2-seed-2.wav"], "{note}");
        let file = exports.path().join("voxcpm-line-1-take-2-seed-2.wav");
        assert!(note.contains(&file.display().to_string()), "{note}");
        let (samples, rate) = read_wav_mono(&file).unwrap();
        assert_eq!(rate, takes[1].sample_rate, "the rate the model rendered at");
        assert_eq!(samples, takes[1].samples.to_vec());

        std::fs::remove_file(&file).unwrap();
        let note = export(&running, ExportTakes::All);
        assert!(note.contains("3 takes exported"), "{note}");
        let names =
            ["voxcpm-line-1-take-1-seed-1.wav", "voxcpm-line-1-take-2-seed-2.wav", "voxcpm-line-1-take-3-seed-3.wav"];
        assert_eq!(exported(exports.path()), names);
        for (name, take) in names.iter().zip(&takes) {
            assert_eq!(read_wav_mono(&exports.path().join(name)).unwrap().0, take.samples.to_vec(), "{name}");
        }

        running.commands.send(Command::Export { line: 5, takes: ExportTakes::All }).unwrap();
        note_with(&running.status, "line 6: nothing to export");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_export_to_a_full_disk_or_an_unusable_folder_names_the_folder_and_the_os_error() {
        let cache = tempfile::tempdir().unwrap();
        let exports = tempfile::tempdir().unwrap();
        let mut running = start(vec![Line::new("Export me.")], cache.path());
        running.params.project_mut().export_dir = Some(exports.path().to_owned());
        let clip = takes_of_line_one(&mut running, 1).remove(0);
        export(&running, ExportTakes::Chosen);

        // /dev/full fails every write with ENOSPC, for root too.
        let file = exports.path().join(file_name(0, 0, 1));
        std::os::unix::fs::symlink("/dev/full", voxcpm_engine::whole_file::partial_path(&file)).unwrap();
        running.commands.send(Command::Export { line: 0, takes: ExportTakes::Chosen }).unwrap();
        let note = note_with(&running.status, "export failed");
        assert!(note.contains(&exports.path().display().to_string()), "{note}");
        assert!(note.contains("No space left on device"), "{note}");
        let (samples, _) = read_wav_mono(&file).unwrap();
        assert_eq!(samples, clip.samples.to_vec(), "the earlier export is untouched");
        running.status.clear_notes();

        // A folder under a regular file (ENOTDIR): unwritable for root too, unlike chmod.
        let not_a_folder = file.join("exports");
        running.params.project_mut().export_dir = Some(not_a_folder.clone());
        running.commands.send(Command::Export { line: 0, takes: ExportTakes::All }).unwrap();
        let note = note_with(&running.status, "export failed");
        assert!(note.contains(&not_a_folder.display().to_string()), "{note}");
        assert!(note.contains("Not a directory"), "{note}");
    }
}
