//! Calendar dates and instants without a time-zone library.
//!
//! Dates are stored and sent as ISO 8601 (`2026-01-15`) and shown to people as
//! `15-01-2026`. Instants are milliseconds since the Unix epoch, written as
//! `2026-01-15T10:30:00Z`. The civil-date arithmetic is the proleptic
//! Gregorian algorithm of H. Hinnant's `days_from_civil`.

use std::fmt;
use std::str::FromStr;

/// A calendar date (no time of day), valid from year 1900 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i32,
}

/// A moment in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Why a date or timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is not `YYYY-MM-DD`.
    #[error("'{}' is not a date in the form YYYY-MM-DD", crate::text::quote(.0))]
    Format(String),
    /// The numbers are in the right places but name no real day.
    #[error("'{}' is not a real calendar date", crate::text::quote(.0))]
    OutOfRange(String),
    /// The text is not `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
    #[error("'{}' is not a UTC time in the form YYYY-MM-DDTHH:MM:SSZ", crate::text::quote(.0))]
    TimestampFormat(String),
}

/// India Standard Time is UTC+05:30 all year (no daylight saving).
const IST_OFFSET_MS: i64 = (5 * 60 + 30) * 60 * 1000;

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 9999;

fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Date {
    /// The date for a year, month and day, if it exists and lies in 1900..=9999.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    /// The date `n` days later (earlier for negative `n`), saturating at the range ends.
    pub fn add_days(self, n: i32) -> Date {
        let lo = days_from_civil(MIN_YEAR, 1, 1);
        let hi = days_from_civil(MAX_YEAR, 12, 31);
        Date {
            days: self.days.saturating_add(n).clamp(lo, hi),
        }
    }

    /// Whole days from `earlier` to `self` (negative if `self` is before it).
    pub fn days_since(self, earlier: Date) -> i32 {
        self.days - earlier.days
    }

    /// The date as people read it in the product: `DD-MM-YYYY`.
    pub fn display(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{d:02}-{m:02}-{y:04}")
    }

    /// The UTC calendar date of an instant.
    pub fn of(ts: Timestamp) -> Date {
        Date {
            days: ts.0.div_euclid(86_400_000) as i32,
        }
        .add_days(0)
    }

    /// The offices' calendar date of an instant: the day in India Standard
    /// Time. It is the day that counts for which roles are in force, what is
    /// due and when something was closed; from 18:30 UTC it is a day ahead of
    /// [`Date::of`].
    pub fn in_offices(ts: Timestamp) -> Date {
        Date::of(Timestamp(ts.0.saturating_add(IST_OFFSET_MS)))
    }
}

impl fmt::Display for Date {
    /// ISO 8601, the stored and sent form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DateError::Format(s.chars().take(40).collect());
        if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
            return Err(bad());
        }
        let y = digits(s.get(0..4).ok_or_else(bad)?).ok_or_else(bad)?;
        let m = digits(s.get(5..7).ok_or_else(bad)?).ok_or_else(bad)?;
        let d = digits(s.get(8..10).ok_or_else(bad)?).ok_or_else(bad)?;
        Date::from_ymd(y as i32, m, d).ok_or_else(|| DateError::OutOfRange(s.to_owned()))
    }
}

impl Timestamp {
    /// The instant at midnight UTC starting a date.
    pub fn start_of(date: Date) -> Timestamp {
        Timestamp(i64::from(date.days) * 86_400_000)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = Date::of(*self);
        let ms = self.0.rem_euclid(86_400_000);
        let (h, mi, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        write!(f, "{date}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl FromStr for Timestamp {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DateError::TimestampFormat(s.chars().take(40).collect());
        let rest = s.strip_suffix('Z').ok_or_else(bad)?;
        let (date, time) = rest.split_once('T').ok_or_else(bad)?;
        let date: Date = date.parse().map_err(|_| bad())?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        let mut next = |max: u32| {
            parts
                .next()
                .filter(|p| p.len() == 2)
                .and_then(digits)
                .filter(|v| *v <= max)
                .ok_or_else(bad)
        };
        let (h, mi, sec) = (next(23)?, next(59)?, next(59)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        let millis = match frac {
            None => 0,
            Some(f) if (1..=3).contains(&f.len()) => {
                let v = digits(f).ok_or_else(bad)?;
                v * 10u32.pow(3 - f.len() as u32)
            }
            Some(_) => return Err(bad()),
        };
        let secs = i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
        Ok(Timestamp(
            Timestamp::start_of(date).0 + secs * 1000 + i64::from(millis),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_display_form() {
        let d: Date = "2025-07-25".parse().expect("valid date");
        assert_eq!(d.to_string(), "2025-07-25");
        assert_eq!(d.display(), "25-07-2025");
        assert_eq!(d.add_days(60).to_string(), "2025-09-23");
        assert_eq!(d.add_days(7).to_string(), "2025-08-01");
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "2025-02-29",
            "2025-13-01",
            "2025-00-10",
            "25-07-2025",
            "2025-7-25",
            "２０２５-01-01",
            "",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad} parsed");
        }
        assert!("2024-02-29".parse::<Date>().is_ok());
    }

    #[test]
    fn timestamps_round_trip() {
        let t: Timestamp = "2026-01-13T10:22:05Z".parse().expect("valid");
        assert_eq!(t.to_string(), "2026-01-13T10:22:05Z");
        assert_eq!(Date::of(t).to_string(), "2026-01-13");
        assert_eq!(Date::in_offices(t).to_string(), "2026-01-13");
        let ms: Timestamp = "2026-01-13T10:22:05.5Z".parse().expect("valid");
        assert_eq!(ms.0 - t.0, 500);
        for bad in [
            "2026-01-13 10:22:05Z",
            "2026-01-13T24:00:00Z",
            "2026-01-13T10:22:05",
            "2026-01-13T10:22Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn day_arithmetic_matches_the_calendar() {
        let a: Date = "2025-08-01".parse().expect("valid");
        let b: Date = "2026-01-15".parse().expect("valid");
        assert_eq!(b.days_since(a), 167);
        for days in [-25_567, 0, 1, 59, 60, 365, 10_957, 20_468] {
            let d = Date { days };
            let (y, m, dd) = d.ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Some(d));
        }
    }

    #[test]
    fn the_offices_day_begins_at_midnight_india_standard_time() {
        let at = |s: &str| s.parse::<Timestamp>().expect("valid");
        let day = |s: &str| s.parse::<Date>().expect("valid");
        assert_eq!(
            Date::in_offices(at("2026-12-02T18:29:59Z")),
            day("2026-12-02")
        );
        assert_eq!(
            Date::in_offices(at("2026-12-02T18:30:00Z")),
            day("2026-12-03")
        );
        assert_eq!(Date::of(at("2026-12-02T18:30:00Z")), day("2026-12-02"));
        assert_eq!(
            Date::in_offices(at("2026-12-31T23:59:59Z")),
            day("2027-01-01")
        );
    }
}
