//! Headless Chromium driven over the W3C WebDriver protocol: Debian's
//! `chromedriver` (package `chromium-driver`, installed by
//! `scripts/setup.sh`) started on a free port, spoken to with the plain HTTP
//! client in [`crate::http`]. Waits poll a condition with a timeout; nothing
//! sleeps for a fixed time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::request;
use crate::server::wait_for;

/// The key under which WebDriver answers an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session (and the chromedriver serving it).
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    url: String,
    session: String,
    /// chromedriver's log.
    pub log: PathBuf,
}

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a
    /// `width`×`height` window. `SPINDLE_TEST_CHROMEDRIVER` and
    /// `SPINDLE_TEST_CHROMIUM` name other binaries.
    pub fn start(log_dir: &Path, width: u32, height: u32) -> Self {
        let driver_bin = program("SPINDLE_TEST_CHROMEDRIVER", "chromedriver");
        let chromium = program("SPINDLE_TEST_CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let log = log_dir.join(format!("chromedriver-{port}.log"));
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {driver_bin}: {e} (scripts/setup.sh installs chromium and chromium-driver)")
            });
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            let status = request(&url, "GET", "/status", &[], None);
            (status.status == 200 && status.json()["value"]["ready"] == true).then_some(())
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}")],
            },
        }}});
        let mut browser = Self {
            driver,
            url,
            session: String::new(),
            log,
        };
        let created = browser.call("POST", "/session", Some(&capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; its `value`. Fails the test on an error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.try_call(method, path, body);
        assert_eq!(status, 200, "WebDriver {method} {path}: {value}");
        value
    }

    fn try_call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes());
        let answer = request(
            &self.url,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_deref(),
        );
        (answer.status, answer.json()["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(&json!({"url": url})),
        );
    }

    /// The element `css` selects, if there is one.
    pub fn find(&self, css: &str) -> Option<String> {
        let body = json!({"using": "css selector", "value": css});
        let (status, value) = self.try_call("POST", &self.session_path("/element"), Some(&body));
        (status == 200).then(|| value[ELEMENT].as_str().map(str::to_string))?
    }

    fn element(&self, css: &str) -> String {
        self.find(css)
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    /// Clicks the element `css` selects.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            Some(&json!({})),
        );
    }

    /// Clears the field `css` selects and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/clear")),
            Some(&json!({})),
        );
        let body = json!({"text": text});
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/value")),
            Some(&body),
        );
    }

    /// Runs `script` (a function body; `return` answers) in the page.
    pub fn script(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.call("POST", &self.session_path("/execute/sync"), Some(&body))
    }

    /// Polls `script` until it returns something other than null or false,
    /// failing after `timeout` with `what`.
    pub fn wait_until(&self, what: &str, timeout: Duration, script: &str) -> Value {
        wait_for(what, timeout, || {
            let value = self.script(script);
            (!value.is_null() && value != Value::Bool(false)).then_some(value)
        })
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64_decode(encoded.as_str().unwrap_or_default());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (WebDriver's screenshots), padding and line breaks ignored.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, s)| acc | (u32::from(*s) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// Where tests keep what a person should be able to look at afterwards:
/// `$CARGO_TARGET_DIR/test-artifacts` (or the target folder this test
/// binary was built in).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/<profile>/deps/e2e-… → target
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("test-artifacts")
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8="), b"hello");
        assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
        assert_eq!(base64_decode("aGk"), b"hi");
        assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    }
}
