//! The Models section: one row per official release with its size, where it lives and its
//! state, *Download* (or *Resume*) with a progress bar, *Cancel*, and *Use*.
//!
//! *Use* stores the repository id in the project, not the snapshot path: the id finds the
//! model in the cache of whatever machine opens the project (and a newer snapshot after an
//! update), where a path names one user's home folder and one commit. The worker resolves the
//! id from the cache alone.

use std::path::{Path, PathBuf};

use egui::{Button, Color32, Label, ProgressBar, RichText, Ui};
use voxcpm_engine::hub::LocalState;
use voxcpm_engine::hub::catalog::{CATALOG, CatalogModel, human_bytes};

use crate::models::{ModelManager, Transfer};

/// Width of the state column: a progress bar with bytes, rate and time left fits in it.
const STATE_WIDTH: f32 = 330.0;

/// The catalog as a grid, one line per model (where it lives on hover); `chosen` is the
/// project's model setting. Open at first only while no release is in use, so that a new user
/// sees where models come from and a set-up project keeps its room for the lines.
pub(super) fn show(ui: &mut Ui, models: &ModelManager, chosen: &mut Option<PathBuf>) {
    let release_in_use = CATALOG.iter().any(|model| chosen.as_deref() == Some(Path::new(model.repo)));
    egui::CollapsingHeader::new("Models").default_open(!release_in_use).show(ui, |ui| {
        egui::Grid::new("models").num_columns(4).striped(true).show(ui, |ui| {
            for model in &CATALOG {
                row(ui, models, model, chosen);
                ui.end_row();
            }
        });
    });
}

fn row(ui: &mut Ui, models: &ModelManager, model: &CatalogModel, chosen: &mut Option<PathBuf>) {
    let state = models.local_state(model.repo);
    let transfer = models.transfer(model.repo);
    let running = matches!(transfer, Transfer::Running(_));
    let in_use = chosen.as_deref() == Some(Path::new(model.repo));
    ui.label(RichText::new(model.display_name).strong()).on_hover_text(model.repo);
    ui.label(format!("{} kHz, ≈{}", model.sample_rate_hz as f64 / 1000.0, human_bytes(model.approx_download_bytes)));
    ui.horizontal(|ui| {
        ui.set_width(STATE_WIDTH);
        let where_it_lives = location(models, model.repo, &state);
        let shown = match &transfer {
            Transfer::Running(progress) => progress_bar(ui, progress.as_ref()),
            Transfer::Failed(why) => ui.add(Label::new(RichText::new(why).color(Color32::LIGHT_RED)).truncate()),
            Transfer::Cancelled => ui.add(Label::new("cancelled: Resume goes on from here").truncate()),
            Transfer::Idle | Transfer::Finished => state_label(ui, &state),
        };
        shown.on_hover_text(where_it_lives);
    });
    ui.horizontal(|ui| {
        if running {
            if ui.button("Cancel").clicked() {
                models.cancel(model.repo);
            }
        } else if state.installed_dir().is_none() {
            let label = if matches!(state, LocalState::Partial { .. }) { "Resume" } else { "Download" };
            if ui.button(label).on_hover_text(format!("download {} from Hugging Face", model.repo)).clicked() {
                models.start(model.repo);
            }
        }
        let usable = state.installed_dir().is_some() && !running;
        let use_button = ui
            .add_enabled(usable && !in_use, Button::new(if in_use { "In use" } else { "Use" }))
            .on_hover_text("every line speaks with this model");
        if use_button.clicked() {
            *chosen = Some(PathBuf::from(model.repo));
        }
    });
}

/// Bytes, rate, time left and the current file over a bar.
fn progress_bar(ui: &mut Ui, progress: Option<&voxcpm_engine::hub::DownloadProgress>) -> egui::Response {
    let Some(p) = progress else {
        return ui.add(ProgressBar::new(0.0).text("asking Hugging Face…").desired_width(STATE_WIDTH));
    };
    let fraction = if p.total_bytes > 0 { p.done_bytes as f32 / p.total_bytes as f32 } else { 0.0 };
    let left = p.seconds_left.filter(|s| s.is_finite()).map_or_else(|| "…".to_owned(), minutes_and_seconds);
    let text = format!(
        "{} / {} · {}/s · {left} left",
        human_bytes(p.done_bytes),
        human_bytes(p.total_bytes),
        human_bytes(p.bytes_per_second as u64)
    );
    ui.add(ProgressBar::new(fraction).text(text).desired_width(STATE_WIDTH)).on_hover_text(&p.file)
}

fn minutes_and_seconds(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn state_label(ui: &mut Ui, state: &LocalState) -> egui::Response {
    let colour = match state {
        LocalState::Installed { .. } => Color32::LIGHT_GREEN,
        LocalState::Partial { .. } => Color32::YELLOW,
        LocalState::Damaged { .. } => Color32::LIGHT_RED,
        LocalState::NotInstalled => Color32::GRAY,
    };
    ui.add(Label::new(RichText::new(state.describe()).color(colour)).truncate())
}

/// Where the model lives (its snapshot) or will (its cache folder).
fn location(models: &ModelManager, repo: &str, state: &LocalState) -> String {
    match state {
        LocalState::Installed { snapshot, .. } | LocalState::Damaged { snapshot, .. } => snapshot.display().to_string(),
        LocalState::NotInstalled | LocalState::Partial { .. } => models.location().repo_dir(repo).display().to_string(),
    }
}
