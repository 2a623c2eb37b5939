//! A small CLAP host on `clack-host`: loads the bundled .clap, plays note-ons into blocks of
//! chosen sizes, switches realtime/offline rendering, and saves and loads state. Shared by the
//! host tests and the `process()` benchmark.

use std::ffi::CString;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::NoteOnEvent;
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

/// The bundled plugin's entry, loaded into this process (with the test environment set first).
pub fn entry() -> PluginEntry {
    isolate_plugin_environment();
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

pub fn play(instance: &mut Instance, run: &Run) -> Played {
    let max_block = *run.blocks.iter().max().expect("block sizes");
    let config = PluginAudioConfiguration {
        sample_rate: f64::from(run.rate),
        min_frames_count: 1,
        max_frames_count: max_block as u32,
    };
    let processor = instance.activate(|_, _| (), config).expect("activate");
    let mut processor = processor.start_processing().expect("start processing");
    let mut played =
        Played { left: Vec::with_capacity(run.frames), right: Vec::with_capacity(run.frames), blocks: Vec::new() };
    let mut buffers = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
    let mut ports = AudioPorts::with_capacity(2, 1);
    let mut events_out = EventBuffer::new();
    let mut done = 0;
    while done < run.frames {
        let n = run.blocks[played.blocks.len() % run.blocks.len()].min(run.frames - done);
        let events: Vec<NoteOnEvent> = run
            .notes
            .iter()
            .filter(|(at, _)| (done..done + n).contains(at))
            .map(|&(at, key)| NoteOnEvent::new((at - done) as u32, Pckn::new(0u16, 0u16, key as u16, 0u32), 1.0))
            .collect();
        let input_events = InputEvents::from_buffer(&events);
        let mut output_events = OutputEvents::from_buffer(&mut events_out);
        let mut output = ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(buffers.iter_mut().map(|b| &mut b[..n])),
        }]);
        let started = Instant::now();
        processor
            .process(&InputAudioBuffers::empty(), &mut output, &input_events, &mut output_events, None, None)
            .expect("process");
        played.blocks.push((n, started.elapsed()));
        played.left.extend_from_slice(&buffers[0][..n]);
        played.right.extend_from_slice(&buffers[1][..n]);
        done += n;
        if !run.pace.is_zero() {
            std::thread::sleep(run.pace);
        }
    }
    instance.deactivate(processor.stop_processing());
    played
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
