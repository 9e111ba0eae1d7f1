//! Line-protocol escaping of measurement names, tag keys and values, field
//! keys and string field values.
//!
//! The two parser families disagree about backslashes: InfluxDB 3 (Rust,
//! the `influxdb-line-protocol` crate) reads `\\` as one backslash, while
//! the Go parser of InfluxDB 1.x/2.x keeps every backslash that does not
//! precede a comma, space or equals sign literally (`a\\b` is stored as
//! `a\\b`). So names are escaped per [`Escaping`]; a name the target cannot
//! carry (a newline anywhere, a backslash at the end; for Go, a backslash
//! before an escaped character) is refused, never sent garbled. String field
//! values escape `"` and `\` the same way for both.

/// Escaping rules of the target's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// InfluxDB 1.x / 2.x.
    Go,
    /// InfluxDB 3.
    Rust,
}

/// Which element is escaped (they differ in the characters that need it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    /// A measurement name: commas and spaces.
    Measurement,
    /// A tag key, tag value or field key: commas, equals signs and spaces.
    Key,
}

impl Element {
    fn specials(self) -> &'static [u8] {
        match self {
            Self::Measurement => b", ",
            Self::Key => b",= ",
        }
    }
}

/// Why a name cannot be written.
pub(crate) type Unrepresentable = &'static str;

/// Appends `text` escaped as `element` to `out`; on error `out` is unchanged.
pub(crate) fn escape_name(
    out: &mut Vec<u8>,
    text: &str,
    element: Element,
    escaping: Escaping,
) -> Result<(), Unrepresentable> {
    if text.contains('\n') {
        return Err("contains a newline, which line protocol cannot carry");
    }
    if escaping == Escaping::Rust && text.ends_with('\\') {
        return Err("ends with a backslash, which InfluxDB 3 line protocol cannot carry");
    }
    let specials = element.specials();
    let start = out.len();
    for &b in text.as_bytes() {
        if specials.contains(&b) || (b == b'\\' && escaping == Escaping::Rust) {
            out.push(b'\\');
        }
        out.push(b);
    }
    if escaping == Escaping::Go
        && text.contains('\\')
        && !go_reads_back(&out[start..], text, element)
    {
        out.truncate(start);
        return Err(
            "has a backslash before a comma, space or equals sign or at its end, \
             which InfluxDB 1.x/2.x line protocol cannot carry",
        );
    }
    Ok(())
}

/// Does the Go parser read `encoded` back as `original`? It skips the byte
/// after every backslash while scanning for the end of the element, then
/// unescapes only `\` before a special character.
fn go_reads_back(encoded: &[u8], original: &str, element: Element) -> bool {
    let specials = element.specials();
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'\\' {
            i += 2;
        } else if specials.contains(&encoded[i]) {
            return false;
        } else {
            i += 1;
        }
    }
    if i != encoded.len() {
        return false;
    }
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut j = 0;
    while j < encoded.len() {
        if encoded[j] == b'\\' && encoded.get(j + 1).is_some_and(|c| specials.contains(c)) {
            j += 1;
        }
        decoded.push(encoded[j]);
        j += 1;
    }
    decoded == original.as_bytes()
}

/// Appends `text` as a quoted string field value (`"` and `\` escaped;
/// newlines are allowed inside quotes).
pub(crate) fn quote_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &b in text.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str, element: Element, escaping: Escaping) -> Result<String, Unrepresentable> {
        let mut out = b"x".to_vec();
        let result = escape_name(&mut out, text, element, escaping);
        if result.is_err() {
            assert_eq!(out, b"x", "nothing appended on error");
        }
        result.map(|()| String::from_utf8(out[1..].to_vec()).unwrap())
    }

    #[test]
    fn commas_spaces_and_equals_are_escaped_where_they_matter() {
        for escaping in [Escaping::Go, Escaping::Rust] {
            assert_eq!(
                name("a,b c=d", Element::Measurement, escaping).unwrap(),
                r"a\,b\ c=d"
            );
            assert_eq!(
                name("a,b c=d", Element::Key, escaping).unwrap(),
                r"a\,b\ c\=d"
            );
            assert_eq!(name("plain", Element::Key, escaping).unwrap(), "plain");
        }
    }

    #[test]
    fn backslashes_follow_the_target_parser() {
        assert_eq!(name(r"a\b", Element::Key, Escaping::Rust).unwrap(), r"a\\b");
        assert_eq!(name(r"a\b", Element::Key, Escaping::Go).unwrap(), r"a\b");
        assert!(name(r"a\", Element::Key, Escaping::Rust).is_err());
        assert_eq!(
            name(r"a\\,", Element::Key, Escaping::Rust).unwrap(),
            r"a\\\\\,"
        );
        assert!(name(r"a\", Element::Key, Escaping::Go).is_err());
        assert!(name(r"a\,b", Element::Key, Escaping::Go).is_err());
        assert!(name(r"a\=b", Element::Key, Escaping::Go).is_err());
        // `=` needs no escape in a measurement, so a backslash before it is fine.
        assert_eq!(
            name(r"a\=b", Element::Measurement, Escaping::Go).unwrap(),
            r"a\=b"
        );
    }

    #[test]
    fn newlines_cannot_be_names() {
        for escaping in [Escaping::Go, Escaping::Rust] {
            assert!(name("a\nb", Element::Key, escaping).is_err());
            assert!(name("a\nb", Element::Measurement, escaping).is_err());
        }
    }

    #[test]
    fn strings_escape_quotes_and_backslashes_and_keep_newlines() {
        let mut out = Vec::new();
        quote_string(&mut out, "say \"hi\" \\ o/\nbye");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"say \\\"hi\\\" \\\\ o/\nbye\""
        );
    }
}
