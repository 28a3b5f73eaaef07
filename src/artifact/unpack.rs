//! Unpacking archives safely: regular files and directories only (no symlinks, hard links or
//! devices), no absolute or `..` paths, a cap on the unpacked size and on the number of entries
//! (no decompression bombs), everything written through the staging folder's capability handle.
//!
//! The formats are go-getter's: tar, with gzip, xz, bzip2 or zstd around it or not; zip; and a
//! single gzip, xz, bzip2 or zstd file (the binary itself). Which one is decided from the bytes
//! (`detect`), with the URL's extension or `?archive=` where the bytes leave it open.

use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use wasmvisor_plugin_support::getter::{Archive, Format};

use super::Limits;

/// What the fetched bytes are, decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The binary as it is.
    Raw,
    /// A tar, compressed by this format (`Gz`, `Xz`, `Bz2`, `Zst`) or not.
    Tar(Option<Format>),
    Zip,
    /// One compressed file: the binary.
    Single(Format),
}

/// The compression or archive the first bytes announce.
fn magic(head: &[u8]) -> Option<Format> {
    match head {
        [0x1f, 0x8b, ..] => Some(Format::Gz),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Some(Format::Xz),
        [b'B', b'Z', b'h', ..] => Some(Format::Bz2),
        // A zstd frame, or a skippable frame (pzstd starts its files with one).
        [0x28, 0xb5, 0x2f, 0xfd, ..] | [0x50..=0x5f, 0x2a, 0x4d, 0x18, ..] => Some(Format::Zst),
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Format::Zip),
        _ if is_tar(head) => Some(Format::Tar),
        _ => None,
    }
}

/// A POSIX (ustar) or GNU tar header.
fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Reads up to `n` bytes (fewer only at the end).
fn head(reader: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Decides how to unpack `file`: `archive=false` takes it as it is; `archive=<format>` names the
/// format, which the bytes must match; otherwise the bytes decide, and the URL's `extension`
/// where they leave it open (a compressed tar and a compressed single file start alike, so the
/// decompressed bytes are looked at too).
pub fn detect(
    file: &mut std::fs::File,
    archive: Archive,
    extension: Option<Format>,
) -> Result<Packing, String> {
    let start = head(file, 512).map_err(|e| e.to_string())?;
    let found = magic(&start);
    let wanted = match archive {
        Archive::Off => return Ok(Packing::Raw),
        Archive::Format(f) => Some(f),
        Archive::Detect => None,
    };
    if let Some(f) = wanted {
        let expected = f.compression().unwrap_or(f);
        if found != Some(expected) && !(f == Format::Tar && found.is_none()) {
            return Err(format!(
                "?archive={} but the bytes are {}",
                f.name(),
                crate::tree::install::describe(&start)
            ));
        }
    }
    let format = match (wanted, found) {
        (Some(f), _) => f,
        (None, Some(Format::Zip)) => Format::Zip,
        (None, Some(Format::Tar)) => Format::Tar,
        (None, Some(c)) => {
            // Compressed: a tar inside, or the binary?
            io::Seek::rewind(file).map_err(|e| e.to_string())?;
            let mut inner = decoder(
                c,
                BufReader::new(file.try_clone().map_err(|e| e.to_string())?),
            )?;
            let inside = head(&mut inner, 512)
                .map_err(|e| format!("cannot decompress the {} download: {e}", c.name()))?;
            let tar = is_tar(&inside) || extension.is_some_and(Format::is_tar);
            match (tar, c) {
                (true, Format::Gz) => Format::TarGz,
                (true, Format::Xz) => Format::TarXz,
                (true, Format::Bz2) => Format::TarBz2,
                (true, Format::Zst) => Format::TarZst,
                _ => c,
            }
        }
        // An old tar without the ustar mark is known by its name only.
        (None, None) if extension == Some(Format::Tar) => Format::Tar,
        (None, None) => match extension {
            Some(ext) => {
                return Err(format!(
                    "the URL names a .{} file but the bytes are {}",
                    ext.name(),
                    crate::tree::install::describe(&start)
                ));
            }
            None => return Ok(Packing::Raw),
        },
    };
    Ok(match format {
        Format::Zip => Packing::Zip,
        f if f.is_tar() => Packing::Tar(f.compression()),
        f => Packing::Single(f),
    })
}

/// A reader of `c`-compressed bytes: every member, stream or frame decoded to its end (as
/// `gzip -d`, `xz -d`, `bzip2 -d` and `zstd -d` do: `pigz`, `pzstd`, `pbzip2` and `cat` make
/// files of several), every check the format has verified, and anything after the last one
/// refused. A check is verified when its stream ends, so the reader must be read to its end
/// (`TarStream::finish` after a tar) before what it gave is trusted.
pub fn decoder<R: io::BufRead + 'static>(c: Format, reader: R) -> Result<Box<dyn Read>, String> {
    Ok(match c {
        // Each member's CRC-32 and length; after the last, only another member.
        Format::Gz => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        // Each block's check (CRC-32, CRC-64 or SHA-256), header and index CRCs; the structure
        // (and each block's dictionary) read along by `XzStream`, stream padding included.
        Format::Xz => Box::new(lzma_rust2::XzReader::new(
            super::guard::XzStream::new(reader),
            true,
        )),
        // Each block's and stream's CRC-32.
        Format::Bz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(reader)),
        Format::Zst => Box::new(Zstd::new(reader).map_err(|e| format!("not a zstd stream: {e}"))?),
        other => return Err(format!("{} is not a compression", other.name())),
    })
}

/// Every frame of a zstd file decoded in turn, each checked against its content checksum and
/// the content size its header states; skippable frames are passed over, anything else after
/// the last frame is refused (ruzstd decodes one frame and leaves its checksum to the caller).
struct Zstd<R> {
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
    fn new(source: R) -> io::Result<Zstd<R>> {
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
        use super::guard::ZstdStart as Start;
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match super::guard::zstd_frame(&mut self.source, self.frames)? {
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

/// The path of an archive entry if it is safe: relative, no `..`, no root, not empty.
fn safe_path(name: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "the archive entry {} escapes the archive",
                    name.display()
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!(
            "the archive entry {:?} has no name",
            name.display()
        ));
    }
    Ok(out)
}

pub(super) fn copy_limited(
    reader: &mut dyn Read,
    dir: &Dir,
    path: &Path,
    left: u64,
    total: u64,
) -> Result<u64, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut file = dir
        .create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let copied = io::copy(&mut reader.take(left.saturating_add(1)), &mut file)
        .map_err(|e| format!("cannot unpack {}: {e}", path.display()))?;
    if copied > left {
        return Err(format!(
            "the archive unpacks to more than {total} bytes (the most a node binary with its libraries may take, or the free space left): refused as a decompression bomb"
        ));
    }
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(copied)
}

pub(super) fn set_mode(dir: &Dir, path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    dir.set_permissions(
        path,
        cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(mode)),
    )
    .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

/// Unpacks a tar read from `reader` (already decompressed) into `dir`.
pub(super) fn tar(reader: impl Read, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let mut left = limits.unpacked;
    let mut count = 0u64;
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("corrupt tar archive: {e}"))?;
        count += 1;
        if count > limits.entries {
            return Err(format!(
                "the archive has more than {} entries",
                limits.entries
            ));
        }
        let name = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let path = safe_path(&name)?;
        if kind.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
            left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
            set_mode(dir, &path, mode | 0o600)?;
        } else {
            return Err(format!(
                "the archive entry {} is a {kind:?}; only files and directories are accepted",
                name.display()
            ));
        }
    }
    Ok(())
}

pub(super) fn zip(file: std::fs::File, dir: &Dir, limits: &Limits) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    if archive.len() as u64 > limits.entries {
        return Err(format!(
            "the archive has more than {} entries",
            limits.entries
        ));
    }
    let mut left = limits.unpacked;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("corrupt zip archive: {e}"))?;
        let raw_name = entry
            .name()
            .map_err(|e| format!("bad entry name in the zip archive: {e}"))?
            .into_owned();
        let path = safe_path(Path::new(&raw_name))?;
        if entry.enclosed_name().is_none() {
            return Err(format!("the archive entry {raw_name} escapes the archive"));
        }
        if entry.is_symlink() {
            return Err(format!(
                "the archive entry {raw_name} is a symlink; only files and directories are accepted"
            ));
        }
        if entry.is_dir() {
            dir.create_dir_all(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            continue;
        }
        if let Some(mode) = entry.unix_mode()
            && mode & 0o170000 != 0
            && mode & 0o170000 != 0o100000
        {
            return Err(format!(
                "the archive entry {raw_name} is not a regular file"
            ));
        }
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o755;
        left -= copy_limited(&mut entry, dir, &path, left, limits.unpacked)?;
        set_mode(dir, &path, mode | 0o600)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use cap_std::ambient_authority;

    use super::*;

    #[test]
    fn unsafe_entry_paths_are_refused() {
        assert!(safe_path(Path::new("../evil")).is_err());
        assert!(safe_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_path(Path::new("a/../../b")).is_err());
        assert!(safe_path(Path::new("./")).is_err());
        assert_eq!(
            safe_path(Path::new("./bin/simd")).unwrap(),
            PathBuf::from("bin/simd")
        );
    }

    /// The binary of the test archives: a script (an executable for any machine), long enough
    /// that the compressors write literals a flipped bit changes.
    pub(in crate::artifact) fn binary() -> Vec<u8> {
        let mut script = b"#!/bin/sh\n".to_vec();
        for i in 0..24 {
            writeln!(
                script,
                "echo 'simd v2, line {i}: {}'",
                "abcdefgh".repeat(i % 5)
            )
            .unwrap();
        }
        script
    }

    pub(in crate::artifact) const LIBRARY: &[u8] = b"\x7fELF the library beside the binary";

    pub(in crate::artifact) fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// The tar of the binary and the library.
    pub(in crate::artifact) fn tarball() -> Vec<u8> {
        tar(&[("bin/simd", &binary()), ("lib/libwasmvm.so", LIBRARY)])
    }

    pub(in crate::artifact) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    pub(in crate::artifact) fn xz_with(bytes: &[u8], options: lzma_rust2::XzOptions) -> Vec<u8> {
        let mut w = lzma_rust2::XzWriter::new(Vec::new(), options).unwrap();
        w.write_all(bytes).unwrap();
        w.finish().unwrap()
    }

    pub(in crate::artifact) fn xz(bytes: &[u8]) -> Vec<u8> {
        xz_with(bytes, lzma_rust2::XzOptions::with_preset(1))
    }

    pub(in crate::artifact) fn bz2(bytes: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// One zstd frame, with its content checksum.
    pub(in crate::artifact) fn zst(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    pub(in crate::artifact) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        for (name, bytes) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Each format a release comes in, by name, holding the binary (and the library, for the
    /// archives).
    pub(in crate::artifact) fn every_format() -> Vec<(&'static str, Vec<u8>)> {
        let tarball = tarball();
        let binary = binary();
        vec![
            ("simd.tar.gz", gz(&tarball)),
            ("simd.tar.xz", xz(&tarball)),
            ("simd.tar.bz2", bz2(&tarball)),
            ("simd.tar.zst", zst(&tarball)),
            (
                "simd.zip",
                zip(&[("bin/simd", &binary), ("lib/libwasmvm.so", LIBRARY)]),
            ),
            ("simd.gz", gz(&binary)),
            ("simd.xz", xz(&binary)),
            ("simd.bz2", bz2(&binary)),
            ("simd.zst", zst(&binary)),
        ]
    }

    /// What installing `bytes`, downloaded as `name`, puts in place in a fresh tree: the
    /// binary and the library beside it (if any), or why nothing was installed.
    pub(in crate::artifact) fn install(
        name: &str,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        let scratch = tempfile::tempdir().unwrap();
        let (root_path, work_path) = (scratch.path().join("root"), scratch.path().join("work"));
        std::fs::create_dir(&root_path).unwrap();
        std::fs::create_dir(&work_path).unwrap();
        std::fs::write(work_path.join(name), bytes).unwrap();
        let root = Dir::open_ambient_dir(&root_path, ambient_authority()).unwrap();
        let work = Dir::open_ambient_dir(&work_path, ambient_authority()).unwrap();
        let how = super::super::install::Unpack {
            archive: Archive::Detect,
            extension: Format::from_path(name),
            subdir: None,
        };
        let result = super::super::install::install(
            &root,
            &work,
            name,
            &how,
            "v2",
            "simd",
            &Limits::default(),
        );
        let installed = root_path.join("upgrades/v2/bin/simd");
        match result {
            Ok(()) => Ok((
                std::fs::read(&installed).unwrap(),
                std::fs::read(root_path.join("upgrades/v2/lib/libwasmvm.so")).ok(),
            )),
            Err(why) => {
                assert!(!installed.exists(), "refused ({why}) yet installed");
                Err(why)
            }
        }
    }

    /// All that `c`-compressed `bytes` decode to, or why not.
    pub(in crate::artifact) fn decode(c: Format, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        decoder(c, io::Cursor::new(bytes.to_vec()))?
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Why installing `bytes` as `name` was refused (a test failure if it was not).
    fn refused(name: &str, bytes: &[u8]) -> String {
        match install(name, bytes) {
            Ok(_) => panic!("{name}: installed"),
            Err(why) => why,
        }
    }

    /// Why decoding `bytes` was refused (a test failure if it was not).
    fn undecodable(c: Format, bytes: &[u8]) -> String {
        match decode(c, bytes) {
            Ok(out) => panic!("{}: decoded to {} bytes", c.name(), out.len()),
            Err(why) => why,
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/archives")
                .join(name),
        )
        .unwrap()
    }

    /// What the fixtures hold (tests/fixtures/archives/README.md).
    fn fixture_content() -> Vec<u8> {
        b"wasmvisor\n".repeat(2 << 20)
    }

    #[test]
    fn every_format_installs_the_binary_and_its_library() {
        for (name, bytes) in every_format() {
            let (binary, library) = install(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(binary, self::binary(), "{name}");
            let archive = name.contains(".tar.") || name.ends_with(".zip");
            assert_eq!(library.as_deref(), archive.then_some(LIBRARY), "{name}");
        }
    }

    #[test]
    fn concatenated_zstd_frames_are_all_decoded() {
        // Two frames one after the other, as `cat` makes them: the whole binary, never its
        // first part.
        let binary = binary();
        let (first, second) = binary.split_at(100);
        let mut two = zst(first);
        two.extend(zst(second));
        assert_eq!(install("simd.zst", &two).unwrap().0, binary);
        let tarball = tarball();
        let (first, second) = tarball.split_at(700);
        let mut two = zst(first);
        two.extend(zst(second));
        let (installed, library) = install("simd.tar.zst", &two).unwrap();
        assert_eq!(installed, binary);
        assert_eq!(library.as_deref(), Some(LIBRARY));
        // Skippable frames are passed over, before, between and after.
        let skippable = |n: u8| {
            let mut frame = vec![0x50 + n, 0x2a, 0x4d, 0x18, 3, 0, 0, 0];
            frame.extend([n; 3]);
            frame
        };
        let (first, second) = binary.split_at(100);
        let mut framed = skippable(0);
        framed.extend(zst(first));
        framed.extend(skippable(1));
        framed.extend(zst(second));
        framed.extend(skippable(15));
        assert_eq!(decode(Format::Zst, &framed).unwrap(), binary);
        assert_eq!(install("simd.zst", &framed).unwrap().0, binary);
        // What zstd and pzstd write: 2 frames stating their sizes; 11 after skippable frames.
        for name in ["wasmvisor-20m.cat.zst", "wasmvisor-20m.pzstd.zst"] {
            let decoded = decode(Format::Zst, &fixture(name)).unwrap();
            assert!(
                decoded == fixture_content(),
                "{name}: {} bytes",
                decoded.len()
            );
        }
    }

    #[test]
    fn zstd_data_after_the_last_frame_and_wrong_sizes_are_refused() {
        let binary = binary();
        for tail in [
            &b"garbage"[..],
            &[0u8; 4],
            &[0x28, 0xb5, 0x2f],
            &[0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1],
        ] {
            let mut bytes = zst(&binary);
            bytes.extend(tail);
            let e = refused("simd.zst", &bytes);
            assert!(e.contains("zstd"), "{tail:?}: {e}");
            let mut tarred = zst(&tarball());
            tarred.extend(tail);
            refused("simd.tar.zst", &tarred);
        }
        assert!(
            install("simd.zst", &zst(&binary)[..40]).is_err(),
            "a truncated frame"
        );
        // A frame of one raw block stating its content size (1 byte, single segment): the
        // size must be the content's.
        let frame = |stated: u8, content: &[u8]| {
            let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, stated];
            let block = 1 | (content.len() as u32) << 3; // the last block, raw
            f.extend(&block.to_le_bytes()[..3]);
            f.extend(content);
            f
        };
        let script = b"#!/bin/sh\nexit 0\n";
        assert_eq!(decode(Format::Zst, &frame(17, script)).unwrap(), script);
        for stated in [16, 18] {
            let e = undecodable(Format::Zst, &frame(stated, script));
            assert!(e.contains("its header states"), "{stated}: {e}");
        }
    }

    #[test]
    fn a_zstd_window_larger_than_zstd_accepts_is_refused_before_decoding() {
        // The decoder keeps a window of output in memory: a frame asking for 1 GiB (window
        // descriptor: exponent 20, mantissa 0), with one empty raw block.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00];
        let e = undecodable(Format::Zst, &frame);
        assert!(e.contains("a window of 1024 MiB"), "{e}");
        // 128 MiB is what zstd -d accepts by default: accepted.
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 0x01, 0x00, 0x00];
        assert_eq!(decode(Format::Zst, &frame).unwrap(), b"");
    }

    #[test]
    fn concatenated_xz_streams_and_stream_padding_are_all_decoded() {
        let binary = binary();
        let (first, second) = binary.split_at(100);
        let mut two = xz(first);
        two.extend(xz(second));
        assert_eq!(install("simd.xz", &two).unwrap().0, binary);
        let tarball = tarball();
        let (a, b) = tarball.split_at(700);
        let mut two = xz(a);
        two.extend([0u8; 8]);
        two.extend(xz(b));
        two.extend([0u8; 4]);
        let (installed, library) = install("simd.tar.xz", &two).unwrap();
        assert_eq!(
            (installed, library.as_deref()),
            (binary.clone(), Some(LIBRARY))
        );
        // Every check type, several blocks, a filter before LZMA2.
        for check in [
            lzma_rust2::CheckType::None,
            lzma_rust2::CheckType::Crc32,
            lzma_rust2::CheckType::Crc64,
            lzma_rust2::CheckType::Sha256,
        ] {
            let mut options = lzma_rust2::XzOptions::with_preset(1);
            options.set_check_sum_type(check);
            options.set_block_size(std::num::NonZeroU64::new(100));
            options.prepend_pre_filter(lzma_rust2::FilterType::Delta, 1);
            let bytes = xz_with(&tarball, options);
            assert_eq!(decode(Format::Xz, &bytes).unwrap(), tarball, "{check:?}");
        }
        // What xz writes: 20 blocks stating their sizes; two streams.
        for name in ["wasmvisor-20m.blocks.xz", "wasmvisor-20m.cat.xz"] {
            let decoded = decode(Format::Xz, &fixture(name)).unwrap();
            assert!(
                decoded == fixture_content(),
                "{name}: {} bytes",
                decoded.len()
            );
        }
    }

    #[test]
    fn xz_data_after_the_last_stream_and_bad_padding_are_refused() {
        let binary = binary();
        for tail in [&b"garbage!"[..], &[0u8; 3], &[0u8; 5], &[0xfd, b'7', b'z']] {
            let mut bytes = xz(&binary);
            bytes.extend(tail);
            let e = refused("simd.xz", &bytes);
            assert!(e.contains("xz"), "{tail:?}: {e}");
            let mut tarred = xz(&tarball());
            tarred.extend(tail);
            refused("simd.tar.xz", &tarred);
        }
        // Padding between streams comes in fours too.
        let mut bytes = xz(&binary[..100]);
        bytes.extend([0u8; 2]);
        bytes.extend(xz(&binary[100..]));
        let e = undecodable(Format::Xz, &bytes);
        assert!(e.contains("padding comes in fours"), "{e}");
        let e = undecodable(Format::Xz, &xz(&binary)[..60]);
        assert!(e.contains("xz"), "{e}");
    }

    /// The CRC-32 xz puts in its headers.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// The parts of a one-block xz stream: stream header, block, index, footer.
    fn xz_parts(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let footer = bytes[bytes.len() - 12..].to_vec();
        let backward = u32::from_le_bytes(footer[4..8].try_into().unwrap());
        let index_at = bytes.len() - 12 - (backward as usize + 1) * 4;
        (
            bytes[..12].to_vec(),
            bytes[12..index_at].to_vec(),
            bytes[index_at..bytes.len() - 12].to_vec(),
            footer,
        )
    }

    /// `block` with its LZMA2 dictionary set to 4 GiB (its header's CRC-32 redone).
    fn with_huge_dictionary(mut block: Vec<u8>) -> Vec<u8> {
        let size = (usize::from(block[0]) + 1) * 4;
        // Flags 0 (one filter, no sizes): id 0x21, one byte of properties, the dictionary.
        assert_eq!(&block[1..4], &[0x00, 0x21, 0x01]);
        block[4] = 40;
        let crc = crc32(&block[..size - 4]).to_le_bytes();
        block[size - 4..size].copy_from_slice(&crc);
        block
    }

    #[test]
    fn a_block_the_index_does_not_list_is_capped_as_it_is_reached() {
        // Two blocks, an index listing one, the second asking for a 4 GiB dictionary: read
        // along as it is decoded, the second block is refused at its header, before the
        // decoder allocates anything for it.
        let (header, first, index, footer) = xz_parts(&xz(b"#!/bin/sh\n"));
        let (_, second, _, _) = xz_parts(&xz(b"exit 0\n"));
        let lying = [
            header.clone(),
            first.clone(),
            with_huge_dictionary(second.clone()),
            index.clone(),
            footer.clone(),
        ]
        .concat();
        let started = Instant::now();
        let e = undecodable(Format::Xz, &lying);
        assert!(
            e.contains("a dictionary of 4095 MiB in block 2 of stream 1"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let e = refused("simd.xz", &lying);
        assert!(e.contains("a dictionary of 4095 MiB"), "{e}");
        // The same index with an honest second block: refused for the lie.
        let unlisted = [header.clone(), first.clone(), second, index, footer].concat();
        let e = undecodable(Format::Xz, &unlisted);
        assert!(e.contains("lists 1 blocks, the stream has 2"), "{e}");
        // In a second stream, and as its first block.
        let mut streams = xz(b"#!/bin/sh\n");
        let (header, block, index, footer) = xz_parts(&xz(b"exit 0\n"));
        streams.extend([header, with_huge_dictionary(block), index, footer].concat());
        let e = undecodable(Format::Xz, &streams);
        assert!(
            e.contains("a dictionary of 4095 MiB in block 1 of stream 2"),
            "{e}"
        );
    }

    /// Whether a flipped bit in any byte of `packed` decodes to `original` or is refused —
    /// never decodes to something else.
    fn every_flip_is_caught(c: Format, packed: &[u8], original: &[u8]) {
        for at in 0..packed.len() {
            for bit in 0..8 {
                let mut flipped = packed.to_vec();
                flipped[at] ^= 1 << bit;
                if let Ok(out) = decode(c, &flipped) {
                    assert!(
                        out == original,
                        "{}: bit {bit} of byte {at} of {} flipped decodes to other bytes",
                        c.name(),
                        packed.len()
                    );
                }
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_decodes_to_the_original_or_is_refused() {
        let binary = binary();
        for (c, packed) in [
            (Format::Gz, gz(&binary)),
            (Format::Xz, xz(&binary)),
            (Format::Bz2, bz2(&binary)),
            (Format::Zst, zst(&binary)),
        ] {
            every_flip_is_caught(c, &packed, &binary);
        }
    }

    /// The first single bit flip of `packed` (from its end) that `unchecked` decodes without an
    /// error to other bytes than the original's, the difference all within the binary (which
    /// starts at `at` in the original): the corruption only the format's own check can catch,
    /// which would install another binary.
    fn silent_flip(
        packed: &[u8],
        original: &[u8],
        at: usize,
        unchecked: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Vec<u8> {
        let binary = at..at + binary().len();
        for i in (0..packed.len()).rev() {
            let mut flipped = packed.to_vec();
            flipped[i] ^= 0x01;
            let Some(out) = unchecked(&flipped) else {
                continue;
            };
            if out.len() == original.len()
                && out[binary.clone()] != original[binary.clone()]
                && out[..binary.start] == original[..binary.start]
                && out[binary.end..] == original[binary.end..]
            {
                return flipped;
            }
        }
        panic!("no flip changes the binary silently");
    }

    #[test]
    fn a_tar_gz_is_read_to_its_end_and_its_crc_checked() {
        let tarball = tarball();
        let packed = gz(&tarball);
        // The trailer's CRC-32 and length, each flipped: the tar inside reads the same.
        for at in [packed.len() - 8, packed.len() - 1] {
            let mut flipped = packed.clone();
            flipped[at] ^= 0x10;
            let e = refused("simd.tar.gz", &flipped);
            assert!(e.contains("corrupt after its last entry"), "{e}");
        }
        // A flip in the deflate data that decodes to another tar, as a raw deflate decoder
        // reads it: only the CRC-32 knows.
        let flipped = silent_flip(&packed, &tarball, 512, |bytes| {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(&bytes[10..])
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        });
        let e = refused("simd.tar.gz", &flipped);
        assert!(e.contains("corrupt after its last entry"), "{e}");
        // Data after the gzip stream.
        let mut tail = packed.clone();
        tail.extend(b"trailing");
        refused("simd.tar.gz", &tail);
        // Several members (as pigz and cat make them): all read.
        let (a, b) = tarball.split_at(600);
        let two = [gz(a), gz(b)].concat();
        assert_eq!(install("simd.tar.gz", &two).unwrap().0, binary());
    }

    #[test]
    fn a_zstd_content_checksum_is_checked() {
        // A flip that ruzstd alone decodes to other bytes (it leaves the checksum to its
        // caller): refused, in a .zst and in a .tar.zst.
        let unchecked = |bytes: &[u8]| {
            let mut out = Vec::new();
            ruzstd::decoding::StreamingDecoder::new(bytes)
                .ok()?
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        };
        let binary = binary();
        let flipped = silent_flip(&zst(&binary), &binary, 0, unchecked);
        let e = refused("simd.zst", &flipped);
        assert!(e.contains("does not match its checksum"), "{e}");
        let tarball = tarball();
        let flipped = silent_flip(&zst(&tarball), &tarball, 512, unchecked);
        let e = refused("simd.tar.zst", &flipped);
        assert!(e.contains("does not match its checksum"), "{e}");
    }

    #[test]
    fn bzip2_streams_are_all_decoded_and_data_after_them_refused() {
        let binary = binary();
        let two = [bz2(&binary[..100]), bz2(&binary[100..])].concat();
        assert_eq!(install("simd.bz2", &two).unwrap().0, binary);
        let mut tail = bz2(&tarball());
        tail.extend(b"trailing");
        refused("simd.tar.bz2", &tail);
    }
}

#[cfg(test)]
mod fuzz;
