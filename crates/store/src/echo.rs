//! Quoting input back in an error message, bounded: a caller (a model,
//! above all) may send megabytes where a name was expected, and the error
//! goes back to it (into a model's context window).

use std::fmt;

/// The most characters of an input an error quotes.
pub const ECHO_LIMIT: usize = 64;

/// Part of an input quoted in an error ([`InvalidInput`](crate::InvalidInput),
/// [`ArgumentError`](crate::tools::ArgumentError)):
/// its first [`ECHO_LIMIT`] characters, and how many more there were.
/// Displayed quoted, with the count of what was left out after it.
///
/// ```
/// use coalesce_store::{ECHO_LIMIT, Echo};
///
/// assert_eq!(Echo::new("HOBBY").to_string(), "\"HOBBY\"");
/// let long = "x".repeat(ECHO_LIMIT + 1000);
/// let echo = Echo::new(&long);
/// assert_eq!(echo.omitted(), 1000);
/// assert!(echo.to_string().ends_with("x\"… (1000 more characters)"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    prefix: String,
    omitted: usize,
}

impl Echo {
    /// The first [`ECHO_LIMIT`] characters of `input`.
    pub fn new(input: &str) -> Self {
        let cut = input
            .char_indices()
            .nth(ECHO_LIMIT)
            .map_or(input.len(), |(at, _)| at);
        let (prefix, rest) = input.split_at(cut);
        Self {
            prefix: prefix.to_owned(),
            omitted: rest.chars().count(),
        }
    }

    /// The quoted part of the input.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many characters of the input were left out.
    pub fn omitted(&self) -> usize {
        self.omitted
    }
}

impl From<&str> for Echo {
    fn from(input: &str) -> Self {
        Self::new(input)
    }
}

impl fmt::Display for Echo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.prefix)?;
        if self.omitted > 0 {
            write!(f, "… ({} more characters)", self.omitted)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        let exact = "é".repeat(ECHO_LIMIT);
        assert_eq!(Echo::new(&exact).prefix(), exact);
        assert_eq!(Echo::new(&exact).omitted(), 0);
        assert_eq!(Echo::new("").to_string(), "\"\"");
    }

    #[test]
    fn long_input_is_cut_on_a_character_boundary() {
        let long = "é".repeat(ECHO_LIMIT + 3);
        let echo = Echo::new(&long);
        assert_eq!(echo.prefix().chars().count(), ECHO_LIMIT);
        assert_eq!(echo.omitted(), 3);
        assert!(echo.to_string().ends_with("\"… (3 more characters)"));
    }
}
