//! Escaping for every XML and HTML document vmmap writes (`.mmp`, the SVG
//! map, the HTML report), one way: quick-xml's escaping of the markup
//! characters, plus what XML 1.0 cannot hold as is. Model strings stay
//! raw; they are escaped only when written. The XML documents themselves
//! are written with quick-xml's `Writer`, an element (or a few) a line
//! ([`line`]), so that they diff and grep line by line.

use std::borrow::Cow;
use std::io::{self, Write};

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

/// `s` made safe as element content or a quoted attribute value: `& < >
/// " '` as entities (quick-xml); tab and line breaks as character
/// references, so that they survive attribute-value normalisation; the
/// control characters XML 1.0 forbids as U+FFFD.
pub fn escape(s: &str) -> Cow<'_, str> {
    let e = quick_xml::escape::escape(s);
    if !e.chars().any(is_xml_control) {
        return e;
    }
    let mut out = String::with_capacity(e.len() + 8);
    for c in e.chars() {
        match c {
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_control(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters [`escape`] rewrites beyond markup.
fn is_xml_control(c: char) -> bool {
    (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}'
}

/// An attribute for quick-xml's writer, its value escaped with [`escape`]
/// (quick-xml's own escaping keeps tabs and line breaks raw, which a
/// reader's attribute-value normalisation turns into spaces).
pub fn attribute<'a>(key: &'a str, value: &str) -> Attribute<'a> {
    Attribute {
        key: QName(key.as_bytes()),
        value: Cow::Owned(escape(value).into_owned().into_bytes()),
    }
}

/// Text content, escaped with [`escape`] (quick-xml's `BytesText::new`
/// would keep control characters that XML 1.0 forbids).
pub fn text(s: &str) -> Event<'_> {
    Event::Text(BytesText::from_escaped(escape(s)))
}

/// Writes `events` on a line of their own, `indent` spaces in.
pub fn line<'a, W: Write>(
    x: &mut Writer<W>,
    indent: usize,
    events: impl IntoIterator<Item = Event<'a>>,
) -> io::Result<()> {
    write!(x.get_mut(), "{:indent$}", "")?;
    for e in events {
        x.write_event(e)?;
    }
    x.get_mut().write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_controls_are_escaped_plain_text_borrowed() {
        assert!(matches!(
            escape("/usr/lib/libc.so.6"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape("<a & \"b\">\t\n\r\x01\u{ffff}x"),
            "&lt;a &amp; &quot;b&quot;&gt;&#9;&#10;&#13;\u{fffd}\u{fffd}x"
        );
    }
}
