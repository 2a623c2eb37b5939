//! Note events as the player's actions, by the parameters that decide how the keys play (the
//! base note, Note off, Velocity), read once per block.

use nice_plug::midi::{Key, NoteEvent};

use crate::envelope::velocity_gain;
use crate::params::{NoteOffMode, VelocityMode, VoxParams};

/// What a note event asks of the player.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyAction {
    /// Play `line`, held by `key`, at `gain`.
    Press { line: usize, key: u8, gain: f32 },
    /// Fade out the voices `key` holds (`None`: every key, a host's wildcard note-off).
    Release { key: Option<u8> },
}

/// How the keys play in one block.
#[derive(Debug, Clone, Copy)]
pub struct Keyboard {
    /// The key that plays line 1.
    pub base_note: u8,
    pub note_off: NoteOffMode,
    pub velocity: VelocityMode,
}

impl Keyboard {
    pub fn new(params: &VoxParams) -> Keyboard {
        Keyboard {
            base_note: u8::try_from(params.base_note.value()).unwrap_or(0),
            note_off: params.note_off.value(),
            velocity: params.velocity.value(),
        }
    }

    /// The line a MIDI key plays, if any.
    pub fn line_for_key(&self, key: u8) -> Option<usize> {
        key.checked_sub(self.base_note).map(usize::from)
    }

    /// The event's sample in the block and what it asks; `None` for events that ask nothing
    /// (a key below the base note, a note-off in one-shot mode, anything but notes).
    pub fn action<S>(&self, event: &NoteEvent<S>) -> Option<(u32, KeyAction)> {
        match *event {
            NoteEvent::NoteOn { timing, key: Key::Number(key), velocity, .. } => {
                let gain = match self.velocity {
                    VelocityMode::Off => 1.0,
                    VelocityMode::ToGain => velocity_gain(velocity),
                };
                Some((timing, KeyAction::Press { line: self.line_for_key(key)?, key, gain }))
            }
            NoteEvent::NoteOff { timing, key, .. } if self.note_off == NoteOffMode::Gate => {
                Some((timing, KeyAction::Release { key: key.number() }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use nice_plug::midi::{Channel, VoiceID};

    use super::*;

    fn note_on(timing: u32, key: Key, velocity: f32) -> NoteEvent<()> {
        NoteEvent::NoteOn { timing, voice_id: VoiceID::Wildcard, channel: Channel::Number(0), key, velocity }
    }

    fn note_off(timing: u32, key: Key) -> NoteEvent<()> {
        NoteEvent::NoteOff { timing, voice_id: VoiceID::Wildcard, channel: Channel::Number(0), key, velocity: 0.0 }
    }

    fn keyboard(note_off: NoteOffMode, velocity: VelocityMode) -> Keyboard {
        Keyboard { base_note: 60, note_off, velocity }
    }

    #[test]
    fn a_key_from_the_base_note_up_plays_its_line_at_full_level_unless_velocity_sets_the_gain() {
        let off = keyboard(NoteOffMode::OneShot, VelocityMode::Off);
        assert_eq!(
            off.action(&note_on(7, Key::Number(62), 0.5)),
            Some((7, KeyAction::Press { line: 2, key: 62, gain: 1.0 }))
        );
        assert_eq!(off.action(&note_on(7, Key::Number(59), 1.0)), None, "below the base note");
        assert_eq!(off.action(&note_on(7, Key::Wildcard, 1.0)), None, "no key, no line");
        let to_gain = keyboard(NoteOffMode::OneShot, VelocityMode::ToGain);
        assert_eq!(
            to_gain.action(&note_on(0, Key::Number(60), 0.5)),
            Some((0, KeyAction::Press { line: 0, key: 60, gain: 0.25 }))
        );
    }

    #[test]
    fn a_note_off_releases_its_key_in_gate_mode_and_asks_nothing_in_one_shot_mode() {
        let gate = keyboard(NoteOffMode::Gate, VelocityMode::Off);
        assert_eq!(gate.action(&note_off(33, Key::Number(61))), Some((33, KeyAction::Release { key: Some(61) })));
        assert_eq!(gate.action(&note_off(0, Key::Wildcard)), Some((0, KeyAction::Release { key: None })));
        let one_shot = keyboard(NoteOffMode::OneShot, VelocityMode::ToGain);
        assert_eq!(one_shot.action(&note_off(33, Key::Number(61))), None);
    }

    #[test]
    fn the_keyboard_reads_the_parameters() {
        let keyboard = Keyboard::new(&VoxParams::default());
        assert_eq!(keyboard.base_note, 60);
        assert_eq!(keyboard.note_off, NoteOffMode::OneShot, "one-shot by default, as before Note off existed");
        assert_eq!(keyboard.velocity, VelocityMode::Off, "full level by default, as before Velocity existed");
    }
}
