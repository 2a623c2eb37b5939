//! The plugin as a standalone application (JACK, ALSA, or `--backend dummy` without audio
//! hardware); nice-plug's standalone wrapper parses the command line (`--help`).

fn main() {
    nice_plug::prelude::nice_export_standalone::<voxcpm_plugin::VoxCpm>();
}
