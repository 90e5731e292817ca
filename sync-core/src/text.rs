//! Text from devices: which characters a field may hold, and how a message
//! quotes what a device sent.
//!
//! PostgreSQL's TEXT refuses the NUL character, so one NUL that reaches the
//! database (in finding text, or in a refusal quoting a bad key) fails the
//! writer's transaction for everyone's changes. Control characters are
//! refused wherever a person types ([`forbidden`]), and whatever a message
//! quotes from a device is escaped and cut short first ([`quote`]).

use std::fmt;

/// The most characters of a device's text a message quotes.
pub const QUOTED_CHARS: usize = 64;

/// Unicode's noncharacters: never to be interchanged (U+FFFE also reads as
/// a byte-order mark the wrong way round).
fn is_noncharacter(c: char) -> bool {
    let u = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&u) || u & 0xFFFE == 0xFFFE
}

/// Characters that change how the text around them is shown (direction
/// overrides, line and paragraph separators): allowed in text, but escaped
/// when a message quotes it, so a quote cannot pass for something else.
fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` may not stand in text: a C0 or C1 control character (NUL,
/// escape, carriage return, delete ...) or a noncharacter; a tab or a line
/// break only where `multi_line`.
pub fn is_forbidden(c: char, multi_line: bool) -> bool {
    match c {
        '\t' | '\n' => !multi_line,
        c => c.is_control() || is_noncharacter(c),
    }
}

/// The first character of `text` that a field may not hold.
pub fn forbidden(text: &str, multi_line: bool) -> Option<char> {
    // Nearly all text is printable ASCII: one pass over the bytes settles it.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    text.chars().find(|c| is_forbidden(*c, multi_line))
}

/// A character as a message names it: `U+0000`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Device text as a message may quote it: at most [`QUOTED_CHARS`]
/// characters (then `…`), control characters, noncharacters and reordering
/// characters written as `\u{..}`, and `\` as `\\` so that an escape cannot be forged.
pub fn quote(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// See [`quote`].
#[derive(Clone, Copy, Debug)]
pub struct Quoted<'a>(&'a str);

fn escaped(c: char) -> bool {
    is_forbidden(c, false) || reorders(c)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(QUOTED_CHARS) {
            match c {
                '\\' => f.write_str("\\\\")?,
                c if escaped(c) => write!(f, "\\u{{{:04x}}}", u32::from(c))?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// A whole message with anything unprintable escaped, uncut: the last guard
/// on messages put together from several parts (one of which may be an
/// error from Automerge), before they are sent or stored. Quoted parts are
/// already escaped; backslashes are left as they are, so they stay single.
pub fn scrub(message: String) -> String {
    if !message.chars().any(escaped) {
        return message;
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_noncharacters_are_forbidden_tabs_and_breaks_only_in_multi_line_text()
    {
        for c in [
            '\0',
            '\u{1b}',
            '\r',
            '\u{7f}',
            '\u{85}',
            '\u{9f}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{fdd0}',
            '\u{1fffe}',
        ] {
            assert!(is_forbidden(c, true), "{c:?}");
            assert_eq!(forbidden(&format!("ok {c} ok"), true), Some(c));
        }
        for c in ['\t', '\n'] {
            assert!(is_forbidden(c, false) && !is_forbidden(c, true), "{c:?}");
        }
        for text in ["plain", "हिन्दी पाठ", "émigré — “quoted”", "\u{2028}", ""]
        {
            assert_eq!(forbidden(text, false), None, "{text:?}");
        }
    }

    #[test]
    fn quotes_escape_what_cannot_be_shown_and_stop_at_the_cap() {
        assert_eq!(quote("sqm.audit").to_string(), "sqm.audit");
        assert_eq!(
            quote("a\0b\\c\n\u{202e}").to_string(),
            "a\\u{0000}b\\\\c\\u{000a}\\u{202e}"
        );
        let long = "x".repeat(QUOTED_CHARS + 1);
        assert_eq!(
            quote(&long).to_string(),
            format!("{}…", "x".repeat(QUOTED_CHARS))
        );
        assert_eq!(scrub("bad \0 end \\".into()), "bad \\u{0000} end \\");
        let quoted = quote("\u{1}").to_string();
        assert_eq!(
            scrub(quoted.clone()),
            quoted,
            "scrubbing a quote changes nothing"
        );
    }
}
