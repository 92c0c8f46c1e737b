//! Reading an NDJSON file line by line, gzip or not, in bounded memory: a
//! line longer than the limit is skipped to its end (and reported), never
//! buffered whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// A file's lines, one buffer reused for all of them.
pub struct Lines<'r> {
    reader: Box<dyn BufRead + 'r>,
    /// Whether the file is gzip-compressed (read from its first two bytes).
    pub gzip: bool,
    /// The number of the line last read (1-based).
    pub number: u64,
    /// Bytes read so far (decompressed).
    pub bytes: u64,
    limit: usize,
}

/// One line as read.
pub enum Line<'b> {
    Text(&'b [u8]),
    /// Longer than the limit: its first bytes were dropped with the rest.
    TooLong,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl<'r> Lines<'r> {
    /// Opens a file; gzip is recognized by its magic bytes, whatever its name.
    pub fn open(path: &Path, limit: usize) -> io::Result<Lines<'static>> {
        let mut raw = BufReader::with_capacity(1 << 16, File::open(path)?);
        let gzip = raw.fill_buf()?.starts_with(&GZIP_MAGIC);
        let reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        Ok(Lines::from_reader(reader, gzip, limit))
    }

    /// Lines of any reader (tests, `import --file`).
    pub fn from_reader(reader: Box<dyn BufRead + 'r>, gzip: bool, limit: usize) -> Lines<'r> {
        Lines {
            reader,
            gzip,
            number: 0,
            bytes: 0,
            limit,
        }
    }

    /// The next line into `buf` (without its `\n` or `\r\n`); None at the end.
    pub fn next<'b>(&mut self, buf: &'b mut Vec<u8>) -> io::Result<Option<Line<'b>>> {
        buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if buf.len() + take > self.limit.saturating_add(2) {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            self.reader.consume(take);
            self.bytes += take as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Line::TooLong));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(Line::Text(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8], limit: usize) -> Vec<Option<String>> {
        let mut lines =
            Lines::from_reader(Box::new(std::io::Cursor::new(text.to_vec())), false, limit);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = lines.next(&mut buf).expect("reads") {
            out.push(match line {
                Line::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                Line::TooLong => None,
            });
        }
        out
    }

    #[test]
    fn lines_are_split_on_lf_and_crlf_and_long_ones_skipped_whole() {
        assert_eq!(
            all(b"a\r\nbb\n\nccc", 10),
            vec![
                Some("a".into()),
                Some("bb".into()),
                Some(String::new()),
                Some("ccc".into())
            ]
        );
        assert_eq!(
            all(b"short\nthis one is too long\nok\n", 8),
            vec![Some("short".into()), None, Some("ok".into())]
        );
    }
}
