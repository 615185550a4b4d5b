//! Shared helpers for the dialects that send lists as `IN (?, ?, ...)` and
//! multi-row `VALUES`: chunking under a bind limit, padding list lengths to a
//! few fixed sizes so each dialect prepares only a handful of statements,
//! and placeholder text.

use std::{collections::HashSet, hash::Hash};

/// The list lengths a statement is prepared for; longer lists use the cap.
const PADDED_LENGTHS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 100];

/// The length a list of `n` items (`1 <= n <= cap`) is padded to.
pub(crate) fn padded_len(n: usize, cap: usize) -> usize {
    PADDED_LENGTHS
        .into_iter()
        .find(|&len| len >= n)
        .map_or(cap, |len| len.min(cap))
}

/// The items of one chunk, followed by its last item repeated up to the
/// padded length (a repeated key matches nothing new, a repeated row
/// rewrites the same values). Empty for an empty chunk.
pub(crate) fn padded<T>(chunk: &[T], cap: usize) -> Vec<&T> {
    let Some(last) = chunk.last() else {
        return Vec::new();
    };
    let mut items: Vec<&T> = chunk.iter().collect();
    items.resize(padded_len(chunk.len(), cap), last);
    items
}

/// `rows` groups of `per_row` placeholders: `?, ?` for single values,
/// `(?, ?), (?, ?)` for rows.
pub(crate) fn placeholders(rows: usize, per_row: usize) -> String {
    let row = if per_row == 1 {
        "?".to_owned()
    } else {
        format!("({})", vec!["?"; per_row].join(", "))
    };
    vec![row; rows].join(", ")
}

/// `fragment` repeated `n` times, joined by `separator`.
pub(crate) fn repeated(fragment: &str, n: usize, separator: &str) -> String {
    vec![fragment; n].join(separator)
}

/// The distinct items, in the order of their first occurrence.
pub(crate) fn distinct<T: Eq + Hash>(items: &[T]) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().filter(|item| seen.insert(*item)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pads_to_fixed_sizes() {
        assert_eq!(padded_len(1, 100), 1);
        assert_eq!(padded_len(3, 100), 4);
        assert_eq!(padded_len(65, 100), 100);
        assert_eq!(padded_len(150, 500), 500);
        assert_eq!(padded_len(40, 50), 50);
        assert_eq!(padded(&[1, 2, 3], 100), vec![&1, &2, &3, &3]);
        assert!(padded::<u8>(&[], 100).is_empty());
    }

    #[test]
    fn builds_placeholders() {
        assert_eq!(placeholders(3, 1), "?, ?, ?");
        assert_eq!(placeholders(2, 2), "(?, ?), (?, ?)");
        assert_eq!(repeated("a = ?", 2, " OR "), "a = ? OR a = ?");
    }

    proptest! {
        #[test]
        fn padding_keeps_items_and_stays_within_cap(n in 1usize..3000, cap in 1usize..3000) {
            let n = n.min(cap);
            let items: Vec<usize> = (0..n).collect();
            let padded = padded(&items, cap);
            prop_assert!(padded.len() >= n && padded.len() <= cap);
            prop_assert_eq!(&padded[..n], &items.iter().collect::<Vec<_>>()[..]);
            prop_assert!(padded[n..].iter().all(|&&x| x == n - 1));
        }

        #[test]
        fn distinct_keeps_first_occurrences(items in proptest::collection::vec(0u8..10, 0..50)) {
            let out = distinct(&items);
            let set: HashSet<_> = items.iter().collect();
            prop_assert_eq!(out.len(), set.len());
            for (i, item) in out.iter().enumerate() {
                let first = items.iter().position(|x| x == *item).unwrap();
                prop_assert!(out[..i].iter().all(|o| items.iter().position(|x| x == *o).unwrap() < first));
            }
        }
    }
}
