//! Talking to the S3 test server without an SDK: plain HTTP/1.1 requests,
//! unsigned (moto does not check signatures), and the AWS environment the
//! `spindle` binary reads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// Credentials the tests use; any value works with moto.
pub const ACCESS_KEY: &str = "spindle-test";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// Sends `METHOD path` to `endpoint` (`http://host:port`) and returns the
/// status code and the body. Panics, naming the endpoint, when the server
/// cannot be reached.
pub fn request(endpoint: &str, method: &str, path: &str) -> (u16, String) {
    let authority = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("S3 endpoint {endpoint} is not http://host:port"))
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("S3 server at {endpoint} is unreachable: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("sending {method} {path} to {endpoint}: {e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("reading the answer to {method} {path} from {endpoint}: {e}"));
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{endpoint} answered {method} {path} with {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Creates `bucket` (moto and MinIO do not create buckets on first write).
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let (status, body) = request(endpoint, "PUT", &format!("/{bucket}"));
    assert_eq!(
        status, 200,
        "creating bucket {bucket} at {endpoint}: {body}"
    );
}

/// How many multipart uploads in `bucket` were started and never completed
/// or aborted.
pub fn pending_uploads(endpoint: &str, bucket: &str) -> usize {
    let (status, body) = request(endpoint, "GET", &format!("/{bucket}?uploads"));
    assert_eq!(status, 200, "listing multipart uploads of {bucket}: {body}");
    body.matches("<Upload>").count()
}

/// The keys of every object in `bucket` whose key starts with `prefix`
/// (ListObjectsV2, page by page).
pub fn list_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/{bucket}?list-type=2&prefix={}", query_escape(prefix));
        if let Some(token) = &token {
            path.push_str(&format!("&continuation-token={}", query_escape(token)));
        }
        let (status, body) = request(endpoint, "GET", &path);
        assert_eq!(status, 200, "listing {bucket}/{prefix}: {body}");
        keys.extend(elements(&body, "Key"));
        token = elements(&body, "NextContinuationToken").into_iter().next();
        if token.is_none() {
            return keys;
        }
    }
}

/// The texts of every `<name>…</name>` element of an XML answer.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close))
        .map(|(text, _)| {
            text.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Gives `command` exactly the AWS environment that points object_store at
/// `endpoint` (other `AWS_*` variables of the test process are removed).
pub fn with_aws_env<'c>(command: &'c mut Command, endpoint: &str) -> &'c mut Command {
    without_aws_env(command)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ACCESS_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
}

/// The same through the variables the AWS SDKs and CLI read
/// (`AWS_ENDPOINT_URL` rather than `AWS_ENDPOINT`), and no region: the
/// default (`us-east-1`) must do.
pub fn with_standard_aws_env<'c>(command: &'c mut Command, endpoint: &str) -> &'c mut Command {
    without_aws_env(command)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ACCESS_KEY)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
}

/// Removes every `AWS_*` variable of the test process from `command`.
fn without_aws_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
}
