//! One table, two renderings: aligned columns for a terminal, Markdown for
//! a file or a pipe (pasted into docs/BENCHMARKS.md or an issue).

use std::{fmt::Write as _, io::IsTerminal};

/// How tables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Columns padded to line up, for reading on a terminal.
    Aligned,
    /// GitHub Markdown.
    Markdown,
}

impl Style {
    /// What starts a table's title line: a Markdown heading marker, or
    /// nothing on a terminal.
    pub fn heading(self) -> &'static str {
        match self {
            Self::Aligned => "",
            Self::Markdown => "### ",
        }
    }

    /// Aligned when stdout is a terminal, Markdown otherwise.
    pub fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Aligned
        } else {
            Self::Markdown
        }
    }
}

/// A table: a header row and rows of already formatted cells; columns
/// whose header is in `right` are right-aligned (numbers).
///
/// ```ignore
/// let mut table = Table::new(&["path", "ops/s"], &["ops/s"]);
/// table.row(vec!["naive".into(), "1,000".into()]);
/// assert!(table.render(Style::Markdown).starts_with("| path | ops/s |"));
/// ```
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(headers: &[&str], right_aligned: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            right: headers.iter().map(|h| right_aligned.contains(h)).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row (one cell per header).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, ending with a newline.
    pub fn render(&self, style: Style) -> String {
        match style {
            Style::Markdown => self.markdown(),
            Style::Aligned => self.aligned(),
        }
    }

    fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.headers.join(" | "));
        let rule: Vec<&str> = self
            .right
            .iter()
            .map(|&right| if right { "---:" } else { "---" })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }

    fn aligned(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .filter_map(|row| row.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.right)
                .map(|((cell, &width), &right)| {
                    if right {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.headers);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&line(&rule));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut table = Table::new(&["path", "ops/s"], &["ops/s"]);
        table.row(vec!["naive".into(), "1,000".into()]);
        table.row(vec!["coalesce".into(), "52,000".into()]);
        table
    }

    #[test]
    fn markdown_keeps_cells_and_alignment_rule() {
        assert_eq!(
            table().render(Style::Markdown),
            "| path | ops/s |\n|---|---:|\n| naive | 1,000 |\n| coalesce | 52,000 |\n"
        );
    }

    #[test]
    fn aligned_columns_line_up() {
        assert_eq!(
            table().render(Style::Aligned),
            "path       ops/s\n--------  ------\nnaive      1,000\ncoalesce  52,000\n"
        );
    }
}
