//! Where key sets come from: a local file (`file:///path` or a plain path) or an `http://`
//! URL. Fetching happens on the main thread while the configuration loads and afterwards on
//! one background refresher thread, never on an event loop. Workers read the current key
//! set through an atomic pointer swap.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tracing::{info, warn};

use super::jwt::KeySet;
use crate::http::{ChunkedDecoder, ChunkedLimits, Method, ResponseBody, ResponseHead, ResponseLimits};

/// Largest key set document accepted.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Connect, read and write deadline of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A key set that is refreshed in the background.
pub struct JwksSource {
    pub url: String,
    keys: ArcSwap<KeySet>,
    ttl: Duration,
    fetched: Mutex<Instant>,
    /// A token named a key this set does not have: refresh soon.
    wanted: AtomicBool,
}

impl JwksSource {
    /// Loads `url` now. A remote set that cannot be fetched starts empty (every token it
    /// should verify is rejected) and is retried by the refresher.
    pub fn open(url: &str, ttl: Duration) -> Result<Arc<JwksSource>, String> {
        let keys = match load(url) {
            Ok(keys) => keys,
            Err(error) if url.starts_with("http://") => {
                warn!(url, %error, "cannot fetch the key set yet; tokens are rejected until a refresh succeeds");
                KeySet { public: Vec::new(), signing: None, public_jwks: Vec::new() }
            }
            Err(error) => return Err(error),
        };
        let source = Arc::new(JwksSource {
            url: url.to_owned(),
            keys: ArcSwap::from_pointee(keys),
            ttl,
            fetched: Mutex::new(Instant::now()),
            wanted: AtomicBool::new(false),
        });
        if url.starts_with("http://") || url.starts_with("file://") || !url.contains("://") {
            Refresher::register(&source);
        }
        Ok(source)
    }

    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Asks the refresher to fetch this set again soon (a token named an unknown key).
    pub fn request_refresh(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    fn due(&self, now: Instant) -> bool {
        let fetched = self.fetched.lock().map_or(now, |at| *at);
        let age = now.saturating_duration_since(fetched);
        age >= self.ttl || (self.wanted.load(Ordering::Acquire) && age >= Duration::from_secs(1))
    }

    fn refresh(&self) {
        if let Ok(mut at) = self.fetched.lock() {
            *at = Instant::now();
        }
        self.wanted.store(false, Ordering::Release);
        match load(&self.url) {
            Ok(keys) => self.keys.store(Arc::new(keys)),
            Err(error) => warn!(url = %self.url, %error, "key set refresh failed; keeping the previous keys"),
        }
    }
}

/// Reads a key set from a file or an http URL (blocking).
pub fn load(url: &str) -> Result<KeySet, String> {
    let document = if let Some(rest) = url.strip_prefix("http://") {
        fetch(rest).map_err(|error| format!("cannot fetch {url}: {error}"))?
    } else if url.starts_with("https://") {
        return Err(format!("cannot fetch {url}: https key set URLs are not supported; use http:// on a trusted network or a file"));
    } else {
        let path = url.strip_prefix("file://").unwrap_or(url);
        let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read key set {path}: {error}"))?;
        if metadata.len() > MAX_DOCUMENT_BYTES as u64 {
            return Err(format!("key set {path} is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        std::fs::read(path).map_err(|error| format!("cannot read key set {path}: {error}"))?
    };
    KeySet::parse(&document).map_err(|error| format!("{url}: {error}"))
}

/// A minimal blocking HTTP/1.1 GET for key sets: `rest` is `host[:port]/path`.
fn fetch(rest: &str) -> Result<Vec<u8>, String> {
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, "/"),
    };
    let with_port = if authority.contains(':') && !authority.ends_with(']') { authority.to_owned() } else { format!("{authority}:80") };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolved to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, FETCH_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(FETCH_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(FETCH_TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = Instant::now() + FETCH_TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err("timed out".into());
        }
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
        if received.len() > MAX_DOCUMENT_BYTES + 64 * 1024 {
            return Err("response too large".into());
        }
    }
    let mut head = ResponseHead::new();
    let consumed = head
        .parse(&received, Method::Get, &ResponseLimits::default())
        .map_err(|e| format!("invalid response: {e}"))?
        .ok_or("incomplete response")?;
    if head.status() != 200 {
        return Err(format!("status {}", head.status()));
    }
    let body = &received[consumed..];
    match head.body() {
        ResponseBody::Length(length) => body.get(..length as usize).map(<[u8]>::to_vec).ok_or_else(|| "truncated body".into()),
        ResponseBody::CloseDelimited => Ok(body.to_vec()),
        ResponseBody::None => Ok(Vec::new()),
        ResponseBody::Chunked => {
            let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
            let mut out = Vec::new();
            let mut position = 0;
            loop {
                let step = decoder.decode(&body[position..]).map_err(|e| format!("invalid chunked body: {e}"))?;
                if let Some(range) = step.data.clone() {
                    out.extend_from_slice(&body[position + range.start..position + range.end]);
                }
                position += step.consumed;
                if step.done {
                    return Ok(out);
                }
                if step.consumed == 0 && step.data.is_none() {
                    return Err("truncated chunked body".into());
                }
            }
        }
    }
}

/// The background thread that refreshes key sets when their TTL passes.
struct Refresher {
    sources: Mutex<Vec<Weak<JwksSource>>>,
}

impl Refresher {
    fn register(source: &Arc<JwksSource>) {
        static REFRESHER: OnceLock<Arc<Refresher>> = OnceLock::new();
        let refresher = REFRESHER.get_or_init(|| {
            let refresher = Arc::new(Refresher { sources: Mutex::new(Vec::new()) });
            let running = Arc::clone(&refresher);
            let spawned = std::thread::Builder::new().name("portcullis-jwks".into()).spawn(move || running.run());
            if let Err(error) = spawned {
                warn!(%error, "cannot start the key set refresher; key sets will not be refreshed");
            }
            refresher
        });
        if let Ok(mut sources) = refresher.sources.lock() {
            sources.push(Arc::downgrade(source));
        }
    }

    fn run(&self) {
        info!("key set refresher started");
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            // Collect what is due without holding the lock while fetching.
            let due: Vec<Arc<JwksSource>> = match self.sources.lock() {
                Ok(mut sources) => {
                    sources.retain(|weak| weak.strong_count() > 0);
                    sources.iter().filter_map(Weak::upgrade).filter(|s| s.due(now)).collect()
                }
                Err(_) => return,
            };
            for source in due {
                source.refresh();
            }
        }
    }
}
