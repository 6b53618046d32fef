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
    #[inline(always)]
    pub(super) fn scan(text: &'t [u8], first: usize, prefix: &[u8], empty: &[u8]) -> Self {
        // Text with no CR (LF line ends, the usual case) needs no look-ahead for CRLF. On
        // x86_64 the block scan notes CRs as it finds the LFs; a text that had one (rare) is
        // searched again, line by line.
        #[cfg(target_arch = "x86_64")]
        if u32::try_from(text.len()).is_ok() {
            if let Some(lines) = Self::scan_blocks(text, first, prefix, empty) {
                return lines;
            }
            return Self::scan_searching(text, first, false, prefix, empty);
        }
        let lf_only = memchr::memchr(b'\r', &text[first..]).is_none();
        Self::scan_searching(text, first, lf_only, prefix, empty)
    }

    /// No line break remembered yet, nothing counted.
    fn start(text: &'t [u8]) -> Self {
        Self {
            text,
            breaks: [0; REMEMBERED],
            count: 0,
            // Offsets past `u32::MAX` are not remembered: such a text is searched again.
            complete: u32::try_from(text.len()).is_ok(),
            len: 0,
        }
    }

    /// Counts the line from `start` to the break at `end`, and remembers the break if there
    /// is room.
    #[inline(always)]
    fn push(&mut self, start: usize, end: usize, prefix: &[u8], empty: &[u8]) {
        self.len += line_len(end - start, prefix, empty);
        if self.complete && self.count < REMEMBERED {
            // `complete` is only set when `text.len()` fits in a u32.
            self.breaks[self.count] = end as u32;
            self.count += 1;
        } else {
            self.complete = false;
        }
    }

    /// Text under 4 GiB, 64 bytes at a time: each block's LFs come from one bit mask (see
    /// `masks.rs`), so a line costs a count of trailing zeros, not a search. `None` when the
    /// text has a CR (a CRLF is one break, so those texts are searched instead).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn scan_blocks(text: &'t [u8], first: usize, prefix: &[u8], empty: &[u8]) -> Option<Self> {
        let mut masks = crate::masks::LfMasks::new();
        // Kept in locals, not in `Self`, so that the loop works in registers.
        let (mut breaks, mut count, mut len, mut start) = ([0; REMEMBERED], 0, 0, 0);
        // No CR or LF before `first`: starting at its block skips nothing.
        let mut at = first - first % 64;
        while at < text.len() {
            let mut lfs = crate::masks::with_block(text, at, |b| masks.lfs(b));
            while lfs != 0 {
                let end = at + lfs.trailing_zeros() as usize;
                len += line_len(end - start, prefix, empty);
                if count < REMEMBERED {
                    // Checked above: `text.len()` fits in a u32.
                    breaks[count] = end as u32;
                }
                count += 1;
                start = end + 1;
                lfs &= lfs - 1;
            }
            at += 64;
        }
        if masks.saw_cr() {
            return None;
        }
        Some(Self {
            text,
            breaks,
            count: count.min(REMEMBERED),
            complete: count <= REMEMBERED,
            len: len + line_len(text.len() - start, prefix, empty),
        })
    }

    /// Any text, one search per line break: for one byte where `lf_only` (cheaper per line
    /// than searching for two).
    fn scan_searching(
        text: &'t [u8],
        first: usize,
        lf_only: bool,
        prefix: &[u8],
        empty: &[u8],
    ) -> Self {
        let mut this = Self::start(text);
        let mut start = 0;
        let mut next = Some(first);
        while let Some(offset) = next {
            let end = start + offset;
            this.push(start, end, prefix, empty);
            start = end + break_width(text, end);
            next = if lf_only {
                memchr::memchr(b'\n', &text[start..])
            } else {
                memchr::memchr2(b'\n', b'\r', &text[start..])
            };
        }
        this.len += line_len(text.len() - start, prefix, empty);
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

/// The encoded length of a line of `len` bytes: `prefix` + line + LF, or `empty`.
#[inline(always)]
fn line_len(len: usize, prefix: &[u8], empty: &[u8]) -> usize {
    if len == 0 {
        empty.len()
    } else {
        prefix.len() + len + 1
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
    let (mut len, mut rest) = (0, text);
    while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
        len += line_len(end, prefix, empty);
        rest = &rest[end + break_width(rest, end)..];
    }
    len + line_len(rest.len(), prefix, empty)
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

    /// The block scan (x86_64) and the line-by-line search plan the same writing, wherever
    /// the LFs fall relative to the 64-byte blocks; text with a CR is searched.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_block_scan_agrees_with_the_search() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..3_000 {
            let len = (next() % 400) as usize + 1;
            // Dense LFs in some texts (runs of empty lines, more than REMEMBERED breaks),
            // sparse in others.
            let every = [2, 5, 40, 130][round % 4];
            let mut text: Vec<u8> = (0..len)
                .map(|_| if next() % every == 0 { b'\n' } else { b'x' })
                .collect();
            if round % 7 == 0 {
                let at = (next() as usize) % len;
                text[at] = b'\r';
            }
            let Some(first) = memchr::memchr2(b'\n', b'\r', &text) else {
                continue;
            };
            let lf_only = !text.contains(&b'\r');
            let searched = FieldLines::scan_searching(&text, first, lf_only, b"data: ", b"data:\n");
            let scanned = FieldLines::scan(&text, first, b"data: ", b"data:\n");
            assert_eq!(
                (scanned.len, scanned.count, scanned.complete),
                (searched.len, searched.count, searched.complete),
                "{text:?}"
            );
            if !lf_only {
                // A CR anywhere after the first break sends the text to the search.
                assert!(
                    FieldLines::scan_blocks(&text, first, b"data: ", b"data:\n").is_none(),
                    "{text:?}"
                );
                continue;
            }
            let blocks = FieldLines::scan_blocks(&text, first, b"data: ", b"data:\n")
                .expect("no CR: planned by the block scan");
            assert_eq!(
                (blocks.len, blocks.count, blocks.complete),
                (searched.len, searched.count, searched.complete),
                "{text:?}"
            );
            assert_eq!(
                blocks.breaks[..blocks.count],
                searched.breaks[..searched.count]
            );
            let mut out = BytesMut::new();
            blocks.put(&mut out, b"data: ", b"data:\n");
            assert_eq!(out.len(), blocks.len());
            let mut expected = BytesMut::new();
            put_lines(&mut expected, b"data: ", b"data:\n", &text);
            assert_eq!(out, expected);
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
