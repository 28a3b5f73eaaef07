//! A small HTTP/1.1 file server on 127.0.0.1 for the download tests: serves byte blobs by path,
//! honours `Range`, and can misbehave on purpose (cut a response short, answer 503 first,
//! redirect).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Files {
    blobs: HashMap<String, Vec<u8>>,
    redirects: HashMap<String, String>,
    /// Cut the next response for a path after this many body bytes.
    cut_once: HashMap<String, usize>,
    /// Stop sending a path's body after this many bytes and hold the connection open: the next
    /// `n` responses (`usize::MAX`: all of them).
    stall: HashMap<String, (usize, usize)>,
    /// Answer 503 this many times first.
    unavailable: usize,
    /// Every request line with its Range header, in order.
    log: Vec<String>,
}

#[derive(Clone)]
pub struct Server {
    pub port: u16,
    files: Arc<Mutex<Files>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files = Arc::new(Mutex::new(Files::default()));
        let shared = files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let files = shared.clone();
                std::thread::spawn(move || serve(stream, &files));
            }
        });
        Server { port, files }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().blobs.insert(path.into(), bytes);
    }

    pub fn redirect(&self, from: &str, to: &str) {
        self.files
            .lock()
            .unwrap()
            .redirects
            .insert(from.into(), to.into());
    }

    pub fn cut_once(&self, path: &str, after: usize) {
        self.files
            .lock()
            .unwrap()
            .cut_once
            .insert(path.into(), after);
    }

    /// The next `times` responses for `path` send `after` body bytes, then nothing, with the
    /// connection left open (a stalled download).
    pub fn stall(&self, path: &str, after: usize, times: usize) {
        self.files
            .lock()
            .unwrap()
            .stall
            .insert(path.into(), (after, times));
    }

    pub fn unavailable(&self, times: usize) {
        self.files.lock().unwrap().unavailable = times;
    }

    pub fn log(&self) -> Vec<String> {
        self.files.lock().unwrap().log.clone()
    }
}

fn serve(mut stream: TcpStream, files: &Mutex<Files>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut range_from = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range_from = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut f = files.lock().unwrap();
    f.log.push(format!("{path} range={range_from:?}"));
    if f.unavailable > 0 {
        f.unavailable -= 1;
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    if let Some(to) = f.redirects.get(&path) {
        let _ = write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let Some(blob) = f.blobs.get(&path).cloned() else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let cut = f.cut_once.remove(&path);
    let stall = match f.stall.get_mut(&path) {
        Some((after, times)) if *times > 0 => {
            *times = times.saturating_sub(1);
            Some(*after)
        }
        _ => None,
    };
    drop(f);
    let (status, body, extra) = match range_from {
        Some(from) if from < blob.len() => (
            "206 Partial Content",
            &blob[from..],
            format!(
                "Content-Range: bytes {from}-{}/{}\r\n",
                blob.len() - 1,
                blob.len()
            ),
        ),
        _ => ("200 OK", &blob[..], String::new()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    if let Some(after) = stall {
        let _ = stream.write_all(&body[..after.min(body.len())]);
        let _ = stream.flush();
        // Silence, with the connection open, until the client gives up (or a long while).
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(120)));
        let mut sink = [0u8; 64];
        let _ = std::io::Read::read(&mut stream, &mut sink);
        return;
    }
    let _ = stream.write_all(&body[..cut.unwrap_or(body.len()).min(body.len())]);
}
