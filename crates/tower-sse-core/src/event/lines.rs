//! Line splitting for the encoder: one search finds a field's line breaks and gives its exact
//! encoded length, so the output is reserved once at its final size; the writer then copies
//! the lines without searching again.

use bytes::{BufMut, BytesMut};

/// Line breaks remembered per field. A text with more is searched again past the last one
/// remembered (only that tail), so the stack cost stays fixed whatever the input.
const REMEMBERED: usize = 64;

/// A field that may span lines (`data`, a comment), planned for writing: its exact encoded
/// length and where its first line breaks are.
pub(super) struct FieldLines<'t> {
    text: &'t [u8],
    /// Offsets of the first `count` line breaks (of the CR of a CRLF).
    breaks: [u32; REMEMBERED],
    count: usize,
    /// Whether `breaks[..count]` holds every line break of `text`.
    complete: bool,
    /// The exact number of bytes [`FieldLines::put`] writes.
    len: usize,
}

impl<'t> FieldLines<'t> {
    /// Finds the line breaks of `text` (CRLF, CR or LF; CRLF is one break), whose first one
    /// is at `first`, for lines written as `prefix` + line + LF, or as `empty` for an empty
    /// line.
    pub(super) fn scan(text: &'t [u8], first: usize, prefix: &[u8], empty: &[u8]) -> Self {
        let mut this = Self {
            text,
            breaks: [0; REMEMBERED],
            count: 0,
            // Offsets past `u32::MAX` are not remembered: such a text is searched again.
            complete: u32::try_from(text.len()).is_ok(),
            len: 0,
        };
        let line_len = |len: usize| {
            if len == 0 {
                empty.len()
            } else {
                prefix.len() + len + 1
            }
        };
        // Text with no CR (the usual case: LF line ends, or one line) is searched for one
        // byte, which is cheaper per line than searching for two; one pass over the text
        // decides.
        let lf_only = memchr::memchr(b'\r', &text[first..]).is_none();
        let mut start = 0;
        let mut next = Some(first);
        while let Some(offset) = next {
            let end = start + offset;
            this.len += line_len(offset);
            if this.complete && this.count < REMEMBERED {
                // Checked above: `text.len()` fits in a u32.
                this.breaks[this.count] = end as u32;
                this.count += 1;
            } else {
                this.complete = false;
            }
            start = end + break_width(text, end);
            next = if lf_only {
                memchr::memchr(b'\n', &text[start..])
            } else {
                memchr::memchr2(b'\n', b'\r', &text[start..])
            };
        }
        this.len += line_len(text.len() - start);
        this
    }

    /// The exact number of bytes [`FieldLines::put`] writes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Writes every line as its own field, with the `prefix` and `empty` given to `scan`.
    #[inline(always)]
    pub(super) fn put(&self, buf: &mut BytesMut, prefix: &'static [u8], empty: &'static [u8]) {
        let text = self.text;
        let mut start = 0;
        for &end in &self.breaks[..self.count] {
            let end = end as usize;
            if text[end] == b'\n' && end > start {
                // A line ended by LF is copied together with its LF.
                buf.put_slice(prefix);
                buf.put_slice(&text[start..=end]);
            } else {
                put_field(buf, prefix, empty, &text[start..end]);
            }
            start = end + break_width(text, end);
        }
        if self.complete {
            put_field(buf, prefix, empty, &text[start..]);
        } else {
            put_lines(buf, prefix, empty, &text[start..]);
        }
    }
}

/// The length of the line break at `at`: 2 for CRLF, else 1.
#[inline(always)]
fn break_width(text: &[u8], at: usize) -> usize {
    1 + usize::from(text[at] == b'\r' && text.get(at + 1) == Some(&b'\n'))
}

/// Writes `prefix`, `value` and LF, or just `empty` for an empty value.
///
/// `prefix` is the field name and `": "`: always one space, so a value that itself starts
/// with a space keeps it, because the decoder strips exactly one. `empty` is the name and
/// `":\n"`. Both are constants at every call, so inlined they become plain stores.
#[inline(always)]
pub(super) fn put_field(
    buf: &mut BytesMut,
    prefix: &'static [u8],
    empty: &'static [u8],
    value: &[u8],
) {
    if value.is_empty() {
        buf.put_slice(empty);
    } else {
        buf.put_slice(prefix);
        buf.put_slice(value);
        buf.put_u8(b'\n');
    }
}

/// The length of `text` written as [`put_lines`] does.
pub(super) fn lines_len(text: &[u8], prefix: &[u8], empty: &[u8]) -> usize {
    let line_len = |len: usize| {
        if len == 0 {
            empty.len()
        } else {
            prefix.len() + len + 1
        }
    };
    let (mut len, mut rest) = (0, text);
    while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
        len += line_len(end);
        rest = &rest[end + break_width(rest, end)..];
    }
    len + line_len(rest.len())
}

/// Writes each line of `text` as its own field, searching as it goes: for comments, and for
/// the lines past those a [`FieldLines`] remembered.
pub(super) fn put_lines(
    buf: &mut BytesMut,
    prefix: &'static [u8],
    empty: &'static [u8],
    text: &[u8],
) {
    let mut rest = text;
    while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
        if rest[end] == b'\n' && end > 0 {
            buf.put_slice(prefix);
            buf.put_slice(&rest[..=end]);
        } else {
            put_field(buf, prefix, empty, &rest[..end]);
        }
        rest = &rest[end + break_width(rest, end)..];
    }
    put_field(buf, prefix, empty, rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> (Vec<u8>, usize) {
        let first = memchr::memchr2(b'\n', b'\r', text.as_bytes()).unwrap();
        let lines = FieldLines::scan(text.as_bytes(), first, b"data: ", b"data:\n");
        let mut buf = BytesMut::new();
        lines.put(&mut buf, b"data: ", b"data:\n");
        let mut interleaved = BytesMut::new();
        put_lines(&mut interleaved, b"data: ", b"data:\n", text.as_bytes());
        assert_eq!(buf, interleaved);
        assert_eq!(
            lines_len(text.as_bytes(), b"data: ", b"data:\n"),
            lines.len()
        );
        (buf.to_vec(), lines.len())
    }

    #[test]
    fn more_breaks_than_remembered_are_found_again() {
        for breaks in [REMEMBERED - 1, REMEMBERED, REMEMBERED + 1, 3 * REMEMBERED] {
            for sep in ["\n", "\r", "\r\n"] {
                let text = (0..=breaks)
                    .map(|i| {
                        if i % 3 == 0 {
                            String::new()
                        } else {
                            i.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(sep);
                let (out, len) = written(&text);
                assert_eq!(out.len(), len, "{breaks} breaks of {sep:?}");
                let mut expected = String::new();
                for line in text.split(sep) {
                    if line.is_empty() {
                        expected.push_str("data:\n");
                    } else {
                        expected.push_str(&format!("data: {line}\n"));
                    }
                }
                assert_eq!(String::from_utf8(out).unwrap(), expected, "{sep:?}");
            }
        }
    }

    #[test]
    fn a_crlf_split_by_the_remembered_limit_is_one_break() {
        let text = "x\n".repeat(REMEMBERED - 1) + "y\r\nz";
        let (out, len) = written(&text);
        assert_eq!(out.len(), len);
        assert!(out.ends_with(b"data: y\ndata: z\n"));
    }
}
