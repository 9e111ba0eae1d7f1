//! The write request of each API: URL (path and query), headers and body
//! encoding. Pure: nothing here talks to the network.
//!
//! | api | request |
//! |---|---|
//! | `v3` | `POST /api/v3/write_lp?db=…&precision=nanosecond&accept_partial=…&no_sync=…`, `Authorization: Bearer …` |
//! | `v2` | `POST /api/v2/write?bucket=…&org=…&precision=ns`, `Authorization: Token …` |
//! | `v1` | `POST /write?db=…&rp=…&precision=ns`, `Authorization: Token …` |

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

/// Which write API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// InfluxDB 1.x `/write`.
    V1,
    /// InfluxDB 2.x `/api/v2/write` (also served by InfluxDB 3).
    V2,
    /// InfluxDB 3 `/api/v3/write_lp`.
    V3,
}

impl Api {
    /// Parses `'api'`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "v1" => Ok(Self::V1),
            "v2" => Ok(Self::V2),
            "v3" => Ok(Self::V3),
            other => Err(format!("unknown api {other:?}; expected v1, v2 or v3")),
        }
    }

    /// How line protocol escapes backslashes for this API's servers: the Go
    /// parser of 1.x/2.x keeps them literally, InfluxDB 3 unescapes `\\`.
    pub(crate) fn escaping(self) -> super::escape::Escaping {
        match self {
            Self::V1 | Self::V2 => super::escape::Escaping::Go,
            Self::V3 => super::escape::Escaping::Rust,
        }
    }
}

/// Unit of the timestamps in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    /// Nanoseconds.
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// Parses `'precision'` (`ns`, `us`, `ms`, `s`).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ns" => Ok(Self::Nanoseconds),
            "us" => Ok(Self::Microseconds),
            "ms" => Ok(Self::Milliseconds),
            "s" => Ok(Self::Seconds),
            other => Err(format!(
                "unknown precision {other:?}; expected ns, us, ms or s"
            )),
        }
    }

    /// Nanoseconds per unit.
    pub(crate) fn nanos(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
        }
    }

    /// The `precision` query value `api` expects.
    fn query_value(self, api: Api) -> &'static str {
        match (api, self) {
            (Api::V3, Self::Nanoseconds) => "nanosecond",
            (Api::V3, Self::Microseconds) => "microsecond",
            (Api::V3, Self::Milliseconds) => "millisecond",
            (Api::V3, Self::Seconds) => "second",
            (_, Self::Nanoseconds) => "ns",
            (Api::V1, Self::Microseconds) => "u",
            (_, Self::Microseconds) => "us",
            (_, Self::Milliseconds) => "ms",
            (_, Self::Seconds) => "s",
        }
    }
}

/// An API token. Its `Debug` never shows it, and it only ever leaves the
/// process in a header marked sensitive.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// Wraps a token (surrounding whitespace removed, as from a file).
    pub(crate) fn new(token: &str) -> Self {
        Self(token.trim().to_string())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Where and how to write: everything the request needs but the body.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Which API.
    pub api: Api,
    /// Server URL (`http://host:8086`, possibly with a path prefix).
    pub url: Url,
    /// Database (v1, v3) or bucket (v2).
    pub database: String,
    /// Organisation (v2 only).
    pub org: Option<String>,
    /// Retention policy (v1 only).
    pub retention_policy: Option<String>,
    /// Timestamp unit of the body.
    pub precision: Precision,
    /// v3: let the server write the good lines of a batch with bad ones.
    pub accept_partial: bool,
    /// v3: acknowledge before the WAL is persisted.
    pub no_sync: bool,
    /// Compress bodies with gzip.
    pub gzip: bool,
    /// API token, if any.
    pub token: Option<Token>,
}

impl Target {
    /// The write URL: path and query for the API.
    pub(crate) fn write_url(&self) -> Url {
        let mut url = self.url.clone();
        let path = match self.api {
            Api::V1 => "write",
            Api::V2 => "api/v2/write",
            Api::V3 => "api/v3/write_lp",
        };
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{path}"));
        url.set_query(None);
        {
            let mut query = url.query_pairs_mut();
            match self.api {
                Api::V1 => {
                    query.append_pair("db", &self.database);
                    if let Some(rp) = &self.retention_policy {
                        query.append_pair("rp", rp);
                    }
                }
                Api::V2 => {
                    query.append_pair("bucket", &self.database);
                    if let Some(org) = &self.org {
                        query.append_pair("org", org);
                    }
                }
                Api::V3 => {
                    query.append_pair("db", &self.database);
                }
            }
            query.append_pair("precision", self.precision.query_value(self.api));
            if self.api == Api::V3 {
                query.append_pair("accept_partial", bool_text(self.accept_partial));
                query.append_pair("no_sync", bool_text(self.no_sync));
            }
        }
        url
    }

    /// Headers of every write request.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(token) = &self.token {
            let scheme = match self.api {
                Api::V3 => "Bearer",
                Api::V1 | Api::V2 => "Token",
            };
            if let Ok(mut value) = HeaderValue::from_str(&format!("{scheme} {}", token.0)) {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
        }
        headers
    }

    /// The request body for `lines` (gzip-compressed when asked).
    pub(crate) fn body(&self, lines: &[u8]) -> std::io::Result<bytes::Bytes> {
        if !self.gzip {
            return Ok(bytes::Bytes::copy_from_slice(lines));
        }
        let mut encoder = GzEncoder::new(Vec::with_capacity(lines.len() / 4), Compression::fast());
        encoder.write_all(lines)?;
        encoder.finish().map(bytes::Bytes::from)
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// Whether a token header value could be built (a token with control
/// characters cannot be sent).
pub(crate) fn token_is_sendable(token: &Token) -> bool {
    HeaderValue::from_str(&format!("Bearer {}", token.0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(api: Api) -> Target {
        Target {
            api,
            url: Url::parse("http://127.0.0.1:8086/prefix/").unwrap(),
            database: "fac tory&x".into(),
            org: Some("acme".into()),
            retention_policy: Some("autogen".into()),
            precision: Precision::Microseconds,
            accept_partial: true,
            no_sync: false,
            gzip: true,
            token: Some(Token::new(" secret\n")),
        }
    }

    #[test]
    fn each_api_has_its_path_and_query() {
        assert_eq!(
            target(Api::V1).write_url().as_str(),
            "http://127.0.0.1:8086/prefix/write?db=fac+tory%26x&rp=autogen&precision=u"
        );
        assert_eq!(
            target(Api::V2).write_url().as_str(),
            "http://127.0.0.1:8086/prefix/api/v2/write?bucket=fac+tory%26x&org=acme&precision=us"
        );
        assert_eq!(
            target(Api::V3).write_url().as_str(),
            "http://127.0.0.1:8086/prefix/api/v3/write_lp?db=fac+tory%26x&precision=microsecond&accept_partial=true&no_sync=false"
        );
    }

    #[test]
    fn token_is_hidden_from_debug_and_marked_sensitive() {
        let t = target(Api::V3);
        assert!(!format!("{t:?}").contains("secret"));
        let headers = t.headers();
        let auth = headers.get(AUTHORIZATION).unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer secret");
        assert!(auth.is_sensitive());
        assert!(!format!("{headers:?}").contains("secret"));
        assert_eq!(
            target(Api::V1).headers()[AUTHORIZATION].to_str().unwrap(),
            "Token secret"
        );
    }

    #[test]
    fn gzip_bodies_decompress_to_the_lines() {
        use std::io::Read;
        let body = target(Api::V1).body(b"m f=1 1\n").unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "m f=1 1\n");
    }
}
