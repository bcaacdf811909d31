//! Delimited-text helpers shared by every reader of CSV/TSV files (the vendor readers, sample sheets,
//! gene-pair tables).

use std::borrow::Cow;

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
    fn quoted_fields_are_unquoted() {
        let f = split_fields("\"a,b\",c,\"say \"\"hi\"\"\",", b',');
        assert_eq!(f, vec!["a,b", "c", "say \"hi\"", ""]);
        assert_eq!(split_fields("x\ty\r", b'\t'), vec!["x", "y"]);
    }
}
