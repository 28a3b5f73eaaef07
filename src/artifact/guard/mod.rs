//! What the decompressors and the `tar` crate would otherwise let a hostile archive do to memory:
//!
//! - [`TarStream`] (`tar_headers.rs`) sits between the decompressed stream and the `tar` crate and reads along the
//!   tar headers: the bodies of GNU long names and links and of PAX headers, which the crate
//!   reads whole into memory, are capped at 64 KiB each; sparse entries are refused; and the
//!   whole stream is capped (an archive of skipped entries is a bomb all the same).
//! - [`XzStream`] (`xz_structure/`) sits between the xz file and its decoder and reads along the xz structure as
//!   the decoder reaches it: the decoder allocates each block's whole dictionary at once, so a
//!   block asking for more than 256 MiB (xz itself uses at most 64 MiB) is refused before the
//!   decoder has its header. Every block of every stream is read so, whatever an index says
//!   (an index is checked against the blocks it follows, not trusted to find them).
//! - [`zstd_frame`] (`zstd_header.rs`) reads each zstd frame's header before the decoder does: the decoder keeps a
//!   window of output in memory, refused over 128 MiB (what `zstd -d` accepts by default).

use std::io;

mod tar_headers;
mod xz_structure;
mod zstd_header;

pub use tar_headers::TarStream;
pub use xz_structure::XzStream;
pub use zstd_header::{ZstdStart, zstd_frame};

/// What a bound refuses: data no honest archive holds.
fn bomb(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests;
