//! Verified sync engines that work *on* a [`Session`](crate::session::Session) without owning it.
//!
//! An engine never touches sockets or clocks. The caller keeps running the session's loop
//! (see [`crate::session`]) and, in addition:
//!
//! ```text
//! sync.poll(now, &mut session)?;                 // may queue requests on the session
//! ... transmit, read, handle_input as usual ...
//! while let Some(event) = session.poll_event() {
//!     if let Some(s) = sync.handle_event(now, &event) { /* verified progress, reorg, lie */ }
//!     /* other uses of the event */
//! }
//! sync.poll(now, &mut session)?;                 // after events: issue the next request
//! sleep until min(session.poll_timeout(), sync.poll_timeout())
//! ```
//!
//! Engines recognise their own responses by the request `tag` (each reserves a documented tag
//! range) and ignore every other event, so all events can be passed to all engines.
//!
//! | engine | job |
//! |---|---|
//! | [`tracker::ScriptTracker`] | verified histories of scripts: status recomputed, header proof, merkle branch, txid and involvement of every transaction before it is reported |
//! | [`headers::HeaderSync`] | headers from an anchor to the server's tip in paced 2016-header chunks, tip following, reorgs by cumulative work |

//!
//! An engine asks through a [`RequestSink`]: a [`Session`](crate::session::Session), or a
//! caller that sends the requests its own way and hands the answers back as events. Its tables
//! live in [`Slots`] the caller lends it: a fixed slice on a device, a growing `Vec` where
//! there is a heap.

pub mod headers;
mod sink;
mod storage;
pub mod tracker;

pub use sink::RequestSink;
pub use storage::Slots;

pub use headers::{HeaderSync, Lie, Pacing, SyncError, SyncEvent};
