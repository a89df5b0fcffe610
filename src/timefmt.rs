//! The four time formats S3 speaks, all on Unix seconds (`i64`).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const AMZ_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");
const HTTP_DATE: &[FormatItem<'static>] =
    format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
const ISO8601: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const ISO8601_SECONDS: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

fn at(unix_secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn format(unix_secs: i64, description: &[FormatItem<'_>]) -> String {
    at(unix_secs).format(description).unwrap_or_default()
}

fn parse(text: &str, description: &[FormatItem<'_>]) -> Option<i64> {
    PrimitiveDateTime::parse(text, description).ok().map(|time| time.assume_utc().unix_timestamp())
}

/// Now, as Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `20130524T000000Z`, the SigV4 `x-amz-date` form.
pub fn format_amz_date(unix_secs: i64) -> String {
    format(unix_secs, AMZ_DATE)
}

pub fn parse_amz_date(text: &str) -> Option<i64> {
    parse(text, AMZ_DATE)
}

/// `Fri, 24 May 2013 00:00:00 GMT` (RFC 7231 IMF-fixdate).
pub fn format_http_date(unix_secs: i64) -> String {
    let time = at(unix_secs);
    if !(0..=9999).contains(&time.year()) {
        return format(unix_secs, HTTP_DATE);
    }
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut out = String::with_capacity(29);
    out.push_str(WEEKDAYS[usize::from(time.weekday().number_days_from_monday())]);
    out.push_str(", ");
    push_digits(&mut out, time.day().into(), 2);
    out.push(' ');
    out.push_str(MONTHS[usize::from(u8::from(time.month())) - 1]);
    out.push(' ');
    push_digits(&mut out, time.year().unsigned_abs(), 4);
    out.push(' ');
    push_clock(&mut out, time);
    out.push_str(" GMT");
    out
}

/// `00:00:00`. The HTTP and ISO-8601 forms are written by hand: they go
/// out per response and per listed key, where `time`'s interpreted
/// formatter was a visible share of the CPU.
fn push_clock(out: &mut String, time: OffsetDateTime) {
    push_digits(out, time.hour().into(), 2);
    out.push(':');
    push_digits(out, time.minute().into(), 2);
    out.push(':');
    push_digits(out, time.second().into(), 2);
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u32.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Parses an IMF-fixdate. The obsolete RFC 850 and asctime forms are not
/// accepted; a date that does not parse is treated by callers as absent,
/// as HTTP requires for conditional headers.
pub fn parse_http_date(text: &str) -> Option<i64> {
    parse(text.trim(), HTTP_DATE)
}

/// `2013-05-24T00:00:00.000Z`, as S3 writes times in XML.
pub fn format_iso8601(unix_secs: i64) -> String {
    let time = at(unix_secs);
    if !(0..=9999).contains(&time.year()) {
        return format(unix_secs, ISO8601);
    }
    let mut out = String::with_capacity(24);
    push_digits(&mut out, time.year().unsigned_abs(), 4);
    out.push('-');
    push_digits(&mut out, u8::from(time.month()).into(), 2);
    out.push('-');
    push_digits(&mut out, time.day().into(), 2);
    out.push('T');
    push_clock(&mut out, time);
    out.push_str(".000Z");
    out
}

/// Parses `2013-05-24T00:00:00Z`, with or without milliseconds.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    parse(text, ISO8601).or_else(|| parse(text, ISO8601_SECONDS))
}

/// `20130524`, the date part of a credential scope.
pub fn format_scope_date(unix_secs: i64) -> String {
    format_amz_date(unix_secs)[..8].to_string()
}

/// Reads a duration such as `90s`, `90m`, `24h`, `7d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: i64 = number.parse().map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("not a duration: {text} (use s, m, h or d)")),
    };
    number.checked_mul(seconds).ok_or_else(|| format!("duration too long: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = 1_369_353_600; // 2013-05-24T00:00:00Z
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(t));
        assert_eq!(format_http_date(t), "Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(parse_http_date("Fri, 24 May 2013 00:00:00 GMT"), Some(t));
        assert_eq!(format_iso8601(t), "2013-05-24T00:00:00.000Z");
        assert_eq!(parse_iso8601("2013-05-24T00:00:00Z"), Some(t));
        assert_eq!(format_scope_date(t), "20130524");
        assert_eq!(parse_amz_date("2013-05-24"), None);
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("15"), Ok(15));
        assert!(parse_duration("soon").is_err() && parse_duration("5w").is_err());
    }

    #[test]
    fn hand_written_formats_match_time_s() {
        // Every weekday, month and hour, leap days, both ends of the
        // four-digit years, and (through `time`) the years outside them.
        let mut t = -62_167_219_200 - 86_400; // 0000-01-01 less one day
        while t < 253_402_300_800 + 86_400 {
            assert_eq!(format_http_date(t), format(t, HTTP_DATE), "at {t}");
            assert_eq!(format_iso8601(t), format(t, ISO8601), "at {t}");
            t += 86_400 * 13 + 3_607;
        }
        assert_eq!(format_http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(format_iso8601(253_402_300_799), "9999-12-31T23:59:59.000Z");
    }
}
