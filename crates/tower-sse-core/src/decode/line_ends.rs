//! [`LineEnds`]: finds the CRs and LFs of a buffer 64 bytes at a time.

/// Finds the line ends (CR or LF) of one buffer, front to back: each 64-byte block is scanned
/// once into a bit mask, one bit per byte, and every line end in it is then a count of
/// trailing zeros, not another search. Lines of a few dozen bytes, the usual event stream,
/// find several ends per block.
#[derive(Debug, Default)]
pub(super) struct LineEnds {
    /// Where the block of `bits` starts.
    base: usize,
    /// Bit `i` is set if byte `base + i` is a CR or an LF.
    bits: u64,
}

impl LineEnds {
    /// Starts over on a new buffer.
    pub(super) fn reset(&mut self, buf: &[u8]) {
        self.base = 0;
        self.bits = block_bits(buf, 0);
    }

    /// The first CR or LF of `buf` at or after `from`, or `buf.len()` if none. `buf` is the
    /// buffer of the last [`reset`](Self::reset), and `from` never goes back by more than
    /// what an earlier answer already covered.
    pub(super) fn find(&mut self, buf: &[u8], from: usize) -> usize {
        let mut offset = from.wrapping_sub(self.base);
        if offset >= 64 {
            // Past the block (or before it): start a block here.
            self.base = from;
            self.bits = block_bits(buf, from);
            offset = 0;
        }
        let mut bits = self.bits & (u64::MAX << offset);
        while bits == 0 {
            self.base += 64;
            if self.base >= buf.len() {
                self.base = buf.len();
                self.bits = 0;
                return buf.len();
            }
            self.bits = block_bits(buf, self.base);
            bits = self.bits;
        }
        self.base + bits.trailing_zeros() as usize
    }
}

/// The line-end mask of the (up to) 64 bytes of `buf` at `at` (SSE2 on x86_64).
#[inline(always)]
fn block_bits(buf: &[u8], at: usize) -> u64 {
    crate::masks::with_block(buf, at, crate::masks::line_end_mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ends(buf: &[u8]) -> Vec<usize> {
        let mut ends = LineEnds::default();
        ends.reset(buf);
        let mut out = Vec::new();
        let mut from = 0;
        loop {
            let end = ends.find(buf, from);
            if end == buf.len() {
                return out;
            }
            out.push(end);
            from = end + 1;
        }
    }

    #[test]
    fn finds_every_cr_and_lf_in_order_across_blocks() {
        let mut buf = vec![b'x'; 300];
        let positions = [0, 1, 7, 8, 63, 64, 65, 127, 128, 200, 255, 256, 299];
        for (n, &p) in positions.iter().enumerate() {
            buf[p] = if n % 2 == 0 { b'\n' } else { b'\r' };
        }
        assert_eq!(all_ends(&buf), positions);
        assert_eq!(all_ends(b"no line end here"), Vec::<usize>::new());
        assert_eq!(all_ends(b""), Vec::<usize>::new());
    }

    #[test]
    fn agrees_with_a_plain_search_from_any_start() {
        let buf = crate::masks::mixed_text(500, 23);
        for from in 0..buf.len() {
            let mut ends = LineEnds::default();
            ends.reset(&buf);
            let want = buf[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map_or(buf.len(), |p| from + p);
            assert_eq!(ends.find(&buf, from), want, "from {from}");
        }
    }
}
