//! Numbers as words: English cardinals, ordinals and years in the official normaliser's style
//! (no hyphens, "and" only after the hundred of the last group), inflect's style for the
//! final spell-out pass, and Chinese numerals with 万/亿 grouping, 零 and 两.

/// Digit strings longer than this are read digit by digit (beyond the trillions no script
/// means a quantity, and it keeps the arithmetic in `u64`).
pub const MAX_CARDINAL_DIGITS: usize = 15;

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const SCALES: [&str; 5] = ["", "thousand", "million", "billion", "trillion"];

/// Parses a plain digit string that fits a cardinal reading.
pub fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > MAX_CARDINAL_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// 0..=99 in words, `joiner` between tens and units (" " here, "-" for inflect).
fn en_below_hundred(n: u64, joiner: &str) -> String {
    match n {
        0..=19 => ONES[n as usize].to_owned(),
        _ if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_owned(),
        _ => format!("{}{joiner}{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize]),
    }
}

/// `n`'s three-digit groups, least significant first (1234567 -> [567, 234, 1]).
fn thousands(mut n: u64) -> Vec<u64> {
    let mut groups = Vec::new();
    while n > 0 {
        groups.push(n % 1000);
        n /= 1000;
    }
    groups
}

/// An English cardinal as the official normaliser says it: "one hundred twenty three thousand
/// four hundred and fifty six" ("and" only when `and` is set, after the last group's hundred).
pub fn en_cardinal(n: u64, and: bool) -> String {
    if n == 0 {
        return "zero".into();
    }
    let groups = thousands(n);
    let mut words: Vec<String> = Vec::new();
    for (scale, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            continue;
        }
        let (hundreds, tail) = (group / 100, group % 100);
        if hundreds > 0 {
            words.push(format!("{} hundred", ONES[hundreds as usize]));
            if tail > 0 && and && scale == 0 {
                words.push("and".into());
            }
        }
        if tail > 0 {
            words.push(en_below_hundred(tail, " "));
        }
        if scale > 0 {
            words.push(SCALES[scale].into());
        }
    }
    words.join(" ")
}

/// Each digit as a word; `zero` is "zero" or "oh".
pub fn en_digits(digits: &str, zero: &str) -> String {
    digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| if b == b'0' { zero } else { ONES[(b - b'0') as usize] })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ordinal of the last word of a cardinal phrase.
fn ordinal_word(word: &str) -> String {
    match word {
        "one" => "first".into(),
        "two" => "second".into(),
        "three" => "third".into(),
        "five" => "fifth".into(),
        "eight" => "eighth".into(),
        "nine" => "ninth".into(),
        "twelve" => "twelfth".into(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    }
}

/// Replaces the last word of `phrase` by `f(last)`.
fn map_last_word(phrase: &str, f: impl FnOnce(&str) -> String) -> String {
    match phrase.rsplit_once(' ') {
        Some((head, last)) => format!("{head} {}", f(last)),
        None => f(phrase),
    }
}

/// "twenty first", "one hundred first", "one thousandth" (no "and", as the official reads).
pub fn en_ordinal(n: u64) -> String {
    map_last_word(&en_cardinal(n, false), ordinal_word)
}

/// The plural of a number word for decades ("nineties") and fraction denominators ("thirds").
pub fn en_plural(phrase: &str) -> String {
    map_last_word(phrase, |w| match w.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{w}s"),
    })
}

/// A year from 1000 to 2999 the official way: "nineteen ninety nine", "eighteen hundred",
/// "nineteen zero five", "two thousand five", "twenty ten".
pub fn en_year(n: u64) -> String {
    let (century, rest) = (n / 100, n % 100);
    if (2000..=2009).contains(&n) {
        return en_cardinal(n, false);
    }
    match rest {
        0 => format!("{} hundred", en_below_hundred(century, " ")),
        1..=9 => format!("{} zero {}", en_below_hundred(century, " "), ONES[rest as usize]),
        _ => format!("{} {}", en_below_hundred(century, " "), en_below_hundred(rest, " ")),
    }
}

/// Whether a four-digit string is read as a year (the official reads 1000..=2999 so).
pub fn is_year(digits: &str) -> bool {
    digits.len() == 4 && matches!(digits.as_bytes()[0], b'1' | b'2')
}

/// inflect's `number_to_words` for a digit run, which the official applies to any digits the
/// English normaliser left: "one thousand, two hundred and thirty-four". Runs too long for a
/// cardinal are read digit by digit.
pub fn inflect_words(digits: &str) -> String {
    let Some(n) = parse_digits(digits) else {
        return en_digits(digits, "zero");
    };
    if n == 0 {
        return "zero".into();
    }
    let groups = thousands(n);
    let mut parts: Vec<String> = Vec::new();
    for (scale, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            continue;
        }
        let (hundreds, tail) = (group / 100, group % 100);
        let mut part = String::new();
        if hundreds > 0 {
            part = format!("{} hundred", ONES[hundreds as usize]);
            if tail > 0 {
                part.push_str(" and ");
            }
        } else if scale == 0 && groups.len() > 1 {
            part.push_str("and ");
        }
        if tail > 0 {
            part.push_str(&en_below_hundred(tail, "-"));
        }
        if scale > 0 {
            part = format!("{part} {}", SCALES[scale]);
        }
        parts.push(part);
    }
    parts.join(", ")
}

const ZH_DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/// Each digit as a Chinese numeral; `yao` reads 1 as 幺, as phone numbers are said.
pub fn zh_digits(digits: &str, yao: bool) -> String {
    digits
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| if yao && b == b'1' { '幺' } else { ZH_DIGITS[(b - b'0') as usize] })
        .collect()
}

/// A Chinese cardinal: groups of four digits under 万 and 亿, one 零 for each gap, 一十 shortened
/// to 十 at the start, and a leading 二 before 百/千/万/亿 said as 两 ("两百", "两万", but
/// "二十万", "一亿二千万"). Digit strings too long for a cardinal are read digit by digit.
pub fn zh_cardinal(digits: &str) -> String {
    let Some(n) = parse_digits(digits) else {
        return zh_digits(digits, false);
    };
    if n == 0 {
        return "零".into();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 10_000);
        rest /= 10_000;
    }
    const GROUP_UNITS: [&str; 4] = ["", "万", "亿", "万亿"];
    let mut out = String::new();
    let mut gap = false; // a zero stretch since the last digit said
    for (index, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            gap = !out.is_empty();
            continue;
        }
        if !out.is_empty() && (gap || group < 1000) {
            out.push('零');
        }
        out.push_str(&zh_group(group));
        out.push_str(GROUP_UNITS[index]);
        gap = false;
    }
    if let Some(rest) = out.strip_prefix("一十") {
        out = format!("十{rest}");
    }
    let mut chars = out.chars();
    if chars.next() == Some('二') && matches!(chars.next(), Some('百' | '千' | '万' | '亿')) {
        out = format!("两{}", &out['二'.len_utf8()..]);
    }
    out
}

/// 1..=9999 without its group unit: "一千零一", "一百一十", "零" only between digits.
fn zh_group(group: u64) -> String {
    const UNITS: [&str; 4] = ["千", "百", "十", ""];
    let digits = [group / 1000, group / 100 % 10, group / 10 % 10, group % 10];
    let first = digits.iter().position(|&d| d != 0).unwrap_or(3);
    let last = digits.iter().rposition(|&d| d != 0).unwrap_or(3);
    let mut out = String::new();
    let mut zero = false;
    for i in first..=last {
        if digits[i] == 0 {
            zero = true;
            continue;
        }
        if zero {
            out.push('零');
            zero = false;
        }
        out.push(ZH_DIGITS[digits[i] as usize]);
        out.push_str(UNITS[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_cardinals_put_and_only_in_the_last_group() {
        assert_eq!(en_cardinal(123_456, true), "one hundred twenty three thousand four hundred and fifty six");
        assert_eq!(en_cardinal(100_000, true), "one hundred thousand");
        assert_eq!(en_cardinal(101, false), "one hundred one");
        assert_eq!(en_cardinal(1_500_000, true), "one million five hundred thousand");
    }

    #[test]
    fn ordinals_years_and_plurals() {
        assert_eq!(en_ordinal(101), "one hundred first");
        assert_eq!(en_ordinal(1000), "one thousandth");
        assert_eq!(en_ordinal(20), "twentieth");
        assert_eq!(en_year(1000), "ten hundred");
        assert_eq!(en_year(1905), "nineteen zero five");
        assert_eq!(en_year(2005), "two thousand five");
        assert_eq!(en_year(2010), "twenty ten");
        assert_eq!(en_plural("nineteen ninety"), "nineteen nineties");
        assert_eq!(en_plural("eight"), "eights");
    }

    #[test]
    fn inflect_style_for_leftover_digits() {
        assert_eq!(inflect_words("1234"), "one thousand, two hundred and thirty-four");
        assert_eq!(inflect_words("1001"), "one thousand, and one");
        assert_eq!(inflect_words("0"), "zero");
        assert_eq!(inflect_words(&"9".repeat(20)).split(' ').count(), 20);
    }

    #[test]
    fn chinese_zeros_and_liang() {
        for (digits, words) in [
            ("10", "十"),
            ("110", "一百一十"),
            ("1001", "一千零一"),
            ("10010", "一万零一十"),
            ("100000001", "一亿零一"),
            ("120000000", "一亿二千万"),
            ("200000", "二十万"),
            ("2000000", "两百万"),
            ("202", "两百零二"),
            ("1234567", "一百二十三万四千五百六十七"),
            ("0", "零"),
        ] {
            assert_eq!(zh_cardinal(digits), words, "{digits}");
        }
        assert_eq!(zh_digits("110", true), "幺幺零");
    }
}
