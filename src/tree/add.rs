//! Adding a binary to the tree: `init` (genesis) and `add-upgrade` (an upgrade folder).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Layout, LayoutError};
use crate::fs;

/// Room left on the disk after installing a binary, for the node's own writes.
const INSTALL_MARGIN: u64 = 64 << 20;

impl Layout {
    /// Copies a binary from anywhere into `<rel_dir>/bin/$DAEMON_NAME` with exec bits, atomically.
    /// The source must be a regular file (a device or FIFO is refused before a byte is read),
    /// and the copy streams: its size costs disk, checked first, never memory.
    pub fn install_binary(&self, rel_dir: &Path, source: &Path) -> Result<(), LayoutError> {
        let source_err = |source_error: fs::ReadError| LayoutError::Source {
            path: source.to_path_buf(),
            source: source_error,
        };
        let mut input = fs::open_regular_path(source).map_err(source_err)?;
        let size = input
            .metadata()
            .map_err(|e| source_err(fs::ReadError::Io(e)))?
            .len();
        let bin_dir = rel_dir.join("bin");
        self.root
            .create_dir_all(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let sub = self
            .root
            .open_dir(&bin_dir)
            .map_err(|e| self.io(&bin_dir, e))?;
        let free = fs::free_bytes(&sub).map_err(|e| self.io(&bin_dir, e))?;
        if size.saturating_add(INSTALL_MARGIN) > free {
            return Err(LayoutError::NoSpace {
                path: self.root_path.join(&bin_dir),
                needed: size,
                margin: INSTALL_MARGIN,
                free,
            });
        }
        let target = bin_dir.join(&self.daemon_name);
        let tmp = fs::temp_name(Path::new(&self.daemon_name));
        let copied = (|| {
            let mut out = fs::create_fresh(&sub, &tmp)?;
            std::io::copy(&mut input, &mut out)?;
            out.set_permissions(cap_std::fs::Permissions::from_std(
                std::fs::Permissions::from_mode(0o755),
            ))?;
            out.sync_all()?;
            sub.rename(&tmp, &sub, &self.daemon_name)?;
            fs::sync_dir(&sub)
        })();
        if let Err(e) = copied {
            let _ = sub.remove_file(&tmp);
            return Err(self.io(target, e));
        }
        Ok(())
    }
}
