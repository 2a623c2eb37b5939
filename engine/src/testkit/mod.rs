//! Test and benchmark support, not the speech API: parity cases recorded from the official
//! implementation and the comparisons every test uses (`parity`), and random-weight
//! checkpoints in the official layout (`synthetic`). `voxcpm parity`, `voxcpm make-checkpoint`,
//! the fuzz seeds and the tests of every crate use them, so they ship with the library.

pub mod parity;
pub mod synthetic;
