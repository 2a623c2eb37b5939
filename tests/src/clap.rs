//! A small CLAP host on `clack-host`: loads the bundled .clap, plays notes into blocks of
//! chosen sizes, switches realtime/offline rendering, and saves and loads state. Shared by the
//! host tests and the `process()` benchmark.

use std::ffi::CString;
use std::io::Cursor;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent};
use clack_host::prelude::*;
use serde_json::Value;

use crate::{bundled_plugin, isolate_plugin_environment};

pub struct Host;

impl HostHandlers for Host {
    type Shared<'a> = HostShared<'a>;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

#[derive(Default)]
pub struct HostShared<'a> {
    render: OnceLock<Option<PluginRender>>,
    state: OnceLock<Option<PluginState>>,
    _lifetime: PhantomData<&'a ()>,
}

impl<'a> SharedHandler<'a> for HostShared<'a> {
    fn initializing(&self, instance: InitializingPluginHandle<'a>) {
        let _ = self.render.set(instance.get_extension());
        let _ = self.state.set(instance.get_extension());
    }
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

pub type Instance = PluginInstance<Host>;

/// The files the debug plugin's live-play test hooks read and write: `rtf` (JSON, line text
/// to the RTF its stream is slowed to) and `trace` (a JSON line per live stream).
pub struct LiveHooks {
    pub rtf: PathBuf,
    pub trace: PathBuf,
}

/// Points the plugin's live-play test hooks at files in the scratch folder (set once, before
/// the plugin is first loaded).
pub fn live_hooks() -> &'static LiveHooks {
    static HOOKS: OnceLock<LiveHooks> = OnceLock::new();
    HOOKS.get_or_init(|| {
        let scratch = isolate_plugin_environment();
        let hooks = LiveHooks { rtf: scratch.join("live-rtf.json"), trace: scratch.join("live-trace.jsonl") };
        // SAFETY: set once, before the plugin's threads exist (every load goes through `entry`).
        unsafe {
            std::env::set_var("VOXCPM_PLUGIN_TEST_RTF", &hooks.rtf);
            std::env::set_var("VOXCPM_PLUGIN_TEST_LIVE_TRACE", &hooks.trace);
        }
        hooks
    })
}

/// The bundled plugin's entry, loaded into this process (with the test environment set first).
pub fn entry() -> PluginEntry {
    isolate_plugin_environment();
    live_hooks();
    let path = bundled_plugin().join("VoxCPM.clap");
    // SAFETY: our own plugin, built for this run.
    unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

pub fn instance(entry: &PluginEntry) -> Instance {
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let descriptor = factory.plugin_descriptors().next().expect("one plugin");
    assert_eq!(descriptor.name().unwrap().to_str().unwrap(), "VoxCPM");
    let id = CString::from(descriptor.id().unwrap());
    let host = HostInfo::new("voxcpm host tests", "voxcpm", "https://example.org", "1.0").unwrap();
    PluginInstance::<Host>::new(|_| HostShared::default(), |_| (), entry, &id, &host).expect("instance")
}

/// Offline: the host does not play in real time, so the plugin may wait for renders.
pub fn set_offline(instance: &mut Instance, offline: bool) {
    let render = instance.access_shared_handler(|h| *h.render.get().unwrap()).expect("render extension");
    let mode = if offline { RenderMode::Offline } else { RenderMode::Realtime };
    render.set(&instance.plugin_handle(), mode).expect("render mode");
}

/// One activation of the plugin: `frames` frames in blocks cycling through `blocks`, note-ons
/// as (frame, key), and `pace` slept after each block (zero: as fast as possible).
pub struct Run<'a> {
    pub rate: u32,
    pub frames: usize,
    pub blocks: &'a [usize],
    pub notes: &'a [(usize, u8)],
    pub pace: Duration,
}

/// What a [`Run`] produced: both channels, and each block's size and `process()` time.
pub struct Played {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    pub blocks: Vec<(usize, Duration)>,
}

/// What a host does on its audio thread besides calling `process()`: nothing for [`play`]; the
/// real-time checks watch the thread's system calls and press the editor's play button.
pub trait AudioThread: Send {
    /// On the audio thread, before its first block.
    fn started(&mut self) {}
    /// Around each `process()` call; `frame` is the block's first frame.
    fn process(&mut self, _frame: usize, process: &mut dyn FnMut()) {
        process();
    }
}

/// The plain host: `process()` alone.
impl AudioThread for () {}

pub fn play(instance: &mut Instance, run: &Run) -> Played {
    play_with(instance, run, &mut ())
}

/// A key going down or coming up at a frame of a [`Run`], with its velocity (0..1).
#[derive(Debug, Clone, Copy)]
pub enum KeyEvent {
    On { at: usize, key: u8, velocity: f64 },
    Off { at: usize, key: u8, velocity: f64 },
}

impl KeyEvent {
    pub fn at(&self) -> usize {
        match *self {
            KeyEvent::On { at, .. } | KeyEvent::Off { at, .. } => at,
        }
    }
}

/// As [`play`], with `keys` besides the run's note-ons (at full velocity).
pub fn play_keys(instance: &mut Instance, run: &Run, keys: &[KeyEvent]) -> Played {
    play_events(instance, run, keys, &mut ())
}

/// As [`play`], with `audio` on the audio thread. As in a real host, `process()` runs on a
/// thread of its own, never on the one that activated the plugin.
pub fn play_with(instance: &mut Instance, run: &Run, audio: &mut dyn AudioThread) -> Played {
    play_events(instance, run, &[], audio)
}

/// As [`play`], with both `keys` and `audio`.
pub fn play_events(instance: &mut Instance, run: &Run, keys: &[KeyEvent], audio: &mut dyn AudioThread) -> Played {
    let max_block = *run.blocks.iter().max().expect("block sizes");
    let config = PluginAudioConfiguration {
        sample_rate: f64::from(run.rate),
        min_frames_count: 1,
        max_frames_count: max_block as u32,
    };
    let processor = instance.activate(|_, _| (), config).expect("activate");
    let (processor, played) = std::thread::scope(|scope| {
        let audio_thread = scope.spawn(|| process_blocks(processor, run, keys, max_block, audio));
        audio_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    instance.deactivate(processor);
    played
}

/// The audio thread of [`play_with`]: starts processing, plays the run, stops.
fn process_blocks(
    processor: StoppedPluginAudioProcessor<Host>,
    run: &Run,
    keys: &[KeyEvent],
    max_block: usize,
    audio: &mut dyn AudioThread,
) -> (StoppedPluginAudioProcessor<Host>, Played) {
    audio.started();
    let mut processor = processor.start_processing().expect("start processing");
    let mut played =
        Played { left: Vec::with_capacity(run.frames), right: Vec::with_capacity(run.frames), blocks: Vec::new() };
    let mut buffers = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
    let mut ports = AudioPorts::with_capacity(2, 1);
    let mut events_out = EventBuffer::new();
    let mut done = 0;
    while done < run.frames {
        let n = run.blocks[played.blocks.len() % run.blocks.len()].min(run.frames - done);
        let events = block_events(run.notes, keys, done..done + n);
        let input_events = events.as_input();
        let mut output_events = OutputEvents::from_buffer(&mut events_out);
        let mut output = ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(buffers.iter_mut().map(|b| &mut b[..n])),
        }]);
        let started = Instant::now();
        audio.process(done, &mut || {
            processor
                .process(&InputAudioBuffers::empty(), &mut output, &input_events, &mut output_events, None, None)
                .expect("process");
        });
        played.blocks.push((n, started.elapsed()));
        played.left.extend_from_slice(&buffers[0][..n]);
        played.right.extend_from_slice(&buffers[1][..n]);
        done += n;
        if !run.pace.is_zero() {
            std::thread::sleep(run.pace);
        }
    }
    (processor.stop_processing(), played)
}

/// The note events of the frames `block`, timed from its start, in time order.
fn block_events(notes: &[(usize, u8)], keys: &[KeyEvent], block: std::ops::Range<usize>) -> EventBuffer {
    let time = |at: usize| (at - block.start) as u32;
    let pckn = |key: u8| Pckn::new(0u16, 0u16, u16::from(key), 0u32);
    let mut events = EventBuffer::new();
    for &(at, key) in notes.iter().filter(|(at, _)| block.contains(at)) {
        events.push(&NoteOnEvent::new(time(at), pckn(key), 1.0));
    }
    for event in keys.iter().filter(|event| block.contains(&event.at())) {
        match *event {
            KeyEvent::On { at, key, velocity } => events.push(&NoteOnEvent::new(time(at), pckn(key), velocity)),
            KeyEvent::Off { at, key, velocity } => events.push(&NoteOffEvent::new(time(at), pckn(key), velocity)),
        }
    }
    events.sort();
    events
}

/// nice-plug's CLAP state is a little-endian u64 length, then the JSON.
pub fn save(instance: &mut Instance) -> String {
    let state = instance.access_shared_handler(|h| *h.state.get().unwrap()).expect("state extension");
    let mut saved = Vec::new();
    state.save(&instance.plugin_handle(), &mut saved).expect("save");
    let length = u64::from_le_bytes(saved[..8].try_into().unwrap()) as usize;
    assert_eq!(length, saved.len() - 8);
    String::from_utf8(saved[8..].to_vec()).expect("JSON state")
}

/// Loads raw state bytes; false if the plugin refused them.
pub fn load(instance: &mut Instance, bytes: &[u8]) -> bool {
    let state = instance.access_shared_handler(|h| *h.state.get().unwrap()).expect("state extension");
    state.load(&instance.plugin_handle(), &mut Cursor::new(bytes)).is_ok()
}

/// State bytes for a JSON text, framed as nice-plug frames them.
pub fn state_bytes(json: &str) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes
}

/// Loads `instance`'s own state, edited (`{"version", "params", "fields"}`).
pub fn edit_state(instance: &mut Instance, edit: impl FnOnce(&mut Value)) {
    let mut state: Value = serde_json::from_str(&save(instance)).expect("state JSON");
    edit(&mut state);
    assert!(load(instance, &state_bytes(&state.to_string())), "the edited state loads");
}

/// Loads `instance`'s own state with its project (stored as a JSON string field) edited.
pub fn edit_project(instance: &mut Instance, edit: impl FnOnce(&mut Value)) {
    edit_state(instance, |state| {
        let field = &mut state["fields"]["project"];
        let mut project: Value = serde_json::from_str(field.as_str().expect("project field")).expect("project JSON");
        edit(&mut project);
        *field = Value::String(project.to_string());
    });
}

pub fn first_sound(samples: &[f32]) -> Option<usize> {
    samples.iter().position(|s| *s != 0.0)
}
