//! Escaping for every XML and HTML document vmmap writes (`.mmp`, the SVG
//! map, the HTML report), one way: quick-xml's escaping of the markup
//! characters, plus what XML 1.0 cannot hold as is. Model strings stay
//! raw; they are escaped only when written.

use std::borrow::Cow;

use quick_xml::events::attributes::Attribute;
use quick_xml::name::QName;

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
pub(crate) fn attribute<'a>(key: &'a str, value: &str) -> Attribute<'a> {
    Attribute {
        key: QName(key.as_bytes()),
        value: Cow::Owned(escape(value).into_owned().into_bytes()),
    }
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
