//! Host-visible parameters and the persisted project.

use std::sync::{Arc, RwLock};

use nice_plug::prelude::*;

use crate::project::Project;

/// Where the speech goes. Variant ids keep saved projects valid if variants are reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum OutputMode {
    /// The same signal on every output channel.
    #[id = "stereo"]
    #[name = "Stereo"]
    Stereo,
    /// The first channel only, for hosts that route one channel of an instrument to a mono track.
    #[id = "mono"]
    #[name = "Mono (left)"]
    Mono,
}

/// What a trigger does while speech is playing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Retrigger {
    /// Stop what plays and start the new line.
    #[id = "cut"]
    #[name = "Cut"]
    Cut,
    /// Let lines overlap (up to the voice count; the oldest is stolen).
    #[id = "overlap"]
    #[name = "Overlap"]
    Overlap,
}

/// What a key's note-off does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum NoteOffMode {
    /// Nothing: the line plays to its end.
    #[id = "one_shot"]
    #[name = "One-shot"]
    OneShot,
    /// The line stops, with a short fade, when its key comes up.
    #[id = "gate"]
    #[name = "Gate"]
    Gate,
}

/// What a note-on's velocity does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum VelocityMode {
    /// Nothing: every line plays at full level.
    #[id = "off"]
    #[name = "Off"]
    Off,
    /// Softer notes play their line more quietly (see [`velocity_gain`](crate::envelope::velocity_gain)).
    #[id = "gain"]
    #[name = "To gain"]
    ToGain,
}

#[derive(Params)]
pub struct VoxParams {
    #[persist = "project"]
    pub project: Arc<RwLock<Project>>,

    /// The key that plays line 1; line k plays on base note + k - 1.
    #[id = "base_note"]
    pub base_note: IntParam,
    #[id = "cfg"]
    pub cfg: FloatParam,
    #[id = "steps"]
    pub steps: IntParam,
    /// Fixed noise seed, so a project renders the same takes every time.
    #[id = "seed"]
    pub seed: IntParam,
    #[id = "gain"]
    pub gain: FloatParam,
    #[id = "output"]
    pub output: EnumParam<OutputMode>,
    #[id = "retrigger"]
    pub retrigger: EnumParam<Retrigger>,
    /// Generate on the trigger and stream chunks as they come, instead of playing a render made
    /// ahead of time.
    #[id = "live"]
    pub live: BoolParam,
    #[id = "note_off"]
    pub note_off: EnumParam<NoteOffMode>,
    #[id = "velocity"]
    pub velocity: EnumParam<VelocityMode>,
    /// Spell out numbers, dates, units... before speaking (the engine's text normaliser).
    #[id = "normalize"]
    pub normalize: BoolParam,
    /// Clean the voice reference clips of noise before cloning them (RNNoise).
    #[id = "denoise"]
    pub denoise: BoolParam,
}

impl Default for VoxParams {
    fn default() -> Self {
        VoxParams {
            project: Arc::new(RwLock::new(Project::default())),
            base_note: IntParam::new("Base note", 60, IntRange::Linear { min: 0, max: 127 }),
            cfg: FloatParam::new("CFG", 2.0, FloatRange::Linear { min: 1.0, max: 5.0 }).with_step_size(0.1),
            steps: IntParam::new("Timesteps", 10, IntRange::Linear { min: 1, max: 50 }),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 0, max: 99_999 }),
            gain: FloatParam::new(
                "Gain",
                util::db_to_gain(0.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-48.0),
                    max: util::db_to_gain(12.0),
                    factor: FloatRange::gain_skew_factor(-48.0, 12.0),
                },
            )
            .with_smoother(SmoothingStyle::Logarithmic(20.0))
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            output: EnumParam::new("Output", OutputMode::Stereo),
            retrigger: EnumParam::new("Retrigger", Retrigger::Cut),
            live: BoolParam::new("Live", false),
            note_off: EnumParam::new("Note off", NoteOffMode::OneShot),
            velocity: EnumParam::new("Velocity", VelocityMode::Off),
            normalize: BoolParam::new("Normalize text", false),
            denoise: BoolParam::new("Denoise voice", false),
        }
    }
}

impl VoxParams {
    /// A reader of the project that survives a poisoned lock (a panic elsewhere must not take
    /// the plugin down with it).
    pub fn project(&self) -> std::sync::RwLockReadGuard<'_, Project> {
        self.project.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn project_mut(&self) -> std::sync::RwLockWriteGuard<'_, Project> {
        self.project.write().unwrap_or_else(|p| p.into_inner())
    }
}
