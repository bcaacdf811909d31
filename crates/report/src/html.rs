//! Small HTML building helpers: escaping, tables, figures, and the page's inline style sheet.

use crate::data::TextTable;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Escapes a relative link for an `href`/`src` attribute (spaces and a few reserved characters
/// percent-encoded, `/` kept).
pub fn href(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => o.push_str("%20"),
            '#' => o.push_str("%23"),
            '?' => o.push_str("%3F"),
            '%' => o.push_str("%25"),
            '"' => o.push_str("%22"),
            '<' => o.push_str("%3C"),
            '>' => o.push_str("%3E"),
            '&' => o.push_str("&amp;"),
            _ => o.push(c),
        }
    }
    o
}

/// A lowercase id fragment from a name: letters, digits and `-` only.
pub fn slug(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            o.push(c.to_ascii_lowercase());
        } else if !o.ends_with('-') {
            o.push('-');
        }
    }
    let o = o.trim_matches('-').to_string();
    if o.is_empty() {
        "x".into()
    } else {
        o
    }
}

/// An HTML table of a [`TextTable`].
pub fn table(t: &TextTable) -> String {
    let mut h = String::from("<div class=\"scroll\"><table><thead><tr>");
    for c in &t.columns {
        h.push_str(&format!("<th>{}</th>", esc(c)));
    }
    h.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        h.push_str("<tr>");
        for c in r {
            h.push_str(&format!("<td>{}</td>", esc(c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>");
    if t.total_rows > t.rows.len() {
        h.push_str(&format!("<p class=\"note\">First {} of {} rows.</p>", t.rows.len(), t.total_rows));
    }
    h
}

/// A figure: the PNG shown, the SVG linked.
pub fn figure(id: &str, caption: &str) -> String {
    format!(
        "<figure><a href=\"figures/{id}.svg\"><img src=\"figures/{id}.png\" alt=\"{alt}\" loading=\"lazy\"></a>\
         <figcaption>{cap} <a href=\"figures/{id}.svg\">SVG</a> · <a href=\"figures/{id}.png\">PNG</a></figcaption></figure>",
        id = href(id),
        alt = esc(caption),
        cap = caption
    )
}

/// The paragraph shown when a stage's output is missing.
pub fn not_run(what: &str, files: &str) -> String {
    format!("<p class=\"notrun\">Not run: {} ({} not found).</p>", esc(what), esc(files))
}

/// The inline style sheet (no external fonts or scripts).
pub const STYLE: &str = r#"
body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;margin:0;color:#222;background:#fafafa;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:26px}
header p{margin:4px 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;position:sticky;top:0;z-index:2;font-size:14px}
nav a{margin-right:14px;color:#1f3a5f}
main{padding:8px 32px 40px;max-width:1800px}
section{background:#fff;border:1px solid #e2e2e2;border-radius:6px;margin:18px 0;padding:6px 20px 16px}
h2{color:#1f3a5f;border-bottom:2px solid #e6e6e6;padding-bottom:4px}
h3{color:#333;margin-top:22px}
.summary li{margin:6px 0;font-size:16px}
.grid{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;flex:1 1 560px;max-width:900px}
figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#555}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7}
.scroll{overflow-x:auto;max-height:520px;overflow-y:auto}
.notrun{color:#8a5a00;background:#fff6e0;border-left:4px solid #e69f00;padding:6px 10px}
.note{color:#666;font-size:13px}
.howto{color:#444;font-size:14px;max-width:1100px}
details{margin:4px 0}
pre{background:#f5f5f5;padding:8px;overflow-x:auto;font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle;border:1px solid #999}
"#;
