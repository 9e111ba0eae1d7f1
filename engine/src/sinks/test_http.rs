//! A local HTTP server for the HTTP sinks' tests: a tokio listener speaking
//! just enough HTTP/1.1, answering from a script and recording requests.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::side_output::SideOutput;
use crate::sinks::SinkContext;

/// The one table `create_table` declares, its options with `'connector'`
/// pulled, and a context whose dead letters go under `dir`.
pub(crate) fn table(
    create_table: &str,
    dir: &std::path::Path,
) -> (
    spindle_sql::ddl::TableDef,
    spindle_sql::ddl::Options,
    SinkContext,
) {
    let job = spindle_sql::Job::parse(create_table).unwrap();
    let table = job.tables().next().unwrap().clone();
    let mut options = table.options.clone();
    options.pull_required("connector").unwrap();
    let context = SinkContext {
        dead_letter: SideOutput::new(dir.join("dead-letter.jsonl")),
        job: "test".into(),
    };
    (table, options, context)
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, gunzipped when it says so.
    pub(crate) fn text(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        } else {
            String::from_utf8(self.body.clone()).unwrap()
        }
    }
}

/// What the server does with the next request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Status, extra headers, body.
    Status(u16, &'static str, &'static str),
    /// Close the connection without answering.
    Hang,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) requests: Vec<Request>,
    pub(crate) script: VecDeque<Reply>,
    /// Reply to every request after the script with this.
    pub(crate) then: Option<Reply>,
}

pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) state: Arc<Mutex<State>>,
    /// Each answer takes a permit (tests start with plenty).
    pub(crate) gate: Arc<Semaphore>,
}

impl Server {
    pub(crate) async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let gate = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
        let (s, g) = (Arc::clone(&state), Arc::clone(&gate));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, Arc::clone(&s), Arc::clone(&g)));
            }
        });
        Self { url, state, gate }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits (with a deadline) until `n` requests have arrived.
    pub(crate) async fn await_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.requests().len() < n {
            assert!(
                Instant::now() < deadline,
                "{} requests, expected {n}",
                self.requests().len()
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn answer(mut socket: TcpStream, state: Arc<Mutex<State>>, gate: Arc<Semaphore>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        let next = state.script.pop_front();
        next.or_else(|| state.then.clone())
            .unwrap_or(Reply::Status(204, "", ""))
    };
    let Ok(permit) = gate.acquire().await else {
        return;
    };
    permit.forget();
    if let Reply::Status(code, headers, body) = reply {
        let response = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes()).await;
    }
    let _ = socket.shutdown().await;
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(Request {
        method,
        target,
        headers,
        body: data[head_end..head_end + length].to_vec(),
    })
}
