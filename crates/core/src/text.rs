//! Text helpers shared by every reader of text files: UTF-8 decoding (vendor files, sample sheets, gene
//! sets, pair tables, rules and configs) and delimited fields (CSV/TSV).

use crate::{Error, Result};
use std::borrow::Cow;
use std::path::Path;

/// Reads a whole (uncompressed) text file: [`decode_text`] of its bytes.
pub fn read_text_file(path: &Path) -> Result<String> {
    decode_text(path, std::fs::read(path).map_err(|e| Error::io(path, e))?)
}

/// The UTF-8 text of `bytes` read from `path`, without a leading byte-order mark (spreadsheet programs
/// write one, which would otherwise become part of the first column or set name). Bytes that are not UTF-8
/// are an input error naming the line, the byte and what to do.
pub fn decode_text(path: &Path, bytes: Vec<u8>) -> Result<String> {
    let mut text = String::from_utf8(bytes).map_err(|e| not_utf8(path, e.as_bytes(), e.utf8_error().valid_up_to()))?;
    if text.starts_with('\u{feff}') {
        text.replace_range(..3, "");
    }
    Ok(text)
}

/// The error for text that is not UTF-8: names the line and the byte, and says what to do.
fn not_utf8(path: &Path, bytes: &[u8], at: usize) -> Error {
    let line = bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1;
    let column = at - bytes[..at.min(bytes.len())].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
    let byte = bytes.get(at).map(|b| format!("0x{b:02X}")).unwrap_or_default();
    Error::input(
        path,
        format!("line {line}"),
        format!(
            "not UTF-8 text: invalid byte {byte} at character {column} (e.g. a Latin-1 or Windows-1252 name); \
             expected UTF-8: re-save the file as UTF-8"
        ),
    )
}

/// Splits one line into fields, removing RFC 4180 quotes. Trailing `\r` is ignored.
pub fn split_fields(line: &str, delim: u8) -> Vec<Cow<'_, str>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut start = 0usize;
    while start <= bytes.len() {
        if bytes.get(start) == Some(&b'"') {
            // Quoted field: read up to the closing quote, unescaping doubled quotes.
            let mut value = String::new();
            let mut i = start + 1;
            let mut seg = i;
            loop {
                match bytes[i..].iter().position(|&b| b == b'"') {
                    None => {
                        value.push_str(&line[seg..]);
                        i = bytes.len();
                        break;
                    }
                    Some(p) => {
                        let q = i + p;
                        value.push_str(&line[seg..q]);
                        if bytes.get(q + 1) == Some(&b'"') {
                            value.push('"');
                            i = q + 2;
                            seg = i;
                        } else {
                            i = q + 1;
                            break;
                        }
                    }
                }
            }
            // Anything between the closing quote and the delimiter is kept (lenient, like R and pandas).
            let end = bytes[i..].iter().position(|&b| b == delim).map(|p| i + p).unwrap_or(bytes.len());
            value.push_str(&line[i..end]);
            out.push(Cow::Owned(value));
            start = end + 1;
        } else {
            let end = bytes[start..].iter().position(|&b| b == delim).map(|p| start + p).unwrap_or(bytes.len());
            out.push(Cow::Borrowed(&line[start..end]));
            start = end + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_are_dropped_and_non_utf8_is_explained() {
        let p = Path::new("sets.gmt");
        assert_eq!(decode_text(p, b"\xEF\xBB\xBFhypoxia\tx\tVEGFA\n".to_vec()).unwrap(), "hypoxia\tx\tVEGFA\n");
        let e = decode_text(p, b"a\nb\xE9\n".to_vec()).unwrap_err().to_string();
        assert!(e.contains("sets.gmt") && e.contains("line 2") && e.contains("0xE9") && e.contains("UTF-8"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("bom.gmt");
        std::fs::write(&f, b"\xEF\xBB\xBFset\tdesc\tA\tB\tC\n").unwrap();
        assert_eq!(crate::programs::read_gene_sets(&f).unwrap()[0].name, "set");
    }

    #[test]
    fn quoted_fields_are_unquoted() {
        let f = split_fields("\"a,b\",c,\"say \"\"hi\"\"\",", b',');
        assert_eq!(f, vec!["a,b", "c", "say \"hi\"", ""]);
        assert_eq!(split_fields("x\ty\r", b'\t'), vec!["x", "y"]);
    }
}
