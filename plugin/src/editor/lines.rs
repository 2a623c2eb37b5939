//! The editor's voice lines: text, render status, play/export/remove, the line's voice and
//! continuation prompt, and its takes (seed, length, outline, audition, the chosen one).

use std::path::PathBuf;

use egui::{Button, Color32, DragValue, Rangef, RichText, ScrollArea, Sense, Stroke, TextEdit, Ui, vec2};

use super::{EditorApp, NOTE_NAMES, path_field};
use crate::params::Retrigger;
use crate::project::{Line, MAX_LINES, MAX_TAKES, Prompt};
use crate::status::{LineReport, LineState};
use crate::takes::{self, Audition, TakeReport};
use crate::worker::{Command, ExportTakes};

/// A take's outline in points.
const THUMBNAIL: [f32; 2] = [64.0, 18.0];
/// Where a line's second and later rows start, under its text.
const INDENT: f32 = 48.0;

impl EditorApp {
    pub(super) fn lines(&self, ui: &mut Ui) {
        let base = self.params.base_note.value();
        let seed = self.params.seed.value().max(0) as u64;
        let cut = self.params.retrigger.value() == Retrigger::Cut;
        let mut remove = None;
        ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            let mut project = self.params.project_mut();
            prompt_fields(ui, "Continuation prompt (WAV)", &mut project.prompt, "none");
            for (index, line) in project.lines.iter_mut().enumerate() {
                ui.horizontal(|ui| {
                    ui.label(
                        RichText::new(format!("{:>2} {:<4}", index + 1, note_name(base + index as i32))).monospace(),
                    );
                    ui.add(TextEdit::singleline(&mut line.text).desired_width(300.0));
                    match self.status.live_wait(index) {
                        // A live line held back until it can play without a gap.
                        Some(wait) => drop(ui.label(RichText::new(wait.to_string()).color(Color32::YELLOW))),
                        None => status_label(ui, &self.status.line(index)),
                    }
                    if ui.button("play").on_hover_text("play the chosen take now").clicked() {
                        self.triggers.request(index);
                    }
                    let export = |takes| {
                        let _ = self.commands.send(Command::Export { line: index, takes });
                    };
                    if ui.button("export").on_hover_text("write the chosen take as a WAV").clicked() {
                        export(ExportTakes::Chosen);
                    }
                    if line.takes > 1 && ui.button("export all").on_hover_text("write every take").clicked() {
                        export(ExportTakes::All);
                    }
                    if ui.button("remove").on_hover_text("remove the line").clicked() {
                        remove = Some(index);
                    }
                });
                ui.horizontal(|ui| {
                    ui.add_space(INDENT);
                    path_field(ui, "voice", &mut line.voice, "the project's voice");
                });
                ui.horizontal(|ui| {
                    ui.add_space(INDENT);
                    prompt_fields(ui, "prompt", &mut line.prompt, "the project's prompt");
                });
                self.takes_row(ui, index, line, seed, cut);
                let report = self.status.line(index);
                if report.state == LineState::Failed {
                    ui.label(RichText::new(format!("      {}", report.message)).color(Color32::LIGHT_RED));
                }
            }
            if let Some(index) = remove {
                project.lines.remove(index);
            }
            if project.lines.len() < MAX_LINES && ui.button("+ line").clicked() {
                project.lines.push(Line::default());
            }
        });
    }

    /// The take count, then each take: choose it, its seed, length and outline, audition it.
    fn takes_row(&self, ui: &mut Ui, index: usize, line: &mut Line, seed: u64, cut: bool) {
        let chosen = takes::chosen_take(line, seed);
        let reports = self.status.takes(index);
        ui.horizontal_wrapped(|ui| {
            ui.add_space(INDENT);
            ui.label("takes");
            ui.add(DragValue::new(&mut line.takes).range(1..=MAX_TAKES))
                .on_hover_text("variations rendered ahead, take k with seed + k - 1");
            for (take, report) in reports.iter().enumerate().take(line.takes) {
                let label = RichText::new(format!("{}", take + 1)).monospace();
                if ui.selectable_label(take == chosen, label).on_hover_text("play this take from MIDI").clicked() {
                    line.chosen_seed = Some(takes::take_seed(seed, take));
                }
                take_summary(ui, report);
                let ready = report.report.state == LineState::Ready;
                let audition = ui.add_enabled(ready, Button::new("hear").small()).on_hover_text("audition this take");
                if audition.clicked() {
                    self.triggers.request_audition(Audition { line: index, take, cut });
                }
                ui.add_space(6.0);
            }
        });
    }
}

/// A clip path and its transcript; the transcript field holds `None` while empty.
fn prompt_fields(ui: &mut Ui, label: &str, prompt: &mut Prompt, hint: &str) {
    ui.horizontal(|ui| {
        ui.label(label);
        let mut path = prompt.wav.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        if ui.add(TextEdit::singleline(&mut path).hint_text(hint).desired_width(220.0)).changed() {
            let trimmed = path.trim();
            prompt.wav = (!trimmed.is_empty()).then(|| PathBuf::from(trimmed));
        }
        ui.label("transcript");
        let mut text = prompt.text.clone().unwrap_or_default();
        let field = TextEdit::singleline(&mut text).hint_text("what the prompt clip says").desired_width(220.0);
        if ui.add(field).changed() {
            prompt.text = (!text.is_empty()).then_some(text);
        }
    });
}

fn status_label(ui: &mut Ui, report: &LineReport) {
    let (text, colour) = match report.state {
        LineState::Absent => ("—".to_owned(), Color32::GRAY),
        LineState::Queued => ("queued".to_owned(), Color32::GRAY),
        LineState::Rendering => (format!("rendering {:.0}%", report.progress * 100.0), Color32::YELLOW),
        LineState::Ready => (format!("ready {:.1} s", report.seconds), Color32::LIGHT_GREEN),
        LineState::Failed => ("error".to_owned(), Color32::LIGHT_RED),
    };
    let label = ui.label(RichText::new(text).color(colour));
    if !report.message.is_empty() {
        label.on_hover_text(&report.message);
    }
}

/// A take's seed, then its outline and length once rendered, or where it stands.
fn take_summary(ui: &mut Ui, take: &TakeReport) {
    ui.label(RichText::new(format!("seed {}", take.seed)).small());
    let report = &take.report;
    if report.state != LineState::Ready {
        return status_label(ui, report);
    }
    let (rect, response) = ui.allocate_exact_size(vec2(THUMBNAIL[0], THUMBNAIL[1]), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(32));
    let column = rect.width() / take.peaks.len().max(1) as f32;
    let (middle, half) = (rect.center().y, rect.height() / 2.0);
    let stroke = Stroke::new(column.max(1.0), Color32::LIGHT_GREEN);
    for (i, &(low, high)) in take.peaks.iter().enumerate() {
        let x = rect.left() + (i as f32 + 0.5) * column;
        let y = Rangef::new(middle - high.clamp(-1.0, 1.0) * half, middle - low.clamp(-1.0, 1.0) * half);
        painter.vline(x, y, stroke);
    }
    if !report.message.is_empty() {
        response.on_hover_text(&report.message);
    }
    ui.label(RichText::new(format!("{:.1} s", report.seconds)).small());
}

fn note_name(key: i32) -> String {
    if !(0..=127).contains(&key) {
        return "-".into();
    }
    format!("{}{}", NOTE_NAMES[(key % 12) as usize], key / 12 - 1)
}
