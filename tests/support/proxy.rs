//! A small HTTP/1.1 proxy for fault tests: it sits between a sink and its
//! real server and, per request, forwards it, answers it itself (503 with
//! `Retry-After`, 413, 400 … for the next K requests, or 413 for bodies over
//! a size), throttles it, swallows it (a black hole: the connection is
//! accepted and read but never answered), or drops the connection.
//!
//! It understands just enough HTTP to find where each request and answer
//! ends (`Content-Length`, chunked, or no body), so faults apply per request
//! on kept-alive connections. One thread per connection; std only.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::last_chunk_read;

/// What the proxy does with the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the server and relay its answer.
    PassThrough,
    /// Read requests, never answer or forward them.
    BlackHole,
    /// Forward, but move request and answer bytes at this many bytes/s.
    Slow(u64),
    /// Close every connection as soon as it is accepted.
    Refuse,
    /// Answer `status` (with `headers` and `body`) to the next `times`
    /// requests, then forward again.
    Answer {
        /// The status code.
        status: u16,
        /// Extra headers, e.g. `("Retry-After", "1")`.
        headers: Vec<(String, String)>,
        /// The body (JSON for InfluxDB).
        body: String,
        /// How many requests get it.
        times: u64,
    },
    /// Answer 413 to every request whose body is larger than this; forward
    /// the others.
    MaxBody(usize),
}

/// What the proxy has seen.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests read.
    pub requests: AtomicU64,
    /// Requests forwarded and answered by the server.
    pub forwarded: AtomicU64,
    /// Requests the proxy answered itself.
    pub answered: AtomicU64,
    /// Requests swallowed by the black hole.
    pub swallowed: AtomicU64,
    /// Request body bytes forwarded.
    pub bytes_forwarded: AtomicU64,
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A pass-through proxy to `upstream` (`http://host:port`) on a free port.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let address = listener.local_addr().unwrap();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let fault = Arc::new(Mutex::new(Fault::PassThrough));
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            upstream,
            fault: Arc::clone(&fault),
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            link: Arc::new(Mutex::new(Instant::now())),
        };
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(client));
            }
        });
        Self {
            url: format!("http://{address}"),
            fault,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    /// Changes what happens to the next requests (connections hanging in
    /// the black hole stay there until their client gives up).
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// What the proxy does now.
    pub fn fault(&self) -> Fault {
        self.fault.lock().unwrap().clone()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What to do with one request.
enum Action {
    Forward(Option<u64>),
    Answer(Vec<u8>),
    Swallow,
    Drop,
}

#[derive(Debug, Clone)]
struct Shared {
    upstream: String,
    fault: Arc<Mutex<Fault>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    link: Arc<Link>,
}

impl Shared {
    fn serve(&self, client: TcpStream) {
        if *self.fault.lock().unwrap() == Fault::Refuse {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        // A read timeout only so that a stopped proxy's threads end.
        let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
        let mut client = Conn::new(client);
        let mut server: Option<Conn> = None;
        while let Some(request) = client.read_message(Kind::Request, &self.stop) {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            match self.decide(&request) {
                Action::Drop => return,
                Action::Swallow => {
                    self.stats.swallowed.fetch_add(1, Ordering::Relaxed);
                    // Read (and drop) whatever comes until the client gives up.
                    while client.read_more(&self.stop) {
                        client.buffer.clear();
                    }
                    return;
                }
                Action::Answer(answer) => {
                    self.stats.answered.fetch_add(1, Ordering::Relaxed);
                    if client.stream.write_all(&answer).is_err() {
                        return;
                    }
                }
                Action::Forward(rate) => {
                    let Some(answer) = self.forward(&mut server, &request, rate) else {
                        return;
                    };
                    let throttle = rate.map(|r| (r, self.link.as_ref()));
                    if send(&mut client.stream, &answer, throttle).is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn decide(&self, request: &[u8]) -> Action {
        let mut fault = self.fault.lock().unwrap();
        match &mut *fault {
            Fault::PassThrough => Action::Forward(None),
            Fault::Slow(rate) => Action::Forward(Some(*rate)),
            Fault::BlackHole => Action::Swallow,
            Fault::Refuse => Action::Drop,
            Fault::MaxBody(max) if body_len(request) > *max => {
                Action::Answer(answer(413, &[], r#"{"error":"Request Entity Too Large"}"#))
            }
            Fault::MaxBody(_) => Action::Forward(None),
            Fault::Answer {
                status,
                headers,
                body,
                times,
            } => {
                let reply = answer(*status, headers, body);
                *times = times.saturating_sub(1);
                if *times == 0 {
                    *fault = Fault::PassThrough;
                }
                Action::Answer(reply)
            }
        }
    }

    /// Sends `request` to the server (over this client's own connection,
    /// opened on first use) and reads its answer; `None` on a network error.
    fn forward(
        &self,
        server: &mut Option<Conn>,
        request: &[u8],
        rate: Option<u64>,
    ) -> Option<Vec<u8>> {
        if server.is_none() {
            let stream = TcpStream::connect(&self.upstream).ok()?;
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            *server = Some(Conn::new(stream));
        }
        let conn = server.as_mut()?;
        let throttle = rate.map(|r| (r, self.link.as_ref()));
        if send(&mut conn.stream, request, throttle).is_err() {
            *server = None;
            return None;
        }
        let Some(response) = conn.read_message(Kind::Response, &self.stop) else {
            *server = None;
            return None;
        };
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_forwarded
            .fetch_add(body_len(request) as u64, Ordering::Relaxed);
        Some(response)
    }
}

/// Writes `data`; when throttled, at most `rate` bytes per second over
/// every connection together (one slow link).
fn send(
    stream: &mut TcpStream,
    data: &[u8],
    throttle: Option<(u64, &Link)>,
) -> std::io::Result<()> {
    let Some((rate, link)) = throttle else {
        return stream.write_all(data);
    };
    // Slices of 1/20 s worth of bytes, each given its turn on the link; the
    // sleep *is* the throttle.
    let slice = (rate / 20).max(1) as usize;
    for chunk in data.chunks(slice) {
        let turn = {
            let mut free = link.lock().unwrap();
            let start = (*free).max(Instant::now());
            *free = start + Duration::from_secs_f64(chunk.len() as f64 / rate as f64);
            *free
        };
        if let Some(wait) = turn.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        stream.write_all(chunk)?;
    }
    Ok(())
}

/// When the slow link is free next.
type Link = Mutex<Instant>;

/// A whole answer with a `Content-Length`.
fn answer(status: u16, headers: &[(String, String)], body: &str) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

/// A connection and the bytes read from it beyond the last message.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Reads one whole message; `None` when the peer closed first (or the
    /// proxy stopped).
    fn read_message(&mut self, kind: Kind, stop: &AtomicBool) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = message_end(&self.buffer, kind) {
                let rest = self.buffer.split_off(end);
                return Some(std::mem::replace(&mut self.buffer, rest));
            }
            if !self.read_more(stop) {
                // An answer without a length ends with its connection.
                let whole = kind == Kind::Response && header_end(&self.buffer).is_some();
                return whole.then(|| std::mem::take(&mut self.buffer));
            }
        }
    }

    /// Appends what arrives next; false at the end of the connection.
    fn read_more(&mut self, stop: &AtomicBool) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
    }
}

fn header_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A header's value (names compared without case).
fn header(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// Where the first whole message in `raw` ends, if it is all there. A
/// request without a length has no body; so has an answer with status
/// 1xx, 204 or 304. An answer with neither length nor chunks runs to the
/// end of its connection (`None` here).
fn message_end(raw: &[u8], kind: Kind) -> Option<usize> {
    let start = header_end(raw)?;
    let head = String::from_utf8_lossy(&raw[..start]);
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let body = &raw[start..];
        return last_chunk_read(body).then(|| start + chunked_len(body));
    }
    if let Some(length) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return (raw.len() >= start + length).then_some(start + length);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    let empty = kind == Kind::Request || status.is_some_and(|s| s < 200 || s == 204 || s == 304);
    empty.then_some(start)
}

/// The length of a complete chunked body, trailer included.
fn chunked_len(body: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let Some(end) = body[at..].windows(2).position(|w| w == b"\r\n") else {
            return body.len();
        };
        let size_text = String::from_utf8_lossy(&body[at..at + end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return at + end + 4;
        }
        at += end + 2 + size + 2;
    }
}

/// The body length of a whole request.
fn body_len(request: &[u8]) -> usize {
    header_end(request).map_or(0, |start| request.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server answering 204 to every request.
    fn upstream() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut conn = Conn::new(stream.try_clone().unwrap());
                    let stop = AtomicBool::new(false);
                    while conn.read_message(Kind::Request, &stop).is_some() {
                        let answer = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
                        let _ = (&stream).write_all(answer);
                    }
                });
            }
        });
        format!("http://{address}")
    }

    #[test]
    fn answers_k_requests_then_forwards_and_refuses_when_told() {
        let proxy = Proxy::start(&upstream());
        proxy.set(Fault::Answer {
            status: 503,
            headers: vec![("Retry-After".into(), "1".into())],
            body: "{}".into(),
            times: 2,
        });
        let post = || crate::http::request(&proxy.url, "POST", "/write", &[], Some(b"m f=1"));
        let first = post();
        assert_eq!(first.status, 503);
        assert_eq!(first.header("retry-after"), Some("1"));
        assert_eq!([post().status, post().status], [503, 204]);
        assert_eq!(proxy.fault(), Fault::PassThrough);
        proxy.set(Fault::MaxBody(3));
        assert_eq!(post().status, 413);
        proxy.set(Fault::Refuse);
        let mut stream = TcpStream::connect(proxy.url.trim_start_matches("http://")).unwrap();
        let _ = stream.write_all(b"GET /ping HTTP/1.1\r\n\r\n");
        let mut buffer = [0u8; 64];
        assert_eq!(
            stream.read(&mut buffer).unwrap_or(0),
            0,
            "closed unanswered"
        );
        let stats = proxy.stats();
        assert_eq!(stats.answered.load(Ordering::Relaxed), 3);
        assert_eq!(stats.forwarded.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn messages_end_where_their_framing_says() {
        let request = b"POST /write HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(message_end(request, Kind::Request), Some(request.len() - 3));
        assert_eq!(
            message_end(b"GET /ping HTTP/1.1\r\n\r\n", Kind::Request),
            Some(22)
        );
        assert_eq!(
            message_end(b"HTTP/1.1 204 No Content\r\n\r\n", Kind::Response),
            Some(27)
        );
        assert_eq!(
            message_end(b"HTTP/1.1 200 OK\r\n\r\nbody", Kind::Response),
            None
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nX";
        assert_eq!(
            message_end(chunked, Kind::Response),
            Some(chunked.len() - 1)
        );
    }
}
