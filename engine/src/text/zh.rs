//! Chinese (any line with a character in U+4E00–U+9FFF): the official pre-steps, numbers said
//! in Chinese (measure words and 两, dates, times, scores, money, percentages, fractions, phone
//! numbers digit by digit, Latin units), erhua removal, then the official post-steps (§6.8).
//!
//! One left-to-right scan with bounded look-ahead, as in `en.rs`; text that holds no number is
//! copied as it is.

use super::numbers::{zh_cardinal, zh_digits};

/// Normalises one cleaned Chinese line.
pub fn normalize(text: &str) -> String {
    let text = pre_steps(text);
    let chars: Vec<char> = text.trim().chars().collect();
    let mut scan = Scan { s: &chars, out: String::with_capacity(text.len() * 3) };
    scan.run();
    let text = remove_erhua(scan.out.trim());
    post_steps(&text)
}

/// The official pre-steps: `=` becomes 等于, and when the line holds digits or math signs a
/// hyphen between a letter or digit and a digit gets spaces (so "x-2" is not read "x负2").
fn pre_steps(text: &str) -> String {
    let text = text.replace('=', "等于");
    if !text.chars().any(|c| c.is_ascii_digit() || "$%^*_+≥≤≠×÷?=".contains(c)) {
        return text;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let spaced = c == '-'
            && i > 0
            && chars[i - 1].is_ascii_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if spaced {
            out.push_str(" - ");
        } else {
            out.push(c);
        }
    }
    out
}

/// The official post-steps: spaces go unless both neighbours are ASCII (`replace_blank`);
/// ²³√≈< are spelled out; （）【】 become spaces, backticks and —— go (`remove_bracket`).
fn post_steps(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let ascii_word = |c: Option<&char>| c.is_some_and(|c| c.is_ascii() && *c != ' ');
    let mut out = String::with_capacity(text.len() + 16);
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let keep = i > 0 && ascii_word(chars.get(i - 1)) && ascii_word(chars.get(i + 1));
            if keep {
                out.push(' ');
            }
            continue;
        }
        match c {
            '²' => out.push_str("平方"),
            '³' => out.push_str("立方"),
            '√' => out.push_str("根号"),
            '≈' => out.push_str("约等于"),
            '<' => out.push_str("小于"),
            '（' | '）' | '【' | '】' => out.push(' '),
            '`' => {}
            c => out.push(c),
        }
    }
    out.replace("——", " ")
}

/// Words where 儿 is a syllable of its own and stays (女儿, 儿子, ...); elsewhere a 儿 after a
/// Chinese character is the erhua suffix and goes, as `remove_erhua=True` does.
const ER_AFTER: &str = "女婴幼孤胎健男侄孙宠患少托生";
const ER_BEFORE: &str = "子童女科歌时媳戏孙";

fn remove_erhua(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '儿' && i > 0 && is_han(chars[i - 1]) {
            let kept = ER_AFTER.contains(chars[i - 1]) || chars.get(i + 1).is_some_and(|&n| ER_BEFORE.contains(n));
            if !kept {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn is_han(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// Measure words after which a lone 2 is said 两 (两个, 两岁, 两万); before others (次, 倍, 年,
/// 月, 号, 点) it stays 二.
const LIANG_BEFORE: [&str; 44] = [
    "万", "千", "百", "亿", "个", "本", "只", "件", "天", "周", "岁", "元", "块", "辆", "名", "位", "张", "条", "头",
    "匹", "台", "部", "支", "把", "双", "对", "份", "套", "片", "颗", "家", "层", "座", "栋", "间", "场", "首", "杯",
    "瓶", "斤", "米", "小时", "分钟", "人",
];

/// Latin units after a number: (symbol, Chinese). `km/h` and `m/s` are said "每小时…公里".
const UNITS: [(&str, &str); 14] = [
    ("km²", "平方公里"),
    ("km", "公里"),
    ("kg", "千克"),
    ("cm", "厘米"),
    ("mm", "毫米"),
    ("ml", "毫升"),
    ("mg", "毫克"),
    ("m²", "平方米"),
    ("m³", "立方米"),
    ("℃", "摄氏度"),
    ("°C", "摄氏度"),
    ("m", "米"),
    ("g", "克"),
    ("%", ""),
];

/// Words before a number that make it a phone or code number, said digit by digit with 幺.
const DIGIT_CONTEXT: [&str; 14] =
    ["电话", "手机", "手机号", "号码", "编号", "拨打", "热线", "致电", "传真", "尾号", "工号", "学号", "账号", "卡号"];

const CURRENCIES: [(char, &str); 5] = [('¥', "元"), ('￥', "元"), ('$', "美元"), ('€', "欧元"), ('£', "英镑")];

struct Scan<'a> {
    s: &'a [char],
    out: String,
}

impl Scan<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.s.get(i).copied()
    }

    fn is_digit(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_digit())
    }

    fn is_ascii_alnum(&self, i: usize) -> bool {
        self.at(i).is_some_and(|c| c.is_ascii_alphanumeric())
    }

    fn digits(&self, i: usize) -> usize {
        self.s[i.min(self.s.len())..].iter().take_while(|c| c.is_ascii_digit()).count()
    }

    fn take(&self, i: usize, len: usize) -> String {
        self.s[i..i + len].iter().collect()
    }

    fn starts_with(&self, i: usize, text: &str) -> bool {
        text.chars().enumerate().all(|(k, c)| self.at(i + k) == Some(c))
    }

    fn run(&mut self) {
        let mut i = 0;
        let mut after_number = false;
        while i < self.s.len() {
            if after_number && let Some((len, word)) = self.operator(i) {
                self.out.push_str(word);
                i += len;
                after_number = false;
                continue;
            }
            if let Some((len, words)) = self.number_at(i) {
                self.out.push_str(&words);
                i += len;
                after_number = true;
                continue;
            }
            self.out.push(self.s[i]);
            i += 1;
            after_number = false;
        }
    }

    /// `-` (subtraction between numbers, after the pre-step's spaces), `+`, `×`, `÷`.
    fn operator(&self, i: usize) -> Option<(usize, &'static str)> {
        let space = |k: usize| usize::from(self.at(k) == Some(' '));
        let before = space(i);
        let word = match self.at(i + before)? {
            '-' => "减",
            '+' => "加",
            '×' => "乘",
            '÷' => "除以",
            _ => return None,
        };
        let after = space(i + before + 1);
        self.is_digit(i + before + 1 + after).then_some((before + 1 + after, word))
    }

    /// A number and its suffix read at `i`: (chars consumed, Chinese).
    fn number_at(&self, i: usize) -> Option<(usize, String)> {
        let c = self.s[i];
        if let Some(&(_, name)) = CURRENCIES.iter().find(|(symbol, _)| *symbol == c) {
            let (len, amount) = self.plain_number(i + 1, false)?;
            // "￥99元": the 元 written after the amount is not said twice.
            let doubled = usize::from(name == "元" && self.at(i + 1 + len) == Some('元'));
            return Some((1 + len + doubled, format!("{amount}{name}")));
        }
        let signed = c == '-' && self.is_digit(i + 1) && !(i > 0 && self.is_ascii_alnum(i - 1));
        if !(c.is_ascii_digit() || signed) {
            return None;
        }
        if c.is_ascii_digit() {
            for matcher in [Self::slash_date, Self::clock, Self::fraction] {
                if let Some(found) = matcher(self, i) {
                    return Some(found);
                }
            }
        }
        let (len, words) = self.plain_number(i, true)?;
        let end = i + len;
        if self.at(end) == Some('%') {
            return Some((len + 1, format!("百分之{words}")));
        }
        for (symbol, per) in [("km/h", ("每小时", "公里")), ("m/s", ("每秒", "米"))] {
            if self.starts_with(end, symbol) && !self.is_ascii_alnum(end + symbol.chars().count()) {
                return Some((len + symbol.chars().count(), format!("{}{words}{}", per.0, per.1)));
            }
        }
        for (symbol, name) in UNITS {
            let n = symbol.chars().count();
            if !name.is_empty()
                && self.starts_with(end, symbol)
                && !self.at(end + n).is_some_and(|c| c.is_ascii_alphabetic())
            {
                return Some((len + n, format!("{words}{name}")));
            }
        }
        Some((len, words))
    }

    /// `[-]digits[,ddd][.digits]` said in Chinese. With `in_context`, a lone integer is read
    /// by what surrounds it: digit by digit for years, "80后", phone and code numbers and
    /// leading zeros; 两 for a 2 before a measure word.
    fn plain_number(&self, i: usize, in_context: bool) -> Option<(usize, String)> {
        let negative = self.at(i) == Some('-');
        let start = i + usize::from(negative);
        let n = self.digits(start);
        if n == 0 {
            return None;
        }
        let mut int = self.take(start, n);
        let mut k = start + n;
        if n <= 3 {
            while self.at(k) == Some(',') && self.digits(k + 1) == 3 && !self.is_digit(k + 4) {
                int.extend(&self.s[k + 1..k + 4]);
                k += 4;
            }
        }
        let sign = if negative { "负" } else { "" };
        if self.at(k) == Some('.') && self.is_digit(k + 1) {
            let f = self.digits(k + 1);
            let words = format!("{sign}{}点{}", zh_cardinal(&int), zh_digits(&self.take(k + 1, f), false));
            return Some((k + 1 + f - i, words));
        }
        let grouped = k - start != n;
        let words =
            if !in_context || grouped || negative { zh_cardinal(&int) } else { self.integer_in_context(i, &int, k) };
        Some((k - i, format!("{sign}{words}")))
    }

    fn integer_in_context(&self, start: usize, int: &str, end: usize) -> String {
        let n = int.len();
        let before: String = self.s[start.saturating_sub(4)..start].iter().collect();
        let before = before.trim_end_matches([' ', ':', '：']);
        if n == 4 && self.at(end) == Some('年') {
            return zh_digits(int, false);
        }
        if n == 2 && int.ends_with('0') && self.at(end) == Some('后') {
            return zh_digits(int, false);
        }
        if n > 1 && int.starts_with('0') {
            return zh_digits(int, false);
        }
        if (n == 11 && int.starts_with('1')) || (n >= 3 && DIGIT_CONTEXT.iter().any(|w| before.ends_with(w))) {
            return zh_digits(int, true);
        }
        if int == "2" && LIANG_BEFORE.iter().any(|w| self.starts_with(end, w)) && !before.ends_with('第') {
            return "两".into();
        }
        zh_cardinal(int)
    }

    /// "2024/05/01" -> 二零二四年五月一日.
    fn slash_date(&self, i: usize) -> Option<(usize, String)> {
        if self.digits(i) != 4 || self.at(i + 4) != Some('/') {
            return None;
        }
        let m = self.digits(i + 5);
        let d = self.digits(i + 6 + m);
        if !(1..=2).contains(&m) || self.at(i + 5 + m) != Some('/') || !(1..=2).contains(&d) {
            return None;
        }
        let month: u32 = self.take(i + 5, m).parse().ok().filter(|m| (1..=12).contains(m))?;
        let day: u32 = self.take(i + 6 + m, d).parse().ok().filter(|d| (1..=31).contains(d))?;
        let words = format!(
            "{}年{}月{}日",
            zh_digits(&self.take(i, 4), false),
            zh_cardinal(&month.to_string()),
            zh_cardinal(&day.to_string())
        );
        Some((6 + m + d, words))
    }

    /// "9:30" -> 九点三十分, "7:05" -> 七点零五分, "18:00" -> 十八点, "10:30:45" -> 十点三十分
    /// 四十五秒; with one digit after the colon it is a score: "2:1" -> 二比一.
    fn clock(&self, i: usize) -> Option<(usize, String)> {
        let h = self.digits(i);
        if h > 2 || self.at(i + h) != Some(':') {
            return None;
        }
        let m = self.digits(i + h + 1);
        let hour = zh_cardinal(&self.take(i, h));
        if m != 2 {
            if m == 0 || m > 2 {
                return None;
            }
            return Some((h + 1 + m, format!("{hour}比{}", zh_cardinal(&self.take(i + h + 1, m)))));
        }
        let minute = self.take(i + h + 1, 2);
        let mut len = h + 3;
        let mut words = format!("{hour}点");
        let two_digits = |digits: &str| match digits.as_bytes() {
            [b'0', _] => format!("零{}", zh_digits(&digits[1..], false)),
            _ => zh_cardinal(digits),
        };
        let seconds = self.at(i + len) == Some(':') && self.digits(i + len + 1) == 2;
        if minute != "00" || seconds {
            words.push_str(&format!("{}分", two_digits(&minute)));
        }
        if seconds {
            words.push_str(&format!("{}秒", two_digits(&self.take(i + len + 1, 2))));
            len += 3;
        }
        Some((len, words))
    }

    /// "3/4" -> 四分之三.
    fn fraction(&self, i: usize) -> Option<(usize, String)> {
        let n = self.digits(i);
        let d = self.digits(i + n + 1);
        if self.at(i + n) != Some('/') || d == 0 || self.at(i + n + 1 + d) == Some('/') {
            return None;
        }
        let words = format!("{}分之{}", zh_cardinal(&self.take(i + n + 1, d)), zh_cardinal(&self.take(i, n)));
        Some((n + 1 + d, words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erhua_goes_but_real_er_stays() {
        assert_eq!(remove_erhua("一会儿他儿子和女儿在哪儿"), "一会他儿子和女儿在哪");
        assert_eq!(remove_erhua("儿童"), "儿童");
    }

    #[test]
    fn blanks_stay_only_between_ascii() {
        assert_eq!(post_steps("hello world 你 好 a 1"), "hello world你好a 1");
        assert_eq!(post_steps("（注意）a²"), " 注意 a平方");
    }

    #[test]
    fn liang_only_for_a_lone_two_before_a_measure_word() {
        assert_eq!(normalize("2个2次2年2月"), "两个二次二年二月");
        assert_eq!(normalize("第2名"), "第二名");
    }
}
