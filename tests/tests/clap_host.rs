//! The bundled .clap in a real CLAP host (clack-host): notes in, speech out at 44.1 kHz in odd
//! block sizes, sample-accurate starts, offline waiting, real-time never waiting, state.
//!
//! The plugin is the debug build, whose `assert_process_allocs` aborts this process if
//! `process()` ever allocates: every block processed here is also an allocation check.

use std::ffi::CString;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::NoteOnEvent;
use clack_host::prelude::*;
use voxcpm_host_tests::{bundled_plugin, engine_render, isolate_plugin_environment};

const RATE: u32 = 44_100;
const FIRST_LINE: &str = "Hello from VoxCPM.";
const SECOND_LINE: &str = "This line plays on the next key.";
/// Block sizes cycled through: 1, primes and odd sizes up to the maximum.
const BLOCKS: [usize; 14] = [1, 3, 17, 64, 7, 33, 2, 5, 11, 127, 1021, 9, 13, 4];
const MAX_BLOCK: usize = 1024;

struct Host;

impl HostHandlers for Host {
    type Shared<'a> = HostShared<'a>;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

#[derive(Default)]
struct HostShared<'a> {
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

fn entry() -> PluginEntry {
    isolate_plugin_environment();
    let path = bundled_plugin().join("VoxCPM.clap");
    // SAFETY: our own plugin, built for this test run.
    unsafe { PluginEntry::load(&path) }.unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

fn instance(entry: &PluginEntry) -> PluginInstance<Host> {
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let descriptor = factory.plugin_descriptors().next().expect("one plugin");
    assert_eq!(descriptor.name().unwrap().to_str().unwrap(), "VoxCPM");
    let id = CString::from(descriptor.id().unwrap());
    let host = HostInfo::new("voxcpm host tests", "voxcpm", "https://example.org", "1.0").unwrap();
    PluginInstance::<Host>::new(|_| HostShared::default(), |_| (), entry, &id, &host).expect("instance")
}

fn set_offline(instance: &mut PluginInstance<Host>) {
    let render = instance.access_shared_handler(|h| *h.render.get().unwrap()).expect("render extension");
    render.set(&instance.plugin_handle(), RenderMode::Offline).expect("offline mode");
}

/// Runs blocks (cycling [`BLOCKS`]) until `frames` frames are out; `notes` are (frame, key).
/// Returns both channels and the number of blocks processed.
fn play(instance: &mut PluginInstance<Host>, frames: usize, notes: &[(usize, u8)], pace: Duration) -> [Vec<f32>; 2] {
    let config = PluginAudioConfiguration {
        sample_rate: f64::from(RATE),
        min_frames_count: 1,
        max_frames_count: MAX_BLOCK as u32,
    };
    let processor = instance.activate(|_, _| (), config).expect("activate");
    let mut processor = processor.start_processing().expect("start processing");
    let mut outputs = [Vec::with_capacity(frames), Vec::with_capacity(frames)];
    let mut buffers = [vec![0.0f32; MAX_BLOCK], vec![0.0f32; MAX_BLOCK]];
    let mut ports = AudioPorts::with_capacity(2, 1);
    let mut events_out = EventBuffer::new();
    let (mut done, mut block) = (0, 0);
    while done < frames {
        let n = BLOCKS[block % BLOCKS.len()].min(frames - done);
        let events: Vec<NoteOnEvent> = notes
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
        processor
            .process(&InputAudioBuffers::empty(), &mut output, &input_events, &mut output_events, None, None)
            .expect("process");
        for (out, buffer) in outputs.iter_mut().zip(&buffers) {
            out.extend_from_slice(&buffer[..n]);
        }
        done += n;
        block += 1;
        std::thread::sleep(pace);
    }
    instance.deactivate(processor.stop_processing());
    outputs
}

fn first_sound(samples: &[f32]) -> Option<usize> {
    samples.iter().position(|s| *s != 0.0)
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_note_plays_the_engines_render_at_the_host_rate_from_its_sample_offset() {
    let expected = engine_render(FIRST_LINE, RATE);
    assert!(expected.len() > 10_000, "the render is too short to test with: {}", expected.len());
    let entry = entry();
    let mut plugin = instance(&entry);
    set_offline(&mut plugin);
    // The note lands inside a block.
    let start = 1234;
    let total = start + expected.len() + 100_000;
    let [left, right] = play(&mut plugin, total, &[(start, 60)], Duration::ZERO);

    let blocks = total / (BLOCKS.iter().sum::<usize>() / BLOCKS.len());
    assert!(blocks > 1000, "only about {blocks} blocks");
    assert!(left[..start].iter().all(|s| *s == 0.0), "sound before the note");
    assert_eq!(first_sound(&left), first_sound(&expected).map(|i| i + start), "the speech starts at the note's sample");
    let played = &left[start..start + expected.len()];
    let error = max_difference(played, &expected);
    assert!(error < 1e-4, "the played line differs from the engine's render by {error}");
    assert!(left[start + expected.len()..].iter().all(|s| *s == 0.0), "sound after the line's end");
    assert_eq!(left, right, "stereo output carries the same speech on both channels");
}

#[test]
fn in_real_time_a_trigger_never_waits_and_plays_once_the_render_is_ready() {
    let expected = engine_render(SECOND_LINE, RATE);
    let lead = first_sound(&expected).expect("the render has sound");
    let entry = entry();
    let mut plugin = instance(&entry);
    // Re-trigger line 2 every 8192 frames while the host runs in real time (paced blocks).
    const EVERY: usize = 8192;
    let notes: Vec<(usize, u8)> = (0..60).map(|i| (i * EVERY, 61)).collect();
    let started = Instant::now();
    let [left, _] = play(&mut plugin, 60 * EVERY, &notes, Duration::from_millis(2));
    let first = first_sound(&left).expect("the line plays once rendered") - lead;
    assert!(first > 0, "the very first trigger cannot have had a render");
    assert_eq!(first % EVERY, 0, "speech starts exactly on a trigger, never late: {first}");
    let error = max_difference(&left[first..first + EVERY], &expected[..EVERY]);
    assert!(error < 1e-4, "the played line differs from the engine's render by {error}");
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// nice-plug's CLAP state: a little-endian u64 length, then the JSON.
fn state_json(bytes: &[u8]) -> String {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(length, bytes.len() - 8);
    String::from_utf8(bytes[8..].to_vec()).expect("JSON state")
}

fn state_bytes(json: &str) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes
}

fn save(instance: &mut PluginInstance<Host>) -> String {
    let state = instance.access_shared_handler(|h| *h.state.get().unwrap()).expect("state extension");
    let mut saved = Vec::new();
    state.save(&instance.plugin_handle(), &mut saved).expect("save");
    state_json(&saved)
}

fn load(instance: &mut PluginInstance<Host>, bytes: &[u8]) -> bool {
    let state = instance.access_shared_handler(|h| *h.state.get().unwrap()).expect("state extension");
    state.load(&instance.plugin_handle(), &mut Cursor::new(bytes)).is_ok()
}

#[test]
fn state_round_trips_and_a_damaged_state_loads_what_it_can_without_harm() {
    let entry = entry();
    let mut first = instance(&entry);
    let text = save(&mut first);
    assert!(text.contains(FIRST_LINE), "{text}");

    // A project from elsewhere: its lines and parameters load into a second instance.
    let edited =
        text.replace(FIRST_LINE, "A line from another project.").replace(r#""seed":{"i32":1}"#, r#""seed":{"i32":7}"#);
    assert_ne!(edited, text);
    let mut second = instance(&entry);
    assert!(load(&mut second, &state_bytes(&edited)));
    assert_eq!(save(&mut second), edited, "state round trip");

    // Garbage is refused, and the plugin keeps its state.
    assert!(!load(&mut second, b"\x00garbage"));
    assert!(!load(&mut second, &state_bytes("{not json")));
    assert_eq!(save(&mut second), edited);

    // A project whose second line is damaged keeps the first and the rest of the state.
    let damaged = edited.replace(r#"{\"text\":\"This line plays on the next key.\",\"voice\":null}"#, "42");
    assert_ne!(damaged, edited);
    assert!(load(&mut second, &state_bytes(&damaged)));
    let recovered = save(&mut second);
    assert!(recovered.contains("A line from another project."), "{recovered}");
    assert!(recovered.contains(r#""seed":{"i32":7}"#), "{recovered}");

    // And it still plays (silence: no note).
    set_offline(&mut second);
    let [left, _] = play(&mut second, 20_000, &[], Duration::ZERO);
    assert!(left.iter().all(|s| *s == 0.0));
}
