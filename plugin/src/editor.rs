//! The egui editor: the model, the voice and export folders, the parameters, and the voice
//! lines ([`lines`]) with their render status, takes, play and export buttons.
//!
//! File choices are typed or pasted paths: a native file dialog inside a plugin window needs a
//! toolkit (GTK or a desktop portal on Linux) that hosts do not reliably provide.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;

mod lines;
mod models_section;

use egui::{Color32, RichText, TextEdit, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp, RepaintNotifier};

use crate::models::ModelManager;
use crate::params::VoxParams;
use crate::player::EditorTriggers;
use crate::status::Status;
use crate::worker::Command;

const WIDTH: f32 = 900.0;
const HEIGHT: f32 = 720.0;
const NOTE_NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

pub struct EditorApp {
    params: Arc<VoxParams>,
    status: Arc<Status>,
    triggers: Arc<EditorTriggers>,
    commands: Sender<Command>,
    gui: Option<GuiContext>,
    /// The model folder being typed, applied with the button.
    model_draft: String,
    /// Downloads (shared by every instance in the process; they go on while the window is
    /// closed).
    models: Arc<ModelManager>,
}

pub fn create(
    params: Arc<VoxParams>,
    status: Arc<Status>,
    triggers: Arc<EditorTriggers>,
    commands: Sender<Command>,
) -> Option<EguiEditor<EditorApp>> {
    let model_draft = params.project().model.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let models = ModelManager::shared();
    let app = EditorApp { params, status, triggers, commands, gui: None, model_draft, models };
    let settings = EguiNiceSettings::default().with_tile("VoxCPM");
    nice_plug_egui::create_egui_editor(
        EguiEditorState::from_size(nice_plug::editor::dpi::LogicalSize::new(WIDTH, HEIGHT), 1.0),
        RepaintNotifier::new(),
        settings,
        app,
    )
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut Frame) {
        ui.heading("VoxCPM");
        self.model_section(ui);
        ui.separator();
        if let Some(gui) = self.gui.clone() {
            self.parameters(ui, &gui);
        }
        ui.separator();
        self.notes(ui);
        self.lines(ui);
        // Render progress moves without input; keep the view fresh.
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
    }
}

impl EditorApp {
    fn model_section(&mut self, ui: &mut Ui) {
        let model = self.status.model();
        let colour = if model.summary.starts_with("ready") && !model.demo {
            Color32::LIGHT_GREEN
        } else if model.summary.starts_with("loading") || model.demo {
            Color32::YELLOW
        } else {
            Color32::LIGHT_RED
        };
        ui.label(RichText::new(format!("Model: {}", model.headline())).color(colour));
        let mut chosen = self.params.project().model.clone();
        models_section::show(ui, &self.models, &mut chosen);
        if chosen != self.params.project().model {
            self.params.project_mut().model = chosen;
        }
        ui.horizontal(|ui| {
            ui.label("Custom model folder");
            ui.add(TextEdit::singleline(&mut self.model_draft).hint_text("automatic").desired_width(460.0));
            if ui.button("Use").clicked() {
                let trimmed = self.model_draft.trim();
                self.params.project_mut().model = (!trimmed.is_empty()).then(|| PathBuf::from(trimmed));
            }
        });
        let mut project = self.params.project_mut();
        path_field(ui, "Voice (reference WAV)", &mut project.voice, "none: the model's own voice");
        path_field(ui, "Export folder", &mut project.export_dir, "home folder");
    }

    fn parameters(&self, ui: &mut Ui, gui: &GuiContext) {
        let setter = gui.param_setter();
        let p = &self.params;
        egui::CollapsingHeader::new("Parameters").default_open(true).show(ui, |ui| {
            egui::Grid::new("parameters").num_columns(4).show(ui, |ui| {
                ui.label("Base note");
                ui.add(ParamSlider::for_param(&p.base_note, &setter));
                ui.label("Gain");
                ui.add(ParamSlider::for_param(&p.gain, &setter));
                ui.end_row();
                ui.label("CFG");
                ui.add(ParamSlider::for_param(&p.cfg, &setter));
                ui.label("Timesteps");
                ui.add(ParamSlider::for_param(&p.steps, &setter));
                ui.end_row();
                ui.label("Seed");
                ui.add(ParamSlider::for_param(&p.seed, &setter));
                ui.label("Output");
                ui.add(ParamSlider::for_param(&p.output, &setter));
                ui.end_row();
                ui.label("Retrigger");
                ui.add(ParamSlider::for_param(&p.retrigger, &setter));
                ui.label("Live");
                ui.add(ParamSlider::for_param(&p.live, &setter));
                ui.end_row();
                ui.label("Normalize text");
                ui.add(ParamSlider::for_param(&p.normalize, &setter));
                ui.label("Denoise voice");
                ui.add(ParamSlider::for_param(&p.denoise, &setter));
                ui.end_row();
                ui.label("Note off");
                ui.add(ParamSlider::for_param(&p.note_off, &setter));
                ui.label("Velocity");
                ui.add(ParamSlider::for_param(&p.velocity, &setter));
                ui.end_row();
            });
        });
    }

    fn notes(&self, ui: &mut Ui) {
        let notes = self.status.model().notes;
        let missed = self.status.missed_triggers.load(Ordering::Relaxed);
        let silenced = self.status.silenced_voices.load(Ordering::Relaxed);
        if notes.is_empty() && missed == 0 && silenced == 0 {
            return;
        }
        for note in notes.iter().rev().take(4) {
            ui.label(RichText::new(note).color(Color32::LIGHT_RED));
        }
        if silenced > 0 {
            ui.label(
                RichText::new(format!("{silenced} voice(s) silenced: the model produced non-finite audio"))
                    .color(Color32::LIGHT_RED),
            );
        }
        if missed > 0 {
            ui.label(
                RichText::new(format!("{missed} trigger(s) came before their line was ready")).color(Color32::YELLOW),
            );
        }
        if ui.small_button("dismiss").clicked() {
            self.status.clear_notes();
            self.status.missed_triggers.store(0, Ordering::Relaxed);
            self.status.silenced_voices.store(0, Ordering::Relaxed);
        }
    }
}

/// An optional path as a text field (empty = none).
fn path_field(ui: &mut Ui, label: &str, path: &mut Option<PathBuf>, hint: &str) {
    ui.horizontal(|ui| {
        ui.label(label);
        let mut text = path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        if ui.add(TextEdit::singleline(&mut text).hint_text(hint).desired_width(420.0)).changed() {
            let trimmed = text.trim();
            *path = (!trimmed.is_empty()).then(|| PathBuf::from(trimmed));
        }
    });
}
