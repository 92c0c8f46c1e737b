//! Tables (and the prose around them) for people, fitted to the width of
//! the terminal. Each row is one line: a cell never wraps, so a word is
//! never broken across lines. When the table is too wide, the columns of
//! lowest priority go first, then the cells of the columns that may be cut
//! are shortened to a word boundary and end with "…". `--wide` shows every
//! column uncut. JSON output never comes here.
//!
//! The width, decided once per process (`init`): `--wide` → no limit; else
//! `$COLUMNS` when it is a number; else the terminal's width when stdout is
//! a terminal; else no limit (output into a file or a pipe keeps every
//! column: a script reads `--format json`, and `grep` sees whole cells).

use comfy_table::{ContentArrangement, Table as Comfy, presets::UTF8_FULL_CONDENSED};
use std::borrow::Cow;
use std::sync::OnceLock;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How wide a table may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// `--wide`, or output that is not a terminal: every column, uncut.
    Unlimited,
    /// At most this many terminal columns per line.
    Columns(usize),
}

/// The narrowest width honoured: below it no table is readable anyway.
const NARROWEST: usize = 20;

static WIDTH: OnceLock<Width> = OnceLock::new();

/// Decides the width for the process (called once, from `cli::main`).
pub fn init(wide: bool) {
    let columns = std::env::var("COLUMNS").ok();
    let _ = WIDTH.set(Width::detect(wide, columns.as_deref(), || {
        Comfy::new().width()
    }));
}

/// The width decided by `init` (no limit before it).
pub fn width() -> Width {
    WIDTH.get().copied().unwrap_or(Width::Unlimited)
}

impl Width {
    /// `--wide` wins; then `$COLUMNS` when it is a positive number; then
    /// the terminal's width (`terminal` is asked only then; None when
    /// stdout is not a terminal); else no limit.
    pub fn detect(
        wide: bool,
        columns: Option<&str>,
        terminal: impl FnOnce() -> Option<u16>,
    ) -> Width {
        if wide {
            return Width::Unlimited;
        }
        if let Some(n) = columns.and_then(|c| c.trim().parse::<usize>().ok())
            && n > 0
        {
            return Width::Columns(n.max(NARROWEST));
        }
        match terminal() {
            Some(n) if n > 0 => Width::Columns(usize::from(n).max(NARROWEST)),
            _ => Width::Unlimited,
        }
    }
}

/// A column: its header, how soon it is dropped, and whether it may be cut.
#[derive(Debug, Clone)]
pub struct Column {
    name: Cow<'static, str>,
    /// 0: never dropped; otherwise the highest number is dropped first.
    priority: u8,
    /// The narrowest a cell may be cut to; None: shown whole or not at all
    /// (ids, codes, dates).
    min: Option<usize>,
}

impl Column {
    /// A column shown whole (an id, a code, a date), or dropped.
    pub const fn whole(name: &'static str, priority: u8) -> Column {
        Column {
            name: Cow::Borrowed(name),
            priority,
            min: None,
        }
    }

    /// A column of text that may be cut to `min` columns (with "…").
    pub const fn cut(name: &'static str, priority: u8, min: usize) -> Column {
        Column {
            name: Cow::Borrowed(name),
            priority,
            min: Some(min),
        }
    }

    /// A column of text named at run time (a source in a reconciled list).
    pub fn cut_named(name: String, priority: u8, min: usize) -> Column {
        Column {
            name: Cow::Owned(name),
            priority,
            min: Some(min),
        }
    }
}

/// A table being filled: its columns and rows of text.
pub struct Table {
    columns: Cow<'static, [Column]>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &'static [Column]) -> Table {
        Table {
            columns: Cow::Borrowed(columns),
            rows: Vec::new(),
        }
    }

    /// A table whose columns are known only at run time.
    pub fn with_columns(columns: Vec<Column>) -> Table {
        Table {
            columns: Cow::Owned(columns),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one text per column (missing ones are empty). Line
    /// breaks and tabs become spaces: a row is one line.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| one_line(c)).collect();
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// Prints the table fitted to the process's width.
    pub fn print(&self) {
        println!("{}", self.render(width()));
    }

    /// The table as text, fitted to `width`.
    pub fn render(&self, width: Width) -> String {
        let natural: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].width())
                    .chain([self.columns[i].name.width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let fitted = match width {
            Width::Unlimited => (0..self.columns.len()).map(|i| (i, natural[i])).collect(),
            Width::Columns(w) => layout(&self.columns, &natural, w),
        };
        let mut t = Comfy::new();
        // The cells arrive cut to their width: comfy-table must not wrap
        // them again (its wrapping splits words).
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(
                fitted
                    .iter()
                    .map(|&(i, w)| truncate(&self.columns[i].name, w))
                    .collect::<Vec<_>>(),
            );
        for r in &self.rows {
            t.add_row(
                fitted
                    .iter()
                    .map(|&(i, w)| truncate(&r[i], w))
                    .collect::<Vec<_>>(),
            );
        }
        t.to_string()
    }
}

/// The columns kept and their widths, for a table of `natural` widths in
/// `width` terminal columns. Columns are taken in order of priority until
/// one does not fit at its narrowest (priority 0 always), so the columns of
/// lowest priority go before a column of higher priority is squeezed below
/// its `min`; then the room left is shared, the widest cut columns giving
/// up room one terminal column at a time.
fn layout(columns: &[Column], natural: &[usize], width: usize) -> Vec<(usize, usize)> {
    // "│ a ┆ b │": one border per column and one more, a space each side.
    let overhead = |n: usize| 3 * n + 1;
    let narrowest = |i: usize| columns[i].min.map_or(natural[i], |m| m.min(natural[i]));
    let mut by_priority: Vec<usize> = (0..columns.len()).collect();
    by_priority.sort_by_key(|&i| columns[i].priority);
    let mut kept: Vec<usize> = Vec::new();
    let mut used = 0;
    for i in by_priority {
        let fits = used + narrowest(i) + overhead(kept.len() + 1) <= width;
        if !fits && columns[i].priority > 0 {
            break;
        }
        kept.push(i);
        used += narrowest(i);
    }
    kept.sort_unstable();
    let mut widths: Vec<usize> = kept.iter().map(|&i| natural[i]).collect();
    let room = width.saturating_sub(overhead(kept.len()));
    let mut excess = widths.iter().sum::<usize>().saturating_sub(room);
    while excess > 0 {
        let Some(k) = (0..kept.len())
            .filter(|&k| widths[k] > narrowest(kept[k]))
            .max_by_key(|&k| (widths[k], columns[kept[k]].priority))
        else {
            break;
        };
        widths[k] -= 1;
        excess -= 1;
    }
    kept.into_iter().zip(widths).collect()
}

/// A cell's text on one line.
fn one_line(text: &str) -> String {
    if text.contains(['\n', '\r', '\t']) {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        text.to_string()
    }
}

/// `text` in at most `width` columns: whole when it fits, else cut after
/// the last whole word that fits (within the first word only when even
/// that does not fit) and ended with "…".
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let room = width - 1; // for the "…"
    let mut used = 0;
    let mut end = 0; // byte end of the longest prefix within `room`
    let mut word_end = None; // byte end of the last whole word within `room`
    let mut previous_was_space = false;
    for (at, c) in text.char_indices() {
        let w = c.width().unwrap_or(0);
        if c.is_whitespace() && !previous_was_space {
            word_end = Some(at);
        }
        previous_was_space = c.is_whitespace();
        if used + w > room {
            break;
        }
        used += w;
        end = at + c.len_utf8();
    }
    let cut = match word_end {
        Some(at) if !text[..at].trim().is_empty() => &text[..at],
        _ => &text[..end],
    };
    format!(
        "{}…",
        cut.trim_end_matches(
            |c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '/' | '(')
        )
    )
}

/// Prints prose wrapped at word boundaries to the process's width, the
/// lines after the first indented by `indent` spaces.
pub fn say(text: &str, indent: usize) {
    println!("{}", wrap(text, width(), indent));
}

/// `text` wrapped at spaces to `width`, the lines after the first indented
/// by `indent` spaces. A word longer than a line stays whole on its own
/// line: words are never broken.
pub fn wrap(text: &str, width: Width, indent: usize) -> String {
    let Width::Columns(width) = width else {
        return text.to_string();
    };
    if text.width() <= width {
        return text.to_string();
    }
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let mut line = text[..text.len() - text.trim_start().len()].to_string();
    let mut has_word = false;
    for word in text.split_whitespace() {
        if has_word && line.width() + 1 + word.width() > width {
            out.push_str(&line);
            out.push('\n');
            line.clone_from(&pad);
            has_word = false;
        }
        if has_word {
            line.push(' ');
        }
        line.push_str(word);
        has_word = true;
    }
    out.push_str(&line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_comes_from_wide_then_columns_then_the_terminal() {
        let tty = || Some(100u16);
        let no_tty = || None;
        assert_eq!(Width::detect(true, Some("80"), tty), Width::Unlimited);
        assert_eq!(Width::detect(false, Some("80"), tty), Width::Columns(80));
        assert_eq!(
            Width::detect(false, Some(" 120 "), no_tty),
            Width::Columns(120)
        );
        assert_eq!(Width::detect(false, None, tty), Width::Columns(100));
        assert_eq!(
            Width::detect(false, Some("wide"), tty),
            Width::Columns(100),
            "not a number: ignored"
        );
        assert_eq!(Width::detect(false, Some("0"), no_tty), Width::Unlimited);
        assert_eq!(
            Width::detect(false, None, no_tty),
            Width::Unlimited,
            "a file or a pipe: everything"
        );
        assert_eq!(
            Width::detect(false, Some("5"), no_tty),
            Width::Columns(NARROWEST)
        );
    }

    #[test]
    fn truncation_cuts_at_a_word_boundary_with_an_ellipsis() {
        let rows = [
            ("Take 1 tablet by mouth", 30, "Take 1 tablet by mouth"),
            ("Take 1 tablet by mouth", 22, "Take 1 tablet by mouth"),
            ("Take 1 tablet by mouth", 21, "Take 1 tablet by…"),
            ("Take 1 tablet by mouth", 12, "Take 1…"),
            ("Hydrocodone Bitartrate", 10, "Hydrocodo…"),
            ("Lisinopril", 1, "…"),
            ("Lisinopril", 0, ""),
            ("Prozac (fluoxetine) 20 mg", 16, "Prozac…"),
            ("Wéll known words", 10, "Wéll…"),
        ];
        for (text, width, expected) in rows {
            let got = truncate(text, width);
            assert_eq!(got, expected, "{text:?} in {width}");
            assert!(got.width() <= width, "{got:?} fits {width}");
        }
        assert_eq!(truncate("Tablet, Film Coated", 14), "Tablet, Film…");
        assert_eq!(truncate("  Take 1 tablet", 8), "  Take…");
        assert_eq!(truncate(" Hydrocodone", 6), " Hydr…");
        assert_eq!(truncate("Tablet, Film Coated", 12), "Tablet…");
    }

    const COLS: &[Column] = &[
        Column::whole("id", 0),
        Column::cut("name", 0, 6),
        Column::cut("detail", 2, 8),
        Column::whole("code", 1),
    ];

    fn sample() -> Table {
        let mut t = Table::new(COLS);
        t.row(vec![
            "1".into(),
            "Lisinopril 10 MG Oral Tablet".into(),
            "same clinical drug as item 1 from another labeler".into(),
            "unmapped_ndc".into(),
        ]);
        t.row(vec!["22".into(), "Ibuprofen\n800 MG".into()]);
        t
    }

    #[test]
    fn a_table_fits_by_dropping_low_priority_columns_then_cutting_cells() {
        let t = sample();
        let wide = t.render(Width::Unlimited);
        assert!(
            wide.contains("same clinical drug as item 1 from another labeler"),
            "{wide}"
        );
        assert!(
            wide.contains("Ibuprofen 800 MG"),
            "a row is one line: {wide}"
        );
        for w in [20, 30, 40, 60, 80, 120] {
            let out = t.render(Width::Columns(w));
            for line in out.lines() {
                assert!(
                    line.width() <= w.max(3 * 2 + 1 + 2 + 6),
                    "{w}: {line:?}\n{out}"
                );
            }
            assert_eq!(
                out.lines().count(),
                2 + 1 + 2 + 1,
                "one line per row at {w}:\n{out}"
            );
        }
        let at40 = t.render(Width::Columns(40));
        assert!(
            !at40.contains("detail"),
            "the lowest priority goes first:\n{at40}"
        );
        assert!(at40.contains("unmapped_ndc"), "{at40}");
        let at60 = t.render(Width::Columns(60));
        assert!(at60.contains("detail") && at60.contains('…'), "{at60}");
    }

    #[test]
    fn prose_wraps_at_spaces_and_never_breaks_a_word() {
        let text =
            "Patient demo-ccr-1 — regimen version 1 from demo-ccr-hmac-header — needs review";
        let out = wrap(text, Width::Columns(30), 2);
        for line in out.lines() {
            assert!(line.width() <= 30, "{line:?}");
        }
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        assert!(out.lines().skip(1).all(|l| l.starts_with("  ")), "{out}");
        assert_eq!(wrap(text, Width::Unlimited, 2), text);
        assert_eq!(wrap("  short", Width::Columns(30), 4), "  short");
    }
}
