//! The zstd decoder: ruzstd decodes one frame and leaves its checksum to its caller; this reads
//! every frame of a file in turn, each checked, with the window its header asks for capped
//! before decoding (`guard::zstd_frame`).

use std::io::{self, Read};

/// Every frame of a zstd file decoded in turn, each checked against its content checksum and
/// the content size its header states; skippable frames are passed over, anything else after
/// the last frame is refused (ruzstd decodes one frame and leaves its checksum to the caller).
pub(super) struct Zstd<R> {
    source: R,
    frame: Option<ZstdFrame>,
    /// Frames started so far.
    frames: u64,
}

/// The zstd frame being decoded.
struct ZstdFrame {
    decoder: ruzstd::decoding::FrameDecoder,
    content_size: Option<u64>,
    produced: u64,
}

fn zstd_error(frame: u64, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("zstd frame {frame} is corrupt: {e}"),
    )
}

impl<R: io::BufRead> Zstd<R> {
    /// Starts the first frame: a file that does not start with one is not zstd.
    pub(super) fn new(source: R) -> io::Result<Zstd<R>> {
        let mut zstd = Zstd {
            source,
            frame: None,
            frames: 0,
        };
        if !zstd.next_frame()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the file holds no zstd frame",
            ));
        }
        Ok(zstd)
    }

    /// Starts the next frame, past skippable ones; false at the end of the file.
    fn next_frame(&mut self) -> io::Result<bool> {
        use crate::artifact::guard::ZstdStart as Start;
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match crate::artifact::guard::zstd_frame(&mut self.source, self.frames)? {
                Start::Skippable(size) => {
                    let size = u64::from(size);
                    let skipped = io::copy(&mut (&mut self.source).take(size), &mut io::sink())?;
                    if skipped != size {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the zstd file ends within a skippable frame: truncated",
                        ));
                    }
                }
                Start::Frame {
                    header,
                    content_size,
                } => {
                    self.frames += 1;
                    let mut decoder = ruzstd::decoding::FrameDecoder::new();
                    let mut rest = header.as_slice();
                    decoder
                        .init(&mut rest)
                        .map_err(|e| zstd_error(self.frames, e))?;
                    if !rest.is_empty() {
                        return Err(zstd_error(self.frames, "a frame header read otherwise"));
                    }
                    self.frame = Some(ZstdFrame {
                        decoder,
                        content_size,
                        produced: 0,
                    });
                    return Ok(true);
                }
            }
        }
    }

    /// A frame decoded and read whole: its checksum and size must be what its header says.
    fn end_of_frame(&mut self) -> io::Result<()> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        if let Some(stated) = frame.decoder.get_checksum_from_data()
            && frame.decoder.get_calculated_checksum() != Some(stated)
        {
            return Err(zstd_error(
                self.frames,
                "its content does not match its checksum",
            ));
        }
        if frame
            .content_size
            .is_some_and(|size| size != frame.produced)
        {
            return Err(zstd_error(
                self.frames,
                "its content is not of the size its header states",
            ));
        }
        Ok(())
    }
}

impl<R: io::BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(frame) = self.frame.as_mut() else {
                if self.next_frame()? {
                    continue;
                }
                return Ok(0);
            };
            let decoder = &mut frame.decoder;
            while decoder.can_collect() < buf.len() && !decoder.is_finished() {
                let wanted = buf.len() - decoder.can_collect();
                decoder
                    .decode_blocks(
                        &mut self.source,
                        ruzstd::decoding::BlockDecodingStrategy::UptoBytes(wanted),
                    )
                    .map_err(|e| zstd_error(self.frames, e))?;
            }
            let n = decoder.read(buf)?;
            if n > 0 {
                frame.produced += n as u64;
                if frame.content_size.is_some_and(|size| frame.produced > size) {
                    return Err(zstd_error(
                        self.frames,
                        "its content is larger than its header states",
                    ));
                }
                return Ok(n);
            }
            self.end_of_frame()?;
        }
    }
}
