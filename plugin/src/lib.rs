//! VoxCPM as an instrument plugin (CLAP, VST3, standalone): voice lines played from MIDI keys
//! or the editor's buttons.
//!
//! Threads: the host's audio thread runs [`Player`] (no allocation, lock or wait, except that
//! an offline bounce waits for a render); each instance's [`Worker`] renders lines ahead on the
//! process-wide shared engine and hands them over through lock-free rings ([`handoff`]); the
//! editor reads the [`Status`] the worker writes. See ARCHITECTURE.md.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use nice_plug::prelude::*;

mod editor;
pub mod envelope;
pub mod handoff;
pub mod keys;
mod live_schedule;
pub mod models;
pub mod params;
pub mod player;
pub mod project;
pub mod render_cache;
pub mod resamplers;
pub mod shared_engine;
mod speaking_rate;
pub mod status;
pub mod takes;
#[cfg(debug_assertions)]
mod test_hooks;
pub mod thumbnail;
pub mod voice;
mod worker;

use keys::{KeyAction, Keyboard};
use params::{OutputMode, Retrigger, VoxParams};
use player::{EditorTriggers, Player, TriggerMode};
use render_cache::RenderCache;
use status::Status;
use worker::{Command, Worker};

pub struct VoxCpm {
    params: Arc<VoxParams>,
    status: Arc<Status>,
    triggers: Arc<EditorTriggers>,
    commands: Sender<Command>,
    /// Handed to the worker when it starts (at the first activation, so that hosts that only
    /// scan plugins never load a model).
    inbox: Option<Receiver<Command>>,
    player: Option<Player>,
    worker: Option<Worker>,
    offline: bool,
    /// What the host tests drive from outside (the editor's play button, faults on purpose).
    #[cfg(debug_assertions)]
    test_hooks: Arc<test_hooks::TestHooks>,
}

impl Default for VoxCpm {
    fn default() -> Self {
        let (commands, inbox) = channel();
        let triggers = Arc::new(EditorTriggers::default());
        VoxCpm {
            params: Arc::new(VoxParams::default()),
            status: Arc::new(Status::default()),
            #[cfg(debug_assertions)]
            test_hooks: test_hooks::TestHooks::register(&triggers),
            triggers,
            commands,
            inbox: Some(inbox),
            player: None,
            worker: None,
            offline: false,
        }
    }
}

impl VoxCpm {
    /// Starts the worker and the rings on first activation.
    fn start_worker(&mut self) -> Result<(), String> {
        if self.worker.is_some() {
            return Ok(());
        }
        let inbox = self.inbox.take().ok_or("the worker's command queue is gone")?;
        let (audio_ends, worker_ends) = handoff::channels();
        let cache = RenderCache::new(render_cache::default_dir());
        let worker = Worker::spawn(Arc::clone(&self.params), Arc::clone(&self.status), worker_ends, inbox, cache)
            .map_err(|e| format!("cannot start the worker thread: {e}"))?;
        self.player = Some(Player::new(audio_ends, Arc::clone(&self.status), Arc::clone(&self.triggers)));
        self.worker = Some(worker);
        Ok(())
    }
}

impl Plugin for VoxCpm {
    const NAME: &'static str = "VoxCPM";
    const VENDOR: &'static str = "VoxCPM native";
    const URL: &'static str = "https://github.com/OpenBMB/VoxCPM";
    const EMAIL: &'static str = "voxcpm-native@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = nice_plug_egui::EguiEditor<editor::EditorApp>;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(
            Arc::clone(&self.params),
            Arc::clone(&self.status),
            Arc::clone(&self.triggers),
            self.commands.clone(),
        )
    }

    fn activate(
        &mut self,
        _layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.offline = buffer_config.process_mode == ProcessMode::Offline;
        self.status.offline.store(self.offline, std::sync::atomic::Ordering::Relaxed);
        // The host may have loaded a project since the worker last looked.
        self.status.request_scan();
        let prepared = self.start_worker().and_then(|()| {
            let player = self.player.as_mut().ok_or("no player")?;
            player.prepare(buffer_config.sample_rate.round() as u32)
        });
        match prepared {
            Ok(()) => true,
            Err(e) => {
                // Refusing activation would leave the host with a dead plugin; play silence and say why.
                self.status.add_note(e);
                self.player = None;
                true
            }
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        #[cfg(debug_assertions)]
        self.test_hooks.commit_fault();
        let frames = buffer.samples();
        let channels = buffer.as_slice();
        for channel in channels.iter_mut() {
            channel.fill(0.0);
        }
        let Some(player) = self.player.as_mut() else { return ProcessStatus::Normal };
        let Some((mix, others)) = channels.split_first_mut() else { return ProcessStatus::Normal };
        let mode = TriggerMode { cut: self.params.retrigger.value() == Retrigger::Cut, live: self.params.live.value() };
        let keyboard = Keyboard::new(&self.params);
        let offline = self.offline;

        player.begin_block();
        let requested: u128 = player.editor_requests().fold(0, |bits, line| bits | (1 << line));
        for line in (0..128).filter(|line| requested & (1 << line) != 0) {
            player.trigger(line, mode, offline);
        }
        // Each note-on and note-off takes effect at its sample: the block is rendered up to it.
        let mut cursor = 0;
        while let Some(event) = context.next_event() {
            let Some((timing, action)) = keyboard.action(&event) else { continue };
            let at = (timing as usize).clamp(cursor, frames);
            player.render(&mut mix[cursor..at], offline);
            cursor = at;
            match action {
                KeyAction::Press { line, key, gain } => player.trigger_key(line, mode, offline, key, gain),
                KeyAction::Release { key } => player.release(key),
            }
        }
        player.render(&mut mix[cursor..frames], offline);

        apply_gain(mix, || self.params.gain.smoothed.next());
        if self.params.output.value() == OutputMode::Stereo {
            for channel in others.iter_mut() {
                channel.copy_from_slice(mix);
            }
        }
        ProcessStatus::KeepAlive
    }

    fn deactivate(&mut self) {
        self.offline = false;
    }
}

/// Scales the mix by the gain; a result that is not finite (a mix that overflowed, a gain a
/// host set to NaN) becomes silence, so the host's mix never receives one.
fn apply_gain(mix: &mut [f32], mut gain: impl FnMut() -> f32) {
    for sample in mix {
        let scaled = *sample * gain();
        *sample = if scaled.is_finite() { scaled } else { 0.0 };
    }
}

impl ClapPlugin for VoxCpm {
    const CLAP_ID: &'static str = "org.voxcpm-native.voxcpm";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("VoxCPM text-to-speech (VoxCPM2, VoxCPM1.5, VoxCPM-0.5B): voice lines played from MIDI keys");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::Instrument, ClapFeature::Synthesizer, ClapFeature::Stereo, ClapFeature::Mono];
}

impl Vst3Plugin for VoxCpm {
    const VST3_CLASS_ID: [u8; 16] = *b"VoxCPMnativeTTS1";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}

nice_export_clap!(VoxCpm);
nice_export_vst3!(VoxCpm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gain_stage_never_lets_a_non_finite_sample_out() {
        let mut mix = [0.5, f32::MAX, -f32::MAX, 0.25, f32::NAN, f32::INFINITY];
        apply_gain(&mut mix, || 2.0);
        assert_eq!(mix, [1.0, 0.0, 0.0, 0.5, 0.0, 0.0]);
        let mut mix = [0.5, -0.5];
        apply_gain(&mut mix, || f32::NAN);
        assert_eq!(mix, [0.0, 0.0]);
    }
}
