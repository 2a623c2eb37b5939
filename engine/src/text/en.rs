//! English: numbers, money, dates, times, phone numbers, units and abbreviations said as words,
//! matching the answers of the official English normaliser (wetext) on our table, then
//! inflect's spell-out of any digits left (§6.8).
//!
//! One left-to-right scan: at each token start the matchers below try, longest forms first,
//! and each looks ahead a bounded distance (a digit run is read once), so the time is linear
//! in the input. Whatever no matcher claims is copied as it is.

use super::numbers::{
    MAX_CARDINAL_DIGITS, en_cardinal, en_digits, en_ordinal, en_plural, en_year, inflect_words, is_year, parse_digits,
};

/// Normalises one cleaned English line.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut scan = Scan { s: &chars, out: String::with_capacity(text.len() * 2), after_number: false };
    scan.run();
    spell_out_digits(scan.out.trim())
}

/// The official last step: inflect spells out any digit run the normaliser left.
fn spell_out_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            out.push_str(&inflect_words(&run));
            run.clear();
        }
        out.push(c);
    }
    if !run.is_empty() {
        out.push_str(&inflect_words(&run));
    }
    out
}

const MONTHS: [(&str, &str); 12] = [
    ("Jan", "january"),
    ("Feb", "february"),
    ("Mar", "march"),
    ("Apr", "april"),
    ("May", "may"),
    ("Jun", "june"),
    ("Jul", "july"),
    ("Aug", "august"),
    ("Sep", "september"),
    ("Oct", "october"),
    ("Nov", "november"),
    ("Dec", "december"),
];

/// Titles the official expands when written with their period.
const ABBREVIATIONS: [(&str, &str); 6] =
    [("Mr", "Mister"), ("Mrs", "Misses"), ("Dr", "doctor"), ("Mt", "Mount"), ("Jr", "junior"), ("Sr", "senior")];

/// Units after a number: (symbol, singular, plural), longest symbols first.
const UNITS: [(&str, &str, &str); 24] = [
    ("km/h", "kilometer per hour", "kilometers per hour"),
    ("m/s", "meter per second", "meters per second"),
    ("mph", "mile per hour", "miles per hour"),
    ("°C", "degree Celsius", "degrees Celsius"),
    ("°F", "degree Fahrenheit", "degrees Fahrenheit"),
    ("km", "kilometer", "kilometers"),
    ("kg", "kilogram", "kilograms"),
    ("cm", "centimeter", "centimeters"),
    ("mm", "millimeter", "millimeters"),
    ("ml", "milliliter", "milliliters"),
    ("mg", "milligram", "milligrams"),
    ("ft", "foot", "feet"),
    ("lbs", "pound", "pounds"),
    ("lb", "pound", "pounds"),
    ("oz", "ounce", "ounces"),
    ("mi", "mile", "miles"),
    ("min", "minute", "minutes"),
    ("GB", "gigabyte", "gigabytes"),
    ("MB", "megabyte", "megabytes"),
    ("kb", "kilobyte", "kilobytes"),
    ("KB", "kilobyte", "kilobytes"),
    ("kHz", "kilohertz", "kilohertz"),
    ("Hz", "hertz", "hertz"),
    ("m", "meter", "meters"),
];

/// A currency sign, its names, and its minor unit's names (said for two decimals).
struct Currency {
    symbol: char,
    one: &'static str,
    many: &'static str,
    minor: Option<(&'static str, &'static str)>,
}

const CURRENCIES: [Currency; 4] = [
    Currency { symbol: '$', one: "dollar", many: "dollars", minor: Some(("cent", "cents")) },
    Currency { symbol: '£', one: "pound", many: "pounds", minor: Some(("penny", "pence")) },
    Currency { symbol: '€', one: "euro", many: "euros", minor: Some(("cent", "cents")) },
    Currency { symbol: '¥', one: "yen", many: "yen", minor: None },
];

const QUANTITIES: [&str; 4] = ["thousand", "million", "billion", "trillion"];

/// A number as written: optional sign, integer digits (comma groups removed), fraction digits.
#[derive(Debug, Clone)]
struct Number {
    sign: Option<char>,
    int: String,
    frac: Option<String>,
    /// Written with thousands separators.
    grouped: bool,
    len: usize,
}

impl Number {
    fn is_one(&self) -> bool {
        self.sign.is_none() && self.frac.is_none() && self.int == "1"
    }

    /// The official reading: "negative" before integers, "minus" before decimals, decimal
    /// digits one by one with "oh" for zero, years for 1000..=2999, "oh" digits for a leading
    /// zero.
    fn words(&self) -> String {
        let body = match &self.frac {
            Some(frac) => {
                let int = if self.int.is_empty() { String::new() } else { format!("{} ", integer_words(&self.int)) };
                format!("{int}point {}", en_digits(frac, "oh"))
            }
            None if !self.grouped && self.sign.is_none() && is_year(&self.int) => {
                en_year(self.int.parse().unwrap_or_default())
            }
            None => integer_words(&self.int),
        };
        match (self.sign, &self.frac) {
            (Some('-'), Some(_)) => format!("minus {body}"),
            (Some('-'), None) => format!("negative {body}"),
            (Some(_), _) => format!("plus {body}"),
            (None, _) => body,
        }
    }
}

/// An integer's cardinal, or its digits when it has a leading zero or is too long.
fn integer_words(digits: &str) -> String {
    if digits.len() > 1 && digits.starts_with('0') {
        return en_digits(digits, "oh");
    }
    match parse_digits(digits) {
        Some(n) => en_cardinal(n, true),
        None => en_digits(digits, "zero"),
    }
}

struct Scan<'a> {
    s: &'a [char],
    out: String,
    /// The last thing written (spaces aside) was a number: operators between numbers are read.
    after_number: bool,
}

impl Scan<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn is_alnum(&self, i: usize) -> bool {
        self.at(i).is_some_and(char::is_alphanumeric)
    }

    fn is_digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }

    fn digits(&self, i: usize) -> usize {
        self.s[i.min(self.s.len())..].iter().take_while(|c| c.is_ascii_digit()).count()
    }

    /// `text` written at `i` (exact case).
    fn starts_with(&self, i: usize, text: &str) -> bool {
        text.chars().enumerate().all(|(k, c)| self.at(i + k) == Some(c))
    }

    /// The string of `len` chars at `i`.
    fn take(&self, i: usize, len: usize) -> String {
        self.s[i..i + len].iter().collect()
    }

    /// Writes words, spaced from a letter or digit on either side.
    fn emit(&mut self, words: &str, next: usize) {
        if self.out.chars().last().is_some_and(char::is_alphanumeric) {
            self.out.push(' ');
        }
        self.out.push_str(words);
        if self.is_alnum(next) {
            self.out.push(' ');
        }
    }

    fn run(&mut self) {
        let mut i = 0;
        while i < self.s.len() {
            if let Some((len, words, number)) = self.match_at(i) {
                self.emit(&words, i + len);
                self.after_number = number;
                i += len;
                continue;
            }
            let c = self.s[i];
            if c.is_alphabetic() {
                // Copy the whole word, so that matchers only start at token boundaries.
                let len = self.s[i..].iter().take_while(|c| c.is_alphabetic()).count();
                self.out.extend(&self.s[i..i + len]);
                i += len;
                self.after_number = false;
            } else {
                self.out.push(c);
                i += 1;
                if c != ' ' {
                    self.after_number = false;
                }
            }
        }
    }

    /// The longest reading starting at `i`: (chars consumed, words, whether it is a number).
    fn match_at(&self, i: usize) -> Option<(usize, String, bool)> {
        let c = self.s[i];
        let prev = if i == 0 { None } else { Some(self.s[i - 1]) };
        let token_start = !prev.is_some_and(char::is_alphanumeric);
        if self.after_number
            && let Some(found) = self.operator(i)
        {
            return Some(found);
        }
        if c.is_alphabetic() {
            if !token_start {
                return None;
            }
            return self.word(i).map(|(len, words)| (len, words, false));
        }
        if c == '@' && token_start && self.at(i + 1).is_some_and(char::is_alphabetic) {
            return Some((1, "at".into(), false));
        }
        if c == '(' {
            return self.phone(i).map(|(len, words)| (len, words, true));
        }
        if CURRENCIES.iter().any(|currency| currency.symbol == c) {
            return self.money(i).map(|(len, words)| (len, words, true));
        }
        let signed = matches!(c, '-' | '+') && token_start && prev != Some('.');
        if !(c.is_ascii_digit() || signed || (c == '.' && token_start && self.is_digit(i + 1))) {
            return None;
        }
        if c.is_ascii_digit() {
            for matcher in [Self::iso_date, Self::us_date, Self::phone, Self::time, Self::fraction, Self::range] {
                if let Some((len, words)) = matcher(self, i) {
                    return Some((len, words, true));
                }
            }
            if let Some(found) = self.ordinal_or_decade(i) {
                return Some((found.0, found.1, true));
            }
        }
        let number = self.number(i)?;
        Some(self.number_with_suffix(i, number))
    }

    /// A number and what may follow it: a percent sign, a unit, "x" (times).
    fn number_with_suffix(&self, i: usize, number: Number) -> (usize, String, bool) {
        let end = i + number.len;
        if self.at(end) == Some('%') {
            return (number.len + 1, format!("{} percent", number.words()), true);
        }
        if let Some((len, unit)) = self.unit(end, number.is_one()) {
            return (number.len + len, format!("{} {unit}", number.words()), true);
        }
        if self.at(end) == Some('x') && !self.is_alnum(end + 1) && number.frac.is_none() {
            return (number.len + 1, format!("{} times", number.words()), true);
        }
        (number.len, number.words(), true)
    }

    /// `[sign] digits[,ddd...][.digits]` or `.digits`.
    fn number(&self, i: usize) -> Option<Number> {
        let mut k = i;
        let sign = match self.at(k) {
            Some(c @ ('-' | '+')) => {
                k += 1;
                Some(c)
            }
            _ => None,
        };
        let (int, grouped, used) = self.grouped_int(k);
        k += used;
        let mut frac = None;
        if self.at(k) == Some('.') && self.is_digit(k + 1) {
            let n = self.digits(k + 1);
            frac = Some(self.take(k + 1, n));
            k += 1 + n;
        }
        if int.is_empty() && frac.is_none() {
            return None;
        }
        Some(Number { sign, int, frac, grouped, len: k - i })
    }

    /// Digits, with `,ddd` groups taken as thousands separators when every group has three.
    fn grouped_int(&self, i: usize) -> (String, bool, usize) {
        let first = self.digits(i);
        let mut digits = self.take(i, first);
        let mut k = i + first;
        if (1..=3).contains(&first) {
            let mut groups = 0;
            while self.at(k) == Some(',') && self.digits(k + 1) == 3 && !self.is_digit(k + 4) {
                digits.extend(&self.s[k + 1..k + 4]);
                k += 4;
                groups += 1;
            }
            return (digits, groups > 0, k - i);
        }
        (digits, false, first)
    }

    /// A unit symbol at `i` (after at most one space), ending at a word boundary.
    fn unit(&self, i: usize, singular: bool) -> Option<(usize, String)> {
        let space = usize::from(self.at(i) == Some(' '));
        UNITS.iter().find_map(|&(symbol, one, many)| {
            let len = symbol.chars().count();
            (self.starts_with(i + space, symbol) && !self.is_alnum(i + space + len))
                .then(|| (space + len, if singular { one } else { many }.to_owned()))
        })
    }

    /// `+`, `=`, `*`, `×` and a lone `x` between two numbers.
    fn operator(&self, i: usize) -> Option<(usize, String, bool)> {
        let word = match self.s[i] {
            '+' => "plus",
            '=' => "equals",
            '*' | '×' => "times",
            'x' if !self.is_alnum(i + 1) && i > 0 && self.s[i - 1] == ' ' => "times",
            _ => return None,
        };
        let next = i + 1 + usize::from(self.at(i + 1) == Some(' '));
        self.is_digit(next).then(|| (1, word.to_owned(), false))
    }

    /// Abbreviations, dotted initials, month dates and e-mail addresses.
    fn word(&self, i: usize) -> Option<(usize, String)> {
        let len = self.s[i..].iter().take_while(|c| c.is_alphabetic()).count();
        let word = self.take(i, len);
        let end = i + len;
        if self.at(end) == Some('.')
            && let Some((_, expansion)) = ABBREVIATIONS.iter().find(|(short, _)| *short == word)
        {
            return Some((len + 1, (*expansion).to_owned()));
        }
        if let Some(found) = self.initials(i) {
            return Some(found);
        }
        if let Some(found) = self.month_date(i, &word) {
            return Some(found);
        }
        self.email(i)
    }

    /// "U.S.A." -> "USA".
    fn initials(&self, i: usize) -> Option<(usize, String)> {
        let mut k = i;
        let mut letters = String::new();
        while self.at(k).is_some_and(|c| c.is_ascii_uppercase()) && self.at(k + 1) == Some('.') {
            letters.push(self.s[k]);
            k += 2;
        }
        (letters.len() >= 2 && !self.is_alnum(k)).then(|| (k - i, letters))
    }

    /// "Jan 1, 2020" -> "the first of january, twenty twenty"; "June 2020" -> "june twenty
    /// twenty". "May" is left alone, as the official does (it is also a word).
    fn month_date(&self, i: usize, word: &str) -> Option<(usize, String)> {
        let (_, month) = MONTHS.iter().find(|(short, full)| {
            *short != "May" && (word == *short || word == "Sept" && *short == "Sep" || word.to_lowercase() == *full)
        })?;
        if word.chars().next().is_some_and(char::is_lowercase) {
            return None;
        }
        let mut k = i + word.chars().count();
        if self.at(k) == Some('.') {
            k += 1;
        }
        if self.at(k) != Some(' ') {
            return None;
        }
        k += 1;
        let n = self.digits(k);
        let digits = self.take(k, n);
        if n == 4 && is_year(&digits) && !self.is_alnum(k + 4) {
            return Some((k + 4 - i, format!("{month} {}", en_year(digits.parse().ok()?))));
        }
        let day: u64 = digits.parse().ok().filter(|d| (1..=31).contains(d) && n <= 2)?;
        k += n;
        if let Some(suffix) = self.ordinal_suffix(k) {
            k += suffix;
        }
        if self.is_alnum(k) {
            return None;
        }
        let mut words = format!("the {} of {month}", en_ordinal(day));
        if self.starts_with(k, ", ") && self.digits(k + 2) == 4 && !self.is_alnum(k + 6) {
            let year = self.take(k + 2, 4);
            if is_year(&year) {
                words.push_str(&format!(", {}", en_year(year.parse().ok()?)));
                k += 6;
            }
        }
        Some((k - i, words))
    }

    /// "user@example.com" -> "user at example dot com".
    fn email(&self, i: usize) -> Option<(usize, String)> {
        let part = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_');
        let local = self.s[i..].iter().take_while(|c| part(c)).count();
        if self.at(i + local) != Some('@') {
            return None;
        }
        let domain_start = i + local + 1;
        let mut domain = self.s[domain_start..].iter().take_while(|c| part(c)).count();
        while domain > 0 && self.s[domain_start + domain - 1] == '.' {
            domain -= 1; // a sentence's full stop after the address
        }
        let host = self.take(domain_start, domain);
        if !host.contains('.') || host.starts_with('.') {
            return None;
        }
        let say = |text: String| text.replace('.', " dot ").replace('_', " underscore ");
        Some((local + 1 + domain, format!("{} at {}", say(self.take(i, local)), say(host))))
    }

    /// The length of "st"/"nd"/"rd"/"th" after a number, when it ends there.
    fn ordinal_suffix(&self, i: usize) -> Option<usize> {
        let suffix: String = self.s[i.min(self.s.len())..].iter().take(2).collect::<String>().to_lowercase();
        (matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") && !self.is_alnum(i + 2)).then_some(2)
    }

    /// "21st" -> "twenty first"; "the 90s" -> "the nineties", "1990s" -> "nineteen nineties".
    fn ordinal_or_decade(&self, i: usize) -> Option<(usize, String)> {
        let n = self.digits(i);
        let digits = self.take(i, n);
        let value = parse_digits(&digits)?;
        if let Some(len) = self.ordinal_suffix(i + n) {
            return Some((n + len, en_ordinal(value)));
        }
        if self.at(i + n) == Some('s') && !self.is_alnum(i + n + 1) && value % 10 == 0 {
            let reading = match n {
                2 => en_cardinal(value, false),
                4 if is_year(&digits) => en_year(value),
                _ => return None,
            };
            return Some((n + 1, en_plural(&reading)));
        }
        None
    }

    /// "2021-05-05" -> "the fifth of may twenty twenty one".
    fn iso_date(&self, i: usize) -> Option<(usize, String)> {
        if self.digits(i) != 4 || self.at(i + 4) != Some('-') || self.digits(i + 5) != 2 {
            return None;
        }
        if self.at(i + 7) != Some('-') || self.digits(i + 8) != 2 || self.is_alnum(i + 10) {
            return None;
        }
        let date = self.date_words(&self.take(i, 4), &self.take(i + 5, 2), &self.take(i + 8, 2))?;
        Some((10, date))
    }

    /// "05/06/2021" (month/day/year) -> "the sixth of may twenty twenty one".
    fn us_date(&self, i: usize) -> Option<(usize, String)> {
        let m = self.digits(i);
        if !(1..=2).contains(&m) || self.at(i + m) != Some('/') {
            return None;
        }
        let d = self.digits(i + m + 1);
        let y = i + m + 1 + d;
        if !(1..=2).contains(&d) || self.at(y) != Some('/') || self.digits(y + 1) != 4 || self.is_alnum(y + 5) {
            return None;
        }
        let date = self.date_words(&self.take(y + 1, 4), &self.take(i, m), &self.take(i + m + 1, d))?;
        Some((y + 5 - i, date))
    }

    fn date_words(&self, year: &str, month: &str, day: &str) -> Option<String> {
        let (year, month, day): (u64, usize, u64) = (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let year = if (1000..3000).contains(&year) { en_year(year) } else { en_cardinal(year, true) };
        Some(format!("the {} of {} {year}", en_ordinal(day), MONTHS[month - 1].1))
    }

    /// "(555) 123-4567", "555-123-4567", "1-800-555-0199": digit groups, said digit by digit
    /// and separated by commas; a toll-free area code ("800") is said as a number.
    fn phone(&self, i: usize) -> Option<(usize, String)> {
        let mut groups: Vec<String> = Vec::new();
        let mut k = i;
        if self.at(i) == Some('(') {
            if self.digits(i + 1) != 3 || !self.starts_with(i + 4, ") ") {
                return None;
            }
            groups.push(self.take(i + 1, 3));
            k = i + 6;
        } else if self.digits(i) == 1 && self.at(i + 1) == Some('-') && self.digits(i + 2) == 3 {
            groups.push(self.take(i, 1));
            groups.push(self.take(i + 2, 3));
            k = i + 5;
            if self.at(k) != Some('-') {
                return None;
            }
            k += 1;
        } else if self.digits(i) == 3 && self.at(i + 3) == Some('-') {
            groups.push(self.take(i, 3));
            k = i + 4;
        }
        if groups.is_empty() || self.digits(k) != 3 || self.at(k + 3) != Some('-') || self.digits(k + 4) != 4 {
            return None;
        }
        if self.is_alnum(k + 8) {
            return None;
        }
        groups.push(self.take(k, 3));
        groups.push(self.take(k + 4, 4));
        let said: Vec<String> = groups
            .iter()
            .enumerate()
            .map(|(index, group)| {
                let area_code = index == groups.len() - 3;
                if area_code && group.ends_with("00") {
                    en_cardinal(group.parse().unwrap_or_default(), true)
                } else {
                    en_digits(group, "zero")
                }
            })
            .collect();
        Some((k + 8 - i, said.join(", ")))
    }

    /// "3:30 pm" -> "three thirty PM", "5:00" -> "five o'clock", "7:05" -> "seven o five",
    /// "10:45:30" -> "ten hours forty five minutes and thirty seconds", "9 am" -> "nine AM".
    fn time(&self, i: usize) -> Option<(usize, String)> {
        let h = self.digits(i);
        if !(1..=2).contains(&h) {
            return None;
        }
        let hour: u64 = self.take(i, h).parse().ok().filter(|&v| v <= 24)?;
        let mut k = i + h;
        let mut minute = None;
        let mut second = None;
        if self.at(k) == Some(':') && self.digits(k + 1) == 2 {
            minute = Some(self.take(k + 1, 2).parse::<u64>().ok().filter(|&m| m < 60)?);
            k += 3;
            if self.at(k) == Some(':') && self.digits(k + 1) == 2 {
                second = Some(self.take(k + 1, 2).parse::<u64>().ok().filter(|&s| s < 60)?);
                k += 3;
            }
        }
        if self.is_digit(k) {
            return None;
        }
        let suffix = self.day_half(k);
        let hour_words = en_cardinal(hour, true);
        let (words, len) = match (minute, second, suffix) {
            (Some(m), Some(s), _) => {
                let (m, s) = (en_cardinal(m, true), en_cardinal(s, true));
                (format!("{hour_words} hours {m} minutes and {s} seconds"), k - i)
            }
            (None, _, None) => return None,
            (None, _, Some((len, half))) => (format!("{hour_words} {half}"), k - i + len),
            (Some(m), None, suffix) => {
                let base = match m {
                    0 if suffix.is_some() => hour_words,
                    0 => format!("{hour_words} o'clock"),
                    1..=9 => format!("{hour_words} o {}", ONES_WORD[m as usize]),
                    _ => format!("{hour_words} {}", en_cardinal(m, true)),
                };
                match suffix {
                    Some((len, half)) => (format!("{base} {half}"), k - i + len),
                    None => (base, k - i),
                }
            }
        };
        if self.is_alnum(i + len) {
            return None;
        }
        Some((len, words))
    }

    /// "am", "pm", "a.m.", "p.m." (after at most one space) -> (chars, "AM"/"PM").
    fn day_half(&self, i: usize) -> Option<(usize, &'static str)> {
        let space = usize::from(self.at(i) == Some(' '));
        let k = i + space;
        let half = match self.at(k).map(|c| c.to_ascii_lowercase()) {
            Some('a') => "AM",
            Some('p') => "PM",
            _ => return None,
        };
        if self.at(k + 1).is_some_and(|c| c.eq_ignore_ascii_case(&'m')) && !self.is_alnum(k + 2) {
            return Some((space + 2, half));
        }
        if self.at(k + 1) == Some('.')
            && self.at(k + 2).is_some_and(|c| c.eq_ignore_ascii_case(&'m'))
            && self.at(k + 3) == Some('.')
        {
            return Some((space + 4, half));
        }
        None
    }

    /// "3/4" -> "three quarters", "1 1/2" -> "one and a half".
    fn fraction(&self, i: usize) -> Option<(usize, String)> {
        let n = self.digits(i);
        if self.at(i + n) == Some(' ')
            && let Some((len, words)) = self.simple_fraction(i + n + 1)
        {
            let whole = integer_words(&self.take(i, n));
            let words = words.strip_prefix("one ").map_or(words.clone(), |rest| format!("a {rest}"));
            return Some((n + 1 + len, format!("{whole} and {words}")));
        }
        self.simple_fraction(i)
    }

    fn simple_fraction(&self, i: usize) -> Option<(usize, String)> {
        let n = self.digits(i);
        if n == 0 || n > MAX_CARDINAL_DIGITS || self.at(i + n) != Some('/') {
            return None;
        }
        let d = self.digits(i + n + 1);
        if d == 0 || d > MAX_CARDINAL_DIGITS || self.is_alnum(i + n + 1 + d) || self.at(i + n + 1 + d) == Some('/') {
            return None;
        }
        let numerator: u64 = self.take(i, n).parse().ok()?;
        let denominator: u64 = self.take(i + n + 1, d).parse().ok().filter(|&d| d > 0)?;
        let one = numerator == 1;
        let name = match denominator {
            2 if one => "half".to_owned(),
            2 => "halves".to_owned(),
            4 if one => "quarter".to_owned(),
            4 => "quarters".to_owned(),
            _ if one => en_ordinal(denominator),
            _ => en_plural(&en_ordinal(denominator)),
        };
        Some((n + 1 + d, format!("{} {name}", integer_words(&self.take(i, n)))))
    }

    /// "3-4" -> "three to four".
    fn range(&self, i: usize) -> Option<(usize, String)> {
        let n = self.digits(i);
        let m = self.digits(i + n + 1);
        if self.at(i + n) != Some('-') || m == 0 || self.is_alnum(i + n + 1 + m) || self.at(i + n + 1 + m) == Some('-')
        {
            return None;
        }
        let words = format!("{} to {}", integer_words(&self.take(i, n)), integer_words(&self.take(i + n + 1, m)));
        Some((n + 1 + m, words))
    }

    /// "$5" -> "five dollars", "$12 million" -> "twelve million dollars", "$5.50" -> "five
    /// dollars and fifty cents" (the official says "five point five dollars").
    fn money(&self, i: usize) -> Option<(usize, String)> {
        let &Currency { one, many, minor, .. } = CURRENCIES.iter().find(|c| c.symbol == self.s[i])?;
        let number = self.number(i + 1).filter(|n| n.sign.is_none() && !n.int.is_empty())?;
        let mut len = 1 + number.len;
        let for_quantity = len + usize::from(self.at(i + len) == Some(' '));
        if self.at(i + len) == Some(' ')
            && let Some(quantity) = QUANTITIES
                .iter()
                .find(|q| self.starts_with(i + for_quantity, q) && !self.is_alnum(i + for_quantity + q.len()))
        {
            len = for_quantity + quantity.len();
            return Some((len, format!("{} {quantity} {many}", number.words())));
        }
        let int_words = integer_words(&number.int);
        let unit = if number.int == "1" { one } else { many };
        let words = match (&number.frac, minor) {
            (None, _) => format!("{int_words} {unit}"),
            (Some(frac), _) if frac.bytes().all(|b| b == b'0') => format!("{int_words} {unit}"),
            (Some(frac), Some((cent, cents))) if frac.len() == 2 => {
                let value: u64 = frac.parse().ok()?;
                let minor = format!("{} {}", en_cardinal(value, true), if value == 1 { cent } else { cents });
                if number.int.chars().all(|c| c == '0') { minor } else { format!("{int_words} {unit} and {minor}") }
            }
            (Some(_), _) => format!("{} {many}", number.words()),
        };
        Some((len, words))
    }
}

const ONES_WORD: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_next_to_letters_are_spaced() {
        assert_eq!(normalize("B2B"), "B two B");
        assert_eq!(normalize("COVID-19"), "COVID-nineteen");
    }

    #[test]
    fn money_with_cents_and_without() {
        assert_eq!(normalize("$0.99"), "ninety nine cents");
        assert_eq!(normalize("$1.01"), "one dollar and one cent");
        assert_eq!(normalize("$3.5 billion"), "three point five billion dollars");
    }

    #[test]
    fn long_digit_runs_are_read_digit_by_digit_and_fast() {
        let long = "7".repeat(100_000);
        let started = std::time::Instant::now();
        let out = normalize(&long);
        assert_eq!(out.split(' ').count(), 100_000);
        assert!(started.elapsed().as_secs() < 5);
    }
}
