//! Replies in request order while requests run together. Each request's frames come down a
//! channel of its own, and one writer drains those channels in the order the requests came:
//! a request that finishes early waits for the ones before it, since the VoxCPMEx client
//! matches replies to callers by order alone (protocol doc §2.6).

use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rmpv::Value;

use super::frame::write_frame;
use super::protocol::reply;
use super::session::Shutdown;

/// One request's reply: its frames, in the order they are to be written. The channel closes
/// when the reply is complete.
pub(super) type Frames = Receiver<Value>;

/// A reply known at once.
pub(super) fn immediate(frame: Value) -> Frames {
    let (send, frames) = channel();
    let _ = send.send(frame);
    frames
}

/// A reply produced by `produce` on a thread of its own, which holds `ticket` until it is done.
pub(super) fn on_thread(ticket: Ticket, produce: impl FnOnce(&Sender<Value>) + Send + 'static) -> Frames {
    let (send, frames) = channel();
    let failed = send.clone();
    let spawned = std::thread::Builder::new().name("voxcpm-bridge-request".into()).spawn(move || {
        let _ticket = ticket;
        produce(&send);
    });
    if let Err(e) = spawned {
        let _ = failed.send(reply::error(&format!("Unhandled error: cannot start a request thread: {e}")));
    }
    frames
}

/// Writes every reply whole, in request order, until the queue closes. A failed write means
/// the client is gone: the bridge is stopped and the rest dropped (their requests cancelled).
pub(super) fn write_in_order(replies: Receiver<Frames>, mut output: impl Write, shutdown: &Shutdown) {
    for frames in replies {
        for frame in frames {
            if let Err(e) = write_frame(&mut output, &frame) {
                tracing::info!(error = %e, "output closed; stopping");
                shutdown.trigger();
                return;
            }
        }
    }
}

/// The requests generating on the engine now: at most the server's batch at a time (more
/// would only wait in its queue, each on a thread of its own), and none while the model or
/// its adapter changes, so that every request runs with the adapter of its place in order.
#[derive(Default)]
pub(super) struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

/// A place among the requests in flight, given back on drop.
pub(super) struct Ticket(Arc<InFlight>);

impl InFlight {
    fn count(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until fewer than `limit` requests are in flight and takes a place.
    pub fn enter(self: &Arc<Self>, limit: usize) -> Ticket {
        let count = self.count();
        let mut count = self.changed.wait_while(count, |count| *count >= limit).unwrap_or_else(|p| p.into_inner());
        *count += 1;
        Ticket(Arc::clone(self))
    }

    /// Waits until no request is in flight.
    pub fn wait_idle(&self) {
        let count = self.count();
        drop(self.changed.wait_while(count, |count| *count > 0).unwrap_or_else(|p| p.into_inner()));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        *self.0.count() -= 1;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_reply_is_written_before_an_early_one_behind_it() {
        let in_flight = Arc::new(InFlight::default());
        let (release, wait) = channel::<()>();
        let slow = on_thread(in_flight.enter(2), move |send| {
            wait.recv().unwrap();
            send.send(reply::ok()).unwrap();
        });
        let fast = on_thread(in_flight.enter(2), |send| send.send(reply::pong()).unwrap());
        let (replies, queue) = channel();
        replies.send(slow).unwrap();
        replies.send(fast).unwrap();
        replies.send(immediate(reply::error("last"))).unwrap();
        drop(replies);
        let mut output = Vec::new();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| write_in_order(queue, &mut output, &Shutdown::default()));
            release.send(()).unwrap();
            writer.join().unwrap();
        });
        let mut written = Vec::new();
        let mut input = &output[..];
        while let Ok(payload) = super::super::frame::read_frame(&mut input) {
            written.push(super::super::frame::decode_map(&payload).unwrap());
        }
        let first_values: Vec<Value> = written.iter().map(|map| map.last().unwrap().1.clone()).collect();
        assert_eq!(first_values, [Value::from("ok"), Value::from("pong"), Value::from("last")]);
        in_flight.wait_idle();
    }
}
