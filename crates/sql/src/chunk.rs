//! Splitting a list of keys or rows into statements that stay within
//! every limit, and padding each statement's list to one of a few lengths
//! so a dialect prepares only a handful of statement texts.
//!
//! Padding repeats the chunk's *smallest* item (a repeated key matches
//! nothing new; a repeated row rewrites the same values), and only when
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
    /// The item repeated to pad the list, and the length padded to.
    pub padding: Option<(usize, usize)>,
}

impl Chunk {
    /// The chunk's items, padded, from the input `items`.
    pub fn padded<'a, T>(&self, items: &'a [T]) -> Vec<&'a T> {
        let mut out: Vec<&T> = items[self.items.clone()].iter().collect();
        if let Some((filler, len)) = self.padding {
            out.resize(len, &items[filler]);
        }
        out
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
/// `limits`; pad each chunk's list if `pad`.
pub(crate) fn plan(
    sizes: &[usize],
    binds_per_item: usize,
    limits: Limits,
    pad: bool,
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
            let padding = pad
                .then(|| padding(sizes, &items, cap, limits.bytes))
                .flatten();
            Chunk { items, padding }
        })
        .collect())
}

/// The filler and padded length of the chunk `items`, if padding changes
/// its length and the padded chunk fits `max_bytes`.
fn padding(
    sizes: &[usize],
    items: &Range<usize>,
    cap: usize,
    max_bytes: usize,
) -> Option<(usize, usize)> {
    let len = padded_len(items.len(), cap);
    let extra = len - items.len();
    let filler = items.clone().min_by_key(|&i| sizes[i])?;
    let bytes: usize = sizes[items.clone()].iter().sum();
    let fits = extra
        .checked_mul(sizes[filler])
        .and_then(|padding| padding.checked_add(bytes))
        .is_some_and(|total| total <= max_bytes);
    (extra > 0 && fits).then_some((filler, len))
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
    fn pads_with_the_smallest_item() {
        let chunks = plan(&[9, 3, 7], 2, ROOMY, true).unwrap();
        assert_eq!(
            chunks,
            [Chunk {
                items: 0..3,
                padding: Some((1, 4))
            }]
        );
        assert_eq!(chunks[0].padded(&['a', 'b', 'c']), [&'a', &'b', &'c', &'b']);
    }

    #[test]
    fn never_pads_past_the_byte_limit() {
        let limits = Limits {
            bytes: 100,
            ..ROOMY
        };
        // 33 rows whose last is huge: padding with it would overflow.
        let mut sizes = vec![1; 32];
        sizes.push(60);
        let chunks = plan(&sizes, 4, limits, true).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].padded(&sizes).len(),
            33,
            "92 + 31 padding bytes would not fit in 100"
        );
        // With room, it is padded, and never with the big row.
        let chunks = plan(
            &sizes,
            4,
            Limits {
                bytes: 200,
                ..ROOMY
            },
            true,
        )
        .unwrap();
        assert_eq!(chunks[0].padded(&sizes).len(), 64);
        assert_eq!(chunks[0].padded(&sizes).iter().copied().sum::<usize>(), 123);
    }

    #[test]
    fn a_single_oversized_item_is_refused() {
        let limits = Limits {
            bytes: 100,
            ..ROOMY
        };
        let error = plan(&[10, 101], 1, limits, false).unwrap_err();
        assert_eq!(
            error,
            TooLarge {
                size: 101,
                limit: Limit::Bytes(100)
            }
        );
        let error = plan(&[1], 7, Limits { binds: 6, ..ROOMY }, false).unwrap_err();
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
            pad in any::<bool>(),
        ) {
            let limits = Limits { binds, bytes, items };
            let chunks = plan(&sizes, binds_per_item, limits, pad).unwrap();
            let mut next = 0;
            for chunk in &chunks {
                prop_assert_eq!(chunk.items.start, next);
                prop_assert!(!chunk.items.is_empty());
                next = chunk.items.end;
                let padded = chunk.padded(&sizes);
                                prop_assert!(padded.len() <= items);
                prop_assert!(padded.len() * binds_per_item <= binds);
                prop_assert!(padded.iter().copied().sum::<usize>() <= bytes);
                // Padding repeats an item of the chunk: no new keys.
                let own = &sizes[chunk.items.clone()];
                prop_assert!(padded[own.len()..].iter().all(|s| own.contains(s)));
            }
            prop_assert_eq!(next, sizes.len());
            // Padded lengths are few: powers of 4, or the largest chunk.
            let largest = chunks.iter().map(|c| c.items.len()).max().unwrap_or(0);
            for chunk in chunks.iter().filter(|c| c.padding.is_some()) {
                let len = chunk.padded(&sizes).len();
                prop_assert!(len.is_power_of_two() && len.trailing_zeros() % 2 == 0 || len >= largest);
            }
        }
    }
}
