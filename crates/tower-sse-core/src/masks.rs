//! 64-byte blocks of text turned into bit masks of their LFs and CRs, one bit per byte: the
//! encoder and the decoder then find every line end of a block by counting trailing zeros
//! instead of searching again for each line.
//!
//! On x86_64 the masks come from SSE2, which every x86_64 processor has: a compare and a
//! `movemask` per 16 bytes, through `safe_arch` (this workspace forbids `unsafe`). Elsewhere a
//! portable version tests the bytes and gathers the bits eight at a time; the encoder does
//! not use it there (a search per line is faster than it), the decoder does.

/// The line-end mask of `block`: bit `i` is set if byte `i` is a CR or an LF.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn line_end_mask(block: &[u8; 64]) -> u64 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let (lf, cr) = (
        set_splat_i8_m128i(b'\n' as i8),
        set_splat_i8_m128i(b'\r' as i8),
    );
    let mut mask = 0;
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let chunk: &[u8; 16] = chunk.try_into().expect("16-byte chunks");
        let bytes = load_unaligned_m128i(chunk);
        let ends = bitor_m128i(
            cmp_eq_mask_i8_m128i(bytes, lf),
            cmp_eq_mask_i8_m128i(bytes, cr),
        );
        // `movemask` sets the low 16 bits only.
        mask |= u64::from(move_mask_i8_m128i(ends) as u16) << (16 * i);
    }
    mask
}

/// The LFs of 64-byte blocks as bit masks, for text with LF line ends (the encoder's `data`):
/// a block without an LF costs four compares and one `movemask`, a block with one four
/// `movemask`s. CRs are noted on the way (a compare and an OR per 16 bytes, no `movemask`),
/// so the caller learns at the end whether the text had any, without a pass of its own.
#[cfg(target_arch = "x86_64")]
pub(crate) struct LfMasks {
    lf: safe_arch::m128i,
    cr: safe_arch::m128i,
    /// Every CR compare of the blocks seen, OR-ed together.
    crs: safe_arch::m128i,
}

#[cfg(target_arch = "x86_64")]
impl LfMasks {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        use safe_arch::{set_splat_i8_m128i, zeroed_m128i};
        Self {
            lf: set_splat_i8_m128i(b'\n' as i8),
            cr: set_splat_i8_m128i(b'\r' as i8),
            crs: zeroed_m128i(),
        }
    }

    /// The mask of the LFs of `block`: bit `i` is set if byte `i` is an LF.
    #[inline(always)]
    pub(crate) fn lfs(&mut self, block: &[u8; 64]) -> u64 {
        use safe_arch::{
            bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        };
        let load = |i: usize| -> safe_arch::m128i {
            let chunk: &[u8; 16] = block[16 * i..16 * i + 16].try_into().expect("16 bytes");
            load_unaligned_m128i(chunk)
        };
        let bytes = [load(0), load(1), load(2), load(3)];
        let lfs = bytes.map(|b| cmp_eq_mask_i8_m128i(b, self.lf));
        let crs = bytes.map(|b| cmp_eq_mask_i8_m128i(b, self.cr));
        self.crs = bitor_m128i(
            self.crs,
            bitor_m128i(bitor_m128i(crs[0], crs[1]), bitor_m128i(crs[2], crs[3])),
        );
        let any = bitor_m128i(bitor_m128i(lfs[0], lfs[1]), bitor_m128i(lfs[2], lfs[3]));
        if move_mask_i8_m128i(any) == 0 {
            return 0;
        }
        // `movemask` sets the low 16 bits only.
        let bits = |i: usize| u64::from(move_mask_i8_m128i(lfs[i]) as u16) << (16 * i);
        bits(0) | bits(1) | bits(2) | bits(3)
    }

    /// Whether any block given to [`lfs`](Self::lfs) held a CR.
    #[inline(always)]
    pub(crate) fn saw_cr(&self) -> bool {
        safe_arch::move_mask_i8_m128i(self.crs) != 0
    }
}

/// The line-end mask of `block`: bit `i` is set if byte `i` is a CR or an LF.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn line_end_mask(block: &[u8; 64]) -> u64 {
    portable_mask(block, |b| b == b'\n' || b == b'\r')
}

/// The mask of the bytes of `block` that `is` picks, with no SIMD: all 64 tested first
/// (vectorised by the compiler), then one bit gathered per byte, eight bytes at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
pub(crate) fn portable_mask(block: &[u8; 64], is: impl Fn(u8) -> bool) -> u64 {
    let mut flags = [0u8; 64];
    for (flag, &b) in flags.iter_mut().zip(block) {
        *flag = u8::from(is(b));
    }
    let mut bits = 0;
    for (i, word) in flags.chunks_exact(8).enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        // Bytes of 0 or 1 times this constant move byte i's bit to bit 56 + i, no carries.
        let gathered = u64::from_le_bytes(bytes).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        bits |= gathered << (8 * i);
    }
    bits
}

/// `masks` of the (up to) 64 bytes of `text` at `at`, a short last block padded with zeros.
#[inline(always)]
pub(crate) fn with_block<T>(text: &[u8], at: usize, masks: impl FnOnce(&[u8; 64]) -> T) -> T {
    match text.get(at..at + 64) {
        Some(block) => masks(block.try_into().expect("64 bytes")),
        None => {
            let rest = text.get(at..).unwrap_or_default();
            let mut block = [0u8; 64];
            block[..rest.len()].copy_from_slice(rest);
            masks(&block)
        }
    }
}

/// `len` bytes of letters with an LF and a CR in every `period`, spread unevenly: test input
/// for the line-end finders.
#[cfg(test)]
pub(crate) fn mixed_text(len: u32, period: u32) -> Vec<u8> {
    (0..len)
        .map(|i| match (i * 7919) % period {
            0 => b'\n',
            1 => b'\r',
            n => b'a' + (n % 26) as u8,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_agree_with_the_bytes_and_the_portable_version() {
        let text = mixed_text(300, 13);
        for at in [0, 1, 63, 64, 100, 236, 250, 299, 300] {
            let ends = with_block(&text, at, line_end_mask);
            #[cfg(target_arch = "x86_64")]
            let (lfs, saw_cr) = with_block(&text, at, |block| {
                let mut masks = LfMasks::new();
                (masks.lfs(block), masks.saw_cr())
            });
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                saw_cr,
                text.get(at..(at + 64).min(text.len()))
                    .is_some_and(|block| block.contains(&b'\r')),
                "cr {at}"
            );
            for bit in 0..64 {
                let byte = text.get(at + bit).copied();
                let is_end = matches!(byte, Some(b'\n' | b'\r'));
                assert_eq!(ends >> bit & 1 == 1, is_end, "line end {at}+{bit}");
                #[cfg(target_arch = "x86_64")]
                assert_eq!(lfs >> bit & 1 == 1, byte == Some(b'\n'), "lf {at}+{bit}");
            }
            let portable = with_block(&text, at, |block| {
                portable_mask(block, |b| b == b'\n' || b == b'\r')
            });
            assert_eq!(portable, ends);
        }
    }
}
