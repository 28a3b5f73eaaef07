//! The `output` resource a source writes into. The host decides what is behind it (a file that
//! is hashed as it grows, for downloads): the sandbox only passes the bytes on.

use std::any::Any;

/// Where a source's bytes go.
pub trait Sink: Any + Send {
    /// Appends bytes. An error (a size limit) tells the source to stop.
    // A String: it is the `output.write` result's error the source is given (WIT `string`).
    fn write(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Bytes already held (more than zero when resuming).
    fn written(&self) -> u64;
    /// Discards what was written.
    fn reset(&mut self);
}

/// The resource handed to a source for one call.
pub struct Output(pub(super) Box<dyn Sink>);

impl Output {
    pub(super) fn new(sink: impl Sink) -> Output {
        Output(Box::new(sink))
    }

    /// The sink that went in, back as its own type.
    pub(super) fn into_inner<S: Sink>(self) -> Option<S> {
        let any: Box<dyn Any> = self.0;
        any.downcast::<S>().ok().map(|b| *b)
    }
}
