//! A stand-in for the Hugging Face Hub on 127.0.0.1, for the download tests of the engine, the
//! CLI and the plugin (each includes this file with `#[path]`).
//!
//! It answers what hf-hub 0.4.3's sync API asks (read from its `src/api/sync.rs`):
//! `GET /api/models/{repo}/revision/{rev}` with the file list (`sha`, `siblings[]` with
//! `rfilename`, `size`, `blobId` and, for LFS files, `lfs.sha256`), and
//! `GET /{repo}/resolve/{rev}/{file}` with `Range` support and the headers hf-hub reads:
//! `x-repo-commit`, `etag` (or `x-linked-etag` for LFS files, whose etag is their SHA-256),
//! `content-range`. Weights (`.safetensors`, `.pth`, `.bin`) are served as LFS files.
//!
//! One request per connection (`connection: close`), so that hanging up mid-body is a plain
//! socket shutdown. Requests are parsed by `httparse`.

#![allow(dead_code)] // Each including test binary uses a different part.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// The tiny test checkpoint (config, weights, VAE, tokenizer files) served by the tests.
pub const TINY_CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/tests/fixtures/tiny/checkpoint");

/// One file of a repository as the Hub describes it.
pub struct FakeFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    /// Served as an LFS file (etag = SHA-256) rather than a git file (etag = a blob id).
    pub lfs: bool,
}

impl FakeFile {
    /// The etag of a git file on the Hub is its 40-hex blob id; this stands in for it.
    fn blob_id(&self) -> String {
        self.sha256[..40].to_owned()
    }

    fn etag(&self) -> String {
        if self.lfs { self.sha256.clone() } else { self.blob_id() }
    }
}

pub struct FakeRepo {
    pub id: String,
    pub commit: String,
    pub files: Vec<FakeFile>,
}

impl FakeRepo {
    /// The files of folder `dir` as repository `id`, at a commit derived from the id.
    pub fn from_dir(id: &str, dir: &Path) -> FakeRepo {
        let mut files: Vec<FakeFile> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                let lfs = [".safetensors", ".pth", ".bin"].iter().any(|ext| name.ends_with(ext));
                let bytes = std::fs::read(&path).unwrap();
                FakeFile { sha256: hex_sha256(&bytes), name, bytes, lfs }
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        FakeRepo { commit: hex_sha256(id.as_bytes())[..40].to_owned(), id: id.to_owned(), files }
    }

    /// The bytes of file `name`.
    pub fn file(&self, name: &str) -> &[u8] {
        &self.files.iter().find(|f| f.name == name).unwrap().bytes
    }

    fn listing(&self) -> serde_json::Value {
        let siblings: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|file| {
                let mut entry = serde_json::json!({
                    "rfilename": file.name, "size": file.bytes.len(), "blobId": file.blob_id(),
                });
                if file.lfs {
                    entry["lfs"] =
                        serde_json::json!({ "sha256": file.sha256, "size": file.bytes.len(), "pointerSize": 134 });
                }
                entry
            })
            .collect();
        serde_json::json!({ "id": self.id, "sha": self.commit, "siblings": siblings })
    }
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A file request the server answered: hf-hub's metadata probe (`Range: bytes=0-0`) or a
/// transfer starting at `range_start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub file: String,
    pub probe: bool,
    pub range_start: u64,
}

#[derive(Default)]
struct Faults {
    /// File → bytes of body to send on its next transfer before hanging up.
    cut: HashMap<String, usize>,
    /// Files served with one byte changed (same size, so only the SHA-256 tells).
    corrupt: HashSet<String>,
    /// File → bytes of body to send on its next transfer before waiting for the gate.
    pause: HashMap<String, usize>,
}

/// How a response body goes out.
#[derive(Clone, Copy)]
enum Delivery {
    Whole,
    /// This many bytes, then the server hangs up.
    CutAfter(usize),
    /// This many bytes, then the rest once [`FakeHub::resume_transfers`] is called.
    PauseAfter(usize),
}

struct Shared {
    repos: Vec<FakeRepo>,
    faults: Mutex<Faults>,
    served: Mutex<Vec<Served>>,
    listings: Mutex<usize>,
    gate: Gate,
    stopping: AtomicBool,
}

/// The running server; dropping it stops it (later connections are refused).
pub struct FakeHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FakeHub {
    pub fn start(repos: Vec<FakeRepo>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            repos,
            faults: Mutex::default(),
            served: Mutex::default(),
            listings: Mutex::default(),
            gate: (Mutex::new(true), Condvar::new()),
            stopping: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeHub { addr, shared, accept: Some(accept) }
    }

    /// The base URL to use as `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next transfer of `file` sends `bytes` of its body and then the server hangs up.
    pub fn cut_next_transfer(&self, file: &str, bytes: usize) {
        self.shared.faults.lock().unwrap().cut.insert(file.to_owned(), bytes);
    }

    /// The next transfer of `file` sends `bytes` of its body, then waits for
    /// [`FakeHub::resume_transfers`].
    pub fn pause_next_transfer(&self, file: &str, bytes: usize) {
        *self.shared.gate.0.lock().unwrap() = false;
        self.shared.faults.lock().unwrap().pause.insert(file.to_owned(), bytes);
    }

    /// Lets a paused transfer go on.
    pub fn resume_transfers(&self) {
        *self.shared.gate.0.lock().unwrap() = true;
        self.shared.gate.1.notify_all();
    }

    /// Serves `file` with a changed byte (`true`) or intact again (`false`).
    pub fn corrupt(&self, file: &str, corrupt: bool) {
        let mut faults = self.shared.faults.lock().unwrap();
        if corrupt {
            faults.corrupt.insert(file.to_owned());
        } else {
            faults.corrupt.remove(file);
        }
    }

    /// Where each transfer (not probe) of `file` started, in order.
    pub fn transfer_starts(&self, file: &str) -> Vec<u64> {
        let served = self.shared.served.lock().unwrap();
        served.iter().filter(|s| s.file == file && !s.probe).map(|s| s.range_start).collect()
    }

    /// Every file request so far.
    pub fn served(&self) -> Vec<Served> {
        self.shared.served.lock().unwrap().clone()
    }

    /// How many file lists were asked for.
    pub fn listings(&self) -> usize {
        *self.shared.listings.lock().unwrap()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.resume_transfers();
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads one request head and answers it.
fn serve(mut stream: TcpStream, shared: &Shared) {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(&head) else {
        return respond(&mut stream, 400, &[], b"bad request");
    };
    let path = request.path.unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
    let range = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("range"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_owned);
    route(&mut stream, shared, &path, range.as_deref());
}

fn route(stream: &mut TcpStream, shared: &Shared, path: &str, range: Option<&str>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api", "models", owner, name, "revision", _rev] => {
            *shared.listings.lock().unwrap() += 1;
            match shared.repos.iter().find(|r| r.id == format!("{owner}/{name}")) {
                Some(repo) => {
                    let body = repo.listing().to_string();
                    respond(stream, 200, &[("content-type", "application/json".into())], body.as_bytes())
                }
                None => respond(stream, 404, &[("x-error-code", "RepoNotFound".into())], b"{}"),
            }
        }
        [owner, name, "resolve", _rev, file] => {
            let repo = shared.repos.iter().find(|r| r.id == format!("{owner}/{name}"));
            match repo.and_then(|r| Some((r, r.files.iter().find(|f| f.name == *file)?))) {
                Some((repo, file)) => send_file(stream, shared, repo, file, range),
                None => respond(stream, 404, &[("x-error-code", "EntryNotFound".into())], b""),
            }
        }
        _ => respond(stream, 404, &[], b""),
    }
}

fn send_file(stream: &mut TcpStream, shared: &Shared, repo: &FakeRepo, file: &FakeFile, range: Option<&str>) {
    let total = file.bytes.len() as u64;
    let (start, end) = match range.map(parse_range) {
        None => (0, total.saturating_sub(1)),
        Some(Some((start, end))) => (start, end.unwrap_or(total - 1).min(total - 1)),
        Some(None) => return respond(stream, 400, &[], b"bad range"),
    };
    let probe = range == Some("bytes=0-0");
    shared.served.lock().unwrap().push(Served { file: file.name.clone(), probe, range_start: start });
    if start >= total {
        return respond(stream, 416, &[("content-range", format!("bytes */{total}"))], b"");
    }
    let mut headers = vec![("x-repo-commit", repo.commit.clone()), ("accept-ranges", "bytes".into())];
    if file.lfs {
        headers.push(("x-linked-etag", format!("\"{}\"", file.sha256)));
        headers.push(("etag", format!("\"{}\"", file.blob_id())));
    } else {
        headers.push(("etag", format!("\"{}\"", file.blob_id())));
    }
    let mut body = file.bytes[start as usize..=end as usize].to_vec();
    let mut faults = shared.faults.lock().unwrap();
    if !probe && faults.corrupt.contains(&file.name) {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let delivery = if probe {
        Delivery::Whole
    } else if let Some(bytes) = faults.cut.remove(&file.name) {
        Delivery::CutAfter(bytes)
    } else if let Some(bytes) = faults.pause.remove(&file.name) {
        Delivery::PauseAfter(bytes)
    } else {
        Delivery::Whole
    };
    drop(faults);
    let status = if range.is_some() {
        headers.push(("content-range", format!("bytes {start}-{end}/{total}")));
        206
    } else {
        200
    };
    deliver(stream, Some(&shared.gate), status, &headers, &body, delivery);
}

/// `bytes=START-` or `bytes=START-END`.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let end = if end.is_empty() { None } else { Some(end.parse().ok()?) };
    Some((start.parse().ok()?, end))
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    deliver(stream, None, status, headers, body, Delivery::Whole);
}

/// Open (true) unless a paused transfer is to wait.
type Gate = (Mutex<bool>, Condvar);

/// Writes a response as `delivery` says (a paused one waits at `gate`), then hangs up.
fn deliver(
    stream: &mut TcpStream,
    gate: Option<&Gate>,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    delivery: Delivery,
) {
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let (first, rest) = match delivery {
        Delivery::Whole => (body, &body[body.len()..]),
        Delivery::CutAfter(bytes) => (&body[..bytes.min(body.len())], &body[body.len()..]),
        Delivery::PauseAfter(bytes) => body.split_at(bytes.min(body.len())),
    };
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(first)).and_then(|()| stream.flush());
    if let (Delivery::PauseAfter(_), Some((open, opened))) = (delivery, gate) {
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
    }
    let _ = stream.write_all(rest).and_then(|()| stream.flush());
    let _ = stream.shutdown(Shutdown::Both);
}
