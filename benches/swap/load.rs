//! Load beside the runs, started and stopped by the bench: a CPU hog (one busy process, half of a
//! 2-core machine) and a disk writer (4 MiB written and fdatasync'ed at a time, over a 64 MiB
//! file it rewrites in place: the page cache and the journal's disk stay busy, the disk does not
//! fill). Both are this bench binary, started again with `WASMVISOR_BENCH_LOAD`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The environment variable that makes the bench binary a load: `cpu` or `disk:<file>`.
pub(crate) const CHILD: &str = "WASMVISOR_BENCH_LOAD";

const CHUNK: usize = 4 << 20;
const FILE: u64 = 64 << 20;

/// The load's processes; dropping it stops them.
pub(crate) struct Load(Vec<Child>);

impl Load {
    /// Starts the hog and the writer (its file in `dir`).
    pub(crate) fn start(dir: &Path) -> Load {
        let exe = std::env::current_exe().unwrap();
        let spawn = |spec: String| {
            Command::new(&exe)
                .env(CHILD, spec)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let file = dir.join("bench-load.bin");
        Load(vec![
            spawn("cpu".into()),
            spawn(format!("disk:{}", file.display())),
        ])
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bench binary as a load, until killed.
pub(crate) fn child(spec: &str) {
    match spec.strip_prefix("disk:") {
        Some(path) => write_forever(Path::new(path)),
        None => {
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
    }
}

fn write_forever(path: &Path) -> ! {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; CHUNK];
    let mut at = 0u64;
    loop {
        if at >= FILE {
            at = 0;
            file.seek(SeekFrom::Start(0)).unwrap();
        }
        file.write_all(&chunk).unwrap();
        file.sync_data().unwrap();
        at += CHUNK as u64;
    }
}
