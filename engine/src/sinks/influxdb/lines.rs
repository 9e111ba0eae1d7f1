//! A batch of encoded lines: the body and where each line ends, so a batch
//! can be split (on 413) and rejected lines found.

use std::time::Instant;

/// Lines waiting to be sent, or being sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lines {
    /// The lines, each ending in `\n`.
    pub body: Vec<u8>,
    /// Offset just past each line's `\n`.
    ends: Vec<usize>,
    /// When the first line arrived.
    pub since: Option<Instant>,
}

impl Lines {
    /// Marks the end of a line just appended to `body`.
    pub(crate) fn push_end(&mut self) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        self.ends.push(self.body.len());
    }

    /// Number of lines.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no line.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The text of each line, without its newline.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.body[start..end.saturating_sub(1).max(start)])
    }

    /// Lines from texts (tests).
    #[cfg(test)]
    pub(crate) fn from_texts(texts: &[&str]) -> Self {
        let mut lines = Self::default();
        for text in texts {
            lines.body.extend_from_slice(text.as_bytes());
            lines.body.push(b'\n');
            lines.push_end();
        }
        lines
    }

    /// The first half of the lines and the rest.
    pub(crate) fn split(self) -> (Self, Self) {
        let half = self.ends.len() / 2;
        let cut = if half == 0 { 0 } else { self.ends[half - 1] };
        let first = Self {
            body: self.body[..cut].to_vec(),
            ends: self.ends[..half].to_vec(),
            since: self.since,
        };
        let second = Self {
            body: self.body[cut..].to_vec(),
            ends: self.ends[half..].iter().map(|e| e - cut).collect(),
            since: self.since,
        };
        (first, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Lines {
        Lines::from_texts(texts)
    }

    #[test]
    fn split_halves_keep_every_line_once() {
        let all = lines(&["a f=1", "b f=2", "c f=3"]);
        let (first, second) = all.split();
        let text = |l: &Lines| {
            l.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(text(&first), ["a f=1"]);
        assert_eq!(text(&second), ["b f=2", "c f=3"]);
        assert_eq!(second.body, b"b f=2\nc f=3\n");
        let (one, rest) = lines(&["x f=1"]).split();
        assert!(one.is_empty());
        assert_eq!(rest.len(), 1);
    }
}
