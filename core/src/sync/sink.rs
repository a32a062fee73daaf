//! Where an engine queues its requests.

use crate::session::{Request, RequestError, Session};
use crate::time::Instant;

/// What an engine needs of a session to ask for things: a [`Session`] itself, or a caller that
/// sends the requests its own way (an async adapter that shares one connection among tasks
/// and hands each answer back to the engine as the [`Event`](crate::session::Event) the
/// session would have produced, with the same `tag`).
pub trait RequestSink {
    /// Whether requests may be queued now (negotiation is over).
    fn is_ready(&self) -> bool;
    /// Queues `request`, to be answered with `tag`; returns its id.
    ///
    /// # Errors
    /// [`RequestError::TooManyInFlight`], [`RequestError::OutputFull`] and
    /// [`RequestError::Busy`] are back-pressure: the engine stops and asks again after answers
    /// arrive. Any other error is the caller's to handle.
    fn request(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError>;
}

impl RequestSink for Session<'_> {
    fn is_ready(&self) -> bool {
        Session::is_ready(self)
    }

    fn request(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError> {
        Session::request(self, now, request, tag)
    }
}
