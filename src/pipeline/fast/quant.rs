//! Re-quantisation for the DCT-domain path (`transcode`): libjpeg's
//! quantisation tables, and each coefficient taken from the source's step
//! to the output's, rounded to the nearest, ties alternated (see
//! `transcode`'s note on ties).

/// libjpeg's tables (`jcparam.c`, Annex K), natural order.
pub(super) const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
pub(super) const CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];
/// The natural-order index of each zigzag position (`jpeg_natural_order`).
pub(super) const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A table with rows and columns swapped.
pub(super) fn transposed(table: &[u16; 64]) -> [u16; 64] {
    std::array::from_fn(|k| table[(k % 8) * 8 + k / 8])
}

/// `jpeg_set_quality(quality, force_baseline = TRUE)`'s table, natural order.
pub(super) fn scaled(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|v| ((u32::from(v) * scale + 50) / 100).clamp(1, 255) as u16)
}

/// Coefficients under this magnitude (nearly all of a photo's) are
/// re-quantised by table look-up.
const SMALL: usize = 64;

/// One component's re-quantisation, coefficient by coefficient (natural
/// order): the source's step, the output's, and the answers for small
/// magnitudes, for even and odd blocks (16 KB: a first-level cache holds
/// it while a row of blocks goes by).
pub(super) struct Steps {
    pub from: [u32; 64],
    to: [u32; 64],
    small: Box<[[[i16; SMALL]; 64]; 2]>,
}

impl Steps {
    pub(super) fn new(from: [u16; 64], to: [u16; 64]) -> Steps {
        let (from, to) = (from.map(u32::from), to.map(|d| u32::from(d.max(1))));
        let mut small = Box::new([[[0i16; SMALL]; 64]; 2]);
        for (parity, table) in small.iter_mut().enumerate() {
            for (k, answers) in table.iter_mut().enumerate() {
                for (magnitude, q) in answers.iter_mut().enumerate() {
                    let up = tie_up(k, parity == 1);
                    *q = requantised(magnitude as u32 * from[k], to[k], up);
                }
            }
        }
        Steps { from, to, small }
    }
}

/// Whether a tie rounds up: on the odd coefficients of even blocks and the
/// even ones of odd blocks (see the module's note on ties).
fn tie_up(k: usize, odd_block: bool) -> bool {
    (k % 2 == 1) != odd_block
}

/// `n / d` rounded to the nearest integer, a tie up if `up`, within
/// baseline's range.
fn requantised(n: u32, d: u32, up: bool) -> i16 {
    let (q, r) = (n / d, n % d);
    let q = if 2 * r > d || (2 * r == d && up) {
        q + 1
    } else {
        q
    };
    q.min(1023) as i16
}

/// One block re-quantised: each `c * from / to` rounded to the nearest
/// integer ([`requantised`]), looked up for small magnitudes.
pub(super) fn requantise_block(block: &mut [i16; 64], steps: &Steps, odd_block: bool) {
    let table = &steps.small[usize::from(odd_block)];
    // Rows of four: most of a photo's high frequencies are zero, and stay
    // zero (skipping zero halves of rows halved the time of this loop).
    let (quarters, _) = block.as_chunks_mut::<4>();
    for (i, quarter) in quarters.iter_mut().enumerate() {
        if *quarter == [0; 4] {
            continue;
        }
        for (j, c) in quarter.iter_mut().enumerate() {
            let k = i * 4 + j;
            let magnitude = c.unsigned_abs();
            let q = match table[k].get(usize::from(magnitude)) {
                Some(&q) => q,
                None => requantised(
                    u32::from(magnitude) * steps.from[k],
                    steps.to[k],
                    tie_up(k, odd_block),
                ),
            };
            *c = if *c < 0 { -q } else { q };
        }
    }
}
