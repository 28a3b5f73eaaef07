//! The answer read frame by frame, without I/O: each frame the server sent gives the next step
//! (read on, send an acknowledgement, or done), so the reading is tested on bytes alone.

use super::frame::{
    ACK, CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PUSH_PROMISE,
    RST_STREAM, SETTINGS, STREAM, code_at, frame, unpad,
};
use super::hpack::Decoder;
use super::{Http2Error, Response};

/// What to do after a frame.
#[derive(Debug)]
pub(super) enum Step {
    More,
    /// Send these bytes (an acknowledgement), then read on.
    Reply(Vec<u8>),
    /// The answer is complete.
    Done,
}

/// The answer being read, frame by frame.
pub(super) struct Exchange {
    decoder: Decoder,
    response: Response,
    got_headers: bool,
    /// A header block whose CONTINUATION frames are still to come, and whether it ends the stream.
    pending: Option<(Vec<u8>, bool)>,
    limit: usize,
}

impl Exchange {
    pub(super) fn new(limit: usize) -> Exchange {
        Exchange {
            decoder: Decoder::new(),
            response: Response::default(),
            got_headers: false,
            pending: None,
            limit,
        }
    }

    /// The answer read (complete once a frame gave `Step::Done`).
    pub(super) fn into_response(self) -> Response {
        self.response
    }

    pub(super) fn on_frame(
        &mut self,
        kind: u8,
        flags: u8,
        id: u32,
        payload: &[u8],
    ) -> Result<Step, Http2Error> {
        // A header block is one run of frames: nothing may come between (RFC 9113 §6.10).
        if self.pending.is_some() && kind != CONTINUATION {
            return Err(Http2Error::Interrupted);
        }
        match (kind, id) {
            (SETTINGS, 0) if flags & ACK == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                Ok(Step::Reply(ack))
            }
            (PING, 0) if flags & ACK == 0 => {
                if payload.len() != 8 {
                    return Err(Http2Error::PingLength(payload.len()));
                }
                let mut pong = Vec::new();
                frame(&mut pong, PING, ACK, 0, payload);
                Ok(Step::Reply(pong))
            }
            (GOAWAY, 0) => Err(Http2Error::GoAway(code_at(payload, 4))),
            (RST_STREAM, STREAM) => Err(Http2Error::Reset(code_at(payload, 0))),
            (PUSH_PROMISE, _) => Err(Http2Error::Pushed),
            (HEADERS, STREAM) => {
                let fragment = unpad(payload, flags, true)?;
                self.pending = Some((fragment.to_vec(), flags & END_STREAM != 0));
                self.end_of_block(flags)
            }
            (CONTINUATION, STREAM) => {
                let (block, _) = self
                    .pending
                    .as_mut()
                    .ok_or(Http2Error::ContinuationOutOfPlace)?;
                block.extend_from_slice(payload);
                if block.len() > self.limit {
                    return Err(Http2Error::HeadersTooLarge);
                }
                self.end_of_block(flags)
            }
            (CONTINUATION, _) => Err(Http2Error::ContinuationOutOfPlace),
            (DATA, STREAM) => self.data(payload, flags),
            _ => Ok(Step::More),
        }
    }

    /// A DATA frame of the stream: its bytes added to the body, within the limit.
    fn data(&mut self, payload: &[u8], flags: u8) -> Result<Step, Http2Error> {
        let data = unpad(payload, flags, false)?;
        if data.len() > self.limit.saturating_sub(self.response.body.len()) {
            return Err(Http2Error::BodyTooLarge(self.limit));
        }
        self.response.body.extend_from_slice(data);
        Ok(if flags & END_STREAM != 0 {
            Step::Done
        } else {
            Step::More
        })
    }

    /// After a HEADERS or CONTINUATION frame: a complete header block is decoded.
    fn end_of_block(&mut self, flags: u8) -> Result<Step, Http2Error> {
        if flags & END_HEADERS == 0 {
            return Ok(Step::More);
        }
        let Some((block, end)) = self.pending.take() else {
            return Ok(Step::More);
        };
        let fields = self.decoder.decode(&block)?;
        if self.got_headers {
            self.response.trailers = fields;
        } else {
            self.response.headers = fields;
            self.got_headers = true;
        }
        Ok(if end { Step::Done } else { Step::More })
    }
}
