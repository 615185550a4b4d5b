//! Splitting a list of keys or rows into statements that stay within
//! every limit, and padding each statement's list to one of a few lengths
//! so a dialect prepares only a handful of statement texts.
//!
//! Padding adds items of `NULL`s (a `NULL` key matches no row; writes are
//! never padded, a repeated row would be written twice), and only when
//! the padded statement still fits the byte limit, so padding can never
//! turn a valid batch into an oversized packet.

use crate::error::Limit;
use std::ops::Range;

/// Lengths grow by this factor: 1, 4, 16, 64, 256, ... up to the cap, so a
/// list is padded to at most 4 times its length and a dialect sees at most
/// `log4(cap) + 2` statement texts per operation and table.
const PAD_FACTOR: usize = 4;

/// What one statement may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bind parameters.
    pub binds: usize,
    /// Bytes of parameter values.
    pub bytes: usize,
    /// Items (keys or rows), the caller's `rows_per_statement`.
    pub items: usize,
}

/// One statement's share of the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The items it carries, as a range of the input.
    pub items: Range<usize>,
    /// The length of its list with padding (`items.len()` without).
    pub len: usize,
}

impl Chunk {
    /// How many padding items follow the chunk's own.
    pub fn padding(&self) -> usize {
        self.len - self.items.len()
    }
}

/// An item that alone breaks a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge {
    /// What the item needs, in the limit's unit.
    pub size: usize,
    /// The limit.
    pub limit: Limit,
}

/// Split items of byte sizes `sizes`, each taking `binds_per_item`
/// parameters (0 where lists travel as arrays), into chunks within
/// `limits`; pad each chunk's list with items of `pad` bytes each if
/// `pad` is given.
pub(crate) fn plan(
    sizes: &[usize],
    binds_per_item: usize,
    limits: Limits,
    pad: Option<usize>,
) -> Result<Vec<Chunk>, TooLarge> {
    let cap = match limits.binds.checked_div(binds_per_item) {
        Some(0) => {
            return Err(TooLarge {
                size: binds_per_item,
                limit: Limit::Binds(limits.binds),
            });
        }
        Some(by_binds) => by_binds.min(limits.items),
        None => limits.items,
    }
    .max(1);
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, &size) in sizes.iter().enumerate() {
        if size > limits.bytes {
            return Err(TooLarge {
                size,
                limit: Limit::Bytes(limits.bytes),
            });
        }
        if i - start == cap || bytes + size > limits.bytes {
            chunks.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        chunks.push(start..sizes.len());
    }
    Ok(chunks
        .into_iter()
        .map(|items| {
            let len = pad
                .and_then(|pad_size| padding(sizes, &items, cap, limits.bytes, pad_size))
                .unwrap_or(items.len());
            Chunk { items, len }
        })
        .collect())
}

/// The padded length of the chunk `items`, if the padded chunk, with
/// padding items of `pad_size` bytes, fits `max_bytes`.
fn padding(
    sizes: &[usize],
    items: &Range<usize>,
    cap: usize,
    max_bytes: usize,
    pad_size: usize,
) -> Option<usize> {
    let len = padded_len(items.len(), cap);
    let bytes: usize = sizes[items.clone()].iter().sum();
    let fits = (len - items.len())
        .checked_mul(pad_size)
        .and_then(|padding| padding.checked_add(bytes))
        .is_some_and(|total| total <= max_bytes);
    fits.then_some(len)
}

/// The length a list of `n` items (`1 <= n <= cap`) is padded to: the
/// next power of [`PAD_FACTOR`], or the cap.
fn padded_len(n: usize, cap: usize) -> usize {
    let mut len = 1;
    while len < n {
        len = len.saturating_mul(PAD_FACTOR);
    }
    len.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROOMY: Limits = Limits {
        binds: 65_535,
        bytes: usize::MAX,
        items: 1000,
    };

    #[test]
    fn pads_to_powers_of_four_up_to_the_cap() {
        let lens: Vec<usize> = [1, 2, 4, 5, 17, 65, 257, 999, 1000]
            .map(|n| padded_len(n, 1000))
            .to_vec();
        assert_eq!(lens, [1, 4, 4, 16, 64, 256, 1000, 1000, 1000]);
    }

    #[test]
    fn pads_to_the_next_length_only_within_the_byte_limit() {
        let chunks = plan(&[9, 3, 7], 2, ROOMY, Some(4)).unwrap();
        assert_eq!(
            chunks,
            [Chunk {
                items: 0..3,
                len: 4
            }]
        );
        assert_eq!(chunks[0].padding(), 1);
        let limits = Limits {
            bytes: 100,
            ..ROOMY
        };
        // 33 items of 92 bytes: 31 padding items of 1 byte would not fit.
        let mut sizes = vec![1; 32];
        sizes.push(60);
        let chunks = plan(&sizes, 4, limits, Some(1)).unwrap();
        assert_eq!(
            chunks,
            [Chunk {
                items: 0..33,
                len: 33
            }]
        );
        let roomier = Limits {
            bytes: 200,
            ..ROOMY
        };
        let chunks = plan(&sizes, 4, roomier, Some(1)).unwrap();
        assert_eq!(
            chunks,
            [Chunk {
                items: 0..33,
                len: 64
            }]
        );
        let unpadded = plan(&sizes, 4, roomier, None).unwrap();
        assert_eq!(
            unpadded,
            [Chunk {
                items: 0..33,
                len: 33
            }]
        );
    }

    #[test]
    fn a_single_oversized_item_is_refused() {
        let limits = Limits {
            bytes: 100,
            ..ROOMY
        };
        let error = plan(&[10, 101], 1, limits, None).unwrap_err();
        assert_eq!(
            error,
            TooLarge {
                size: 101,
                limit: Limit::Bytes(100)
            }
        );
        let error = plan(&[1], 7, Limits { binds: 6, ..ROOMY }, None).unwrap_err();
        assert_eq!(
            error,
            TooLarge {
                size: 7,
                limit: Limit::Binds(6)
            }
        );
    }

    proptest! {
        #[test]
        fn chunks_cover_every_item_once_within_limits(
            sizes in proptest::collection::vec(0usize..50, 0..400),
            binds_per_item in 0usize..4,
            binds in 4usize..200,
            bytes in 50usize..500,
            items in 1usize..300,
            pad in proptest::option::of(0usize..3),
        ) {
            let limits = Limits { binds, bytes, items };
            let chunks = plan(&sizes, binds_per_item, limits, pad).unwrap();
            let mut next = 0;
            for chunk in &chunks {
                prop_assert_eq!(chunk.items.start, next);
                prop_assert!(!chunk.items.is_empty());
                next = chunk.items.end;
                prop_assert!(chunk.len >= chunk.items.len());
                prop_assert!(chunk.len <= items);
                prop_assert!(chunk.len * binds_per_item <= binds);
                let own: usize = sizes[chunk.items.clone()].iter().sum();
                prop_assert!(own + chunk.padding() * pad.unwrap_or(0) <= bytes);
                prop_assert!(pad.is_some() || chunk.padding() == 0);
            }
            prop_assert_eq!(next, sizes.len());
            // Padded lengths are few: powers of 4, or the largest chunk.
            let largest = chunks.iter().map(|c| c.items.len()).max().unwrap_or(0);
            for chunk in chunks.iter().filter(|c| c.padding() > 0) {
                let len = chunk.len;
                prop_assert!(len.is_power_of_two() && len.trailing_zeros() % 2 == 0 || len >= largest);
            }
        }
    }
}
