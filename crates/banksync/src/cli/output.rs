//! How the data commands print: aligned tables for people, JSON lines for scripts (`--json`).
//!
//! Tables go to standard output with a header row; notes and summaries go to standard error, so `| grep` and
//! `| jq` see only the rows.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A table printed with columns padded to their widest cell (cells are made single-line first).
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self { header: header.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| c.replace(['\t', '\n', '\r'], " ")).collect());
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    out.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// One JSON document on one line.
pub fn json_line<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// `2026-11-28 13:05 UTC`, or `never`.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// The cell for an optional text.
pub fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_the_widest_cell_and_flatten_newlines() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["a-long-id".into(), "x".into()]);
        t.row(vec!["b".into(), "two\nlines".into()]);
        assert_eq!(t.render(), "ID         NAME\na-long-id  x\nb          two lines\n");
    }
}
