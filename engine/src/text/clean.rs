//! The official clean-up before normalising (§6.8): markdown syntax, emoji, newlines, tabs and
//! curly double quotes. Then one step of our own: runs of spaces collapse to one, because the
//! official English normaliser fails on a double space (which its own clean-up leaves where
//! inline code or an emoji sat between two words).
//!
//! The patterns are the official ones; Rust's `regex` runs them in linear time.

use std::sync::LazyLock;

use regex::Regex;

struct Patterns {
    code_block: Regex,
    inline_code: Regex,
    image: Regex,
    link: Regex,
    list_dash: Regex,
    html_tag: Regex,
    heading: Regex,
    blank_lines: Regex,
    emoji: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |pattern: &str| Regex::new(pattern).expect("valid clean-up pattern");
    Patterns {
        code_block: re(r"(?s)```.*?```"),
        inline_code: re(r"`[^`]*`"),
        image: re(r"!\[[^\]]*\]\([^\)]+\)"),
        link: re(r"\[([^\]]+)\]\([^)]+\)"),
        list_dash: re(r"(?m)^(\s*)-\s+"),
        html_tag: re(r"<[^>]+>"),
        heading: re(r"(?m)^#{1,6}\s*"),
        blank_lines: re(r"\n\s*\n"),
        emoji: re(r"\p{Emoji_Presentation}|\p{Emoji}\x{FE0F}"),
    }
});

/// The official `clean_markdown`: code, images and HTML tags go; links keep their text; list
/// dashes and heading marks at line starts go; blank lines merge; the ends are trimmed.
pub fn strip_markdown(text: &str) -> String {
    let p = &*PATTERNS;
    let text = p.code_block.replace_all(text, "");
    let text = p.inline_code.replace_all(&text, "");
    let text = p.image.replace_all(&text, "");
    let text = p.link.replace_all(&text, "$1");
    let text = p.list_dash.replace_all(&text, "$1");
    let text = p.html_tag.replace_all(&text, "");
    let text = p.heading.replace_all(&text, "");
    let text = p.blank_lines.replace_all(&text, "\n");
    text.trim().to_owned()
}

/// The official `clean_text` followed by collapsing space runs (see the module docs).
pub fn clean(text: &str) -> String {
    let text = strip_markdown(text);
    let text = PATTERNS.emoji.replace_all(&text, "");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            '\n' | '\t' => ' ',
            '\u{201C}' | '\u{201D}' => '"',
            c => c,
        };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_goes_and_link_text_stays() {
        assert_eq!(strip_markdown("# Title\n\n\n- item [a](http://x) `c` <i>b</i>"), "Title\nitem a  b");
        assert_eq!(strip_markdown("```\nlet x = 1;\n```done"), "done");
        assert_eq!(strip_markdown("![alt](p.png)text"), "text");
    }

    #[test]
    fn emoji_newlines_and_curly_quotes() {
        assert_eq!(clean("Hi 😀 there\n\t“you”"), "Hi there \"you\"");
        assert_eq!(clean("❤\u{FE0F} ok"), " ok");
        assert_eq!(clean("plain text, 123."), "plain text, 123.");
    }
}
