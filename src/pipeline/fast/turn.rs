//! Quarter turns of one 8-bit plane, eight by eight: eight rows of a block
//! read as eight `u64`s, transposed in registers (three rounds of
//! mask-and-shift swaps), and written as eight `u64`s, so each sample costs
//! a fraction of an instruction instead of a load, an index computation and
//! a store. Measured on a 12 MP photo (one core, same machine and hour):
//! the whole `rotate,deg=90/jpeg,q=80` took 86.5 ms sample by sample and
//! 72 ms this way, against 55 ms for the re-encode alone.

/// Transpose the 8x8 block held in `rows` (row `i`'s byte `j` is the
/// sample at column `j`, row `i`): afterwards row `i` holds column `i`.
fn transpose(rows: &mut [u64; 8]) {
    for (shift, mask, pairs) in [
        (
            8,
            0x00FF_00FF_00FF_00FF_u64,
            [(0, 1), (2, 3), (4, 5), (6, 7)],
        ),
        (16, 0x0000_FFFF_0000_FFFF, [(0, 2), (1, 3), (4, 6), (5, 7)]),
        (32, 0x0000_0000_FFFF_FFFF, [(0, 4), (1, 5), (2, 6), (3, 7)]),
    ] {
        for (a, b) in pairs {
            let t = ((rows[a] >> shift) ^ rows[b]) & mask;
            rows[b] ^= t;
            rows[a] ^= t << shift;
        }
    }
}

/// A quarter turn of a `w` x `h` plane into `dst` (`h` wide, `w` high):
/// clockwise, source `(x, y)` lands at `(h - 1 - y, x)`; anticlockwise, at
/// `(y, w - 1 - x)` (as `inplace::rotate_tiled` does for whole pixels).
pub(super) fn rotate_plane(src: &[u8], w: usize, h: usize, dst: &mut [u8], clockwise: bool) {
    // 64x64 tiles: the tile's source rows and destination rows both stay
    // in the first-level cache (measured: 72 ms against 75 ms for whole
    // rows of blocks, the whole `rotate,deg=90/jpeg` on 12 MP).
    const TILE: usize = 64;
    let (bw, bh) = (w / 8 * 8, h / 8 * 8);
    let load = |at: usize| u64::from_le_bytes(src[at..at + 8].try_into().expect("8 bytes"));
    for ty in (0..bh).step_by(TILE) {
        for tx in (0..bw).step_by(TILE) {
            for y in (ty..(ty + TILE).min(bh)).step_by(8) {
                for x in (tx..(tx + TILE).min(bw)).step_by(8) {
                    let mut rows: [u64; 8] = std::array::from_fn(|i| load((y + i) * w + x));
                    transpose(&mut rows);
                    for (i, row) in rows.into_iter().enumerate() {
                        // Row i is source column x + i, samples top to bottom.
                        let (at, bytes) = if clockwise {
                            ((x + i) * h + (h - 8 - y), row.swap_bytes())
                        } else {
                            ((w - 1 - x - i) * h + y, row)
                        };
                        dst[at..at + 8].copy_from_slice(&bytes.to_le_bytes());
                    }
                }
            }
        }
    }
    if (bw, bh) == (w, h) {
        return;
    }
    // The right and bottom strips that are not whole blocks.
    edges(src, (w, h), (bw, bh), dst, clockwise);
}

/// Sample by sample: every sample right of `bw` or below `bh`.
fn edges(
    src: &[u8],
    (w, h): (usize, usize),
    (bw, bh): (usize, usize),
    dst: &mut [u8],
    clockwise: bool,
) {
    let put = |dst: &mut [u8], x: usize, y: usize, v: u8| {
        let (dx, dy) = if clockwise {
            (h - 1 - y, x)
        } else {
            (y, w - 1 - x)
        };
        dst[dy * h + dx] = v;
    };
    for y in 0..h {
        let from = if y < bh { bw } else { 0 };
        for x in from..w {
            put(dst, x, y, src[y * w + x]);
        }
    }
}
