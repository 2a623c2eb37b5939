//! Two instances in one host process share one model, and it is freed when the last of them
//! closes. Its own test binary: the count of model loads in the plugin's log is per process.

use std::time::Duration;

use voxcpm_host_tests::clap::{Run, entry, first_sound, instance, play, set_offline};
use voxcpm_host_tests::{plugin_log, wait_for_log};

const MODEL_LOADED: &str = "model ready";

fn loads() -> usize {
    plugin_log().matches(MODEL_LOADED).count()
}

#[test]
fn two_instances_share_one_model_and_it_is_freed_after_the_last_closes() {
    let entry = entry();
    let run = Run { rate: 48_000, frames: 60_000, blocks: &[480], notes: &[(0, 60)], pace: Duration::ZERO };
    let mut first = instance(&entry);
    let mut second = instance(&entry);
    for plugin in [&mut first, &mut second] {
        set_offline(plugin, true);
        assert!(first_sound(&play(plugin, &run).left).is_some(), "an instance played no speech");
    }
    assert!(wait_for_log("[1 model(s) in this process]", Duration::from_secs(10)), "{}", plugin_log());
    assert_eq!(loads(), 1, "two instances loaded the model twice:\n{}", plugin_log());

    drop(first);
    drop(second);
    let mut third = instance(&entry);
    set_offline(&mut third, true);
    assert!(first_sound(&play(&mut third, &run).left).is_some());
    assert_eq!(loads(), 2, "the model was not freed with its last instance (or not reloaded):\n{}", plugin_log());
}
