//! `--jobs N`: how many lines are in flight at once. The runtime batches requests that wait
//! together (continuous batching: one pass over the weights per step serves every line in
//! the batch), and a line's audio in a batch is bit-identical to its audio alone, so more
//! jobs change only how fast a script renders, never what it renders.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::channel;

use voxcpm_engine::runtime::DEFAULT_MAX_BATCH;

/// The most lines in flight: each holds its own KV caches and decoder state, and beyond a few
/// dozen rows a step's products are bound by arithmetic, not by reading the weights, so more
/// would only cost memory.
pub const MAX_JOBS: usize = 64;

/// How many lines render at once: 1 to [`MAX_JOBS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs(usize);

impl Jobs {
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for Jobs {
    /// The runtime's own batch size: what it serves together unless told otherwise.
    fn default() -> Jobs {
        Jobs(DEFAULT_MAX_BATCH)
    }
}

impl std::fmt::Display for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Jobs {
    type Err = String;

    fn from_str(text: &str) -> Result<Jobs, String> {
        let jobs: usize = text.trim().parse().map_err(|_| format!("{text:?} is not a whole number of lines"))?;
        match jobs {
            0 => Err("0 lines in flight would render nothing: give at least 1 (1 renders one line at a time)".into()),
            1..=MAX_JOBS => Ok(Jobs(jobs)),
            _ => Err(format!(
                "{jobs} is more than {MAX_JOBS} lines in flight: each line holds its own model state, and a batch \
                 that large is no faster"
            )),
        }
    }
}

/// Runs `work` on every item, up to `jobs` at once on scoped threads, and hands each result to
/// `done` on the calling thread as it finishes (in finishing order, with the item's index).
/// An error from `done` starts no further item; the ones in flight finish first.
pub fn for_each_concurrently<T: Sync, R: Send>(
    items: &[T],
    jobs: Jobs,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(usize, R) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let halted = AtomicBool::new(false);
    let (results, finished) = channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs.get().min(items.len()) {
            let results = results.clone();
            let (next, halted, work) = (&next, &halted, &work);
            scope.spawn(move || {
                while !halted.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    if results.send((index, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        for (index, result) in finished {
            if let Err(error) = done(index, result) {
                halted.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn jobs_are_whole_numbers_from_1_to_the_limit() {
        assert_eq!("1".parse(), Ok(Jobs(1)));
        assert_eq!("64".parse(), Ok(Jobs(64)));
        assert!("0".parse::<Jobs>().unwrap_err().contains("at least 1"));
        assert!("65".parse::<Jobs>().unwrap_err().contains("more than 64"));
        assert!("-1".parse::<Jobs>().unwrap_err().contains("not a whole number"));
        assert!("many".parse::<Jobs>().unwrap_err().contains("not a whole number"));
    }

    #[test]
    fn every_item_is_done_once_with_its_own_index() {
        let items: Vec<usize> = (0..20).map(|i| i * 10).collect();
        let mut seen = Vec::new();
        for_each_concurrently(
            &items,
            Jobs(4),
            |item| item + 1,
            |index, result| {
                seen.push((index, result));
                Ok(())
            },
        )
        .unwrap();
        seen.sort();
        assert_eq!(seen, (0..20).map(|i| (i, i * 10 + 1)).collect::<Vec<_>>());
    }

    #[test]
    fn jobs_items_run_at_once_and_no_more() {
        let items = vec![(); 12];
        // (in flight now, the most in flight, whether a wait for company gave up)
        let running = Mutex::new((0usize, 0usize, false));
        let company = Condvar::new();
        let work = |_: &()| {
            let mut state = running.lock().unwrap();
            state.0 += 1;
            state.1 = state.1.max(state.0);
            company.notify_all();
            // Waits for three in flight together; a generous bound keeps a broken pool from
            // hanging the test (it then fails on the count).
            let (mut state, waited) = company
                .wait_timeout_while(state, Duration::from_secs(30), |(_, most, gave_up)| *most < 3 && !*gave_up)
                .unwrap();
            state.2 |= waited.timed_out();
            state.0 -= 1;
        };
        for_each_concurrently(&items, Jobs(3), work, |_, ()| Ok(())).unwrap();
        let (_, most, gave_up) = *running.lock().unwrap();
        assert_eq!((most, gave_up), (3, false));
    }

    #[test]
    fn the_first_error_from_done_is_returned_and_done_is_not_called_again() {
        let items = vec![(); 50];
        let mut calls = 0;
        let error = for_each_concurrently(
            &items,
            Jobs(2),
            |_| (),
            |_, ()| {
                calls += 1;
                anyhow::bail!("disk full")
            },
        )
        .unwrap_err();
        assert_eq!((error.to_string().as_str(), calls), ("disk full", 1));
    }
}
