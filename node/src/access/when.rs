//! Parsing expiry times for grants: a duration from now (`30d`, `12h`,
//! `2w`, `1y`, `90m`, `3600s`), a date (`2027-01-31`, end of that day UTC),
//! an RFC 3339 time (`2027-01-31T12:00:00Z`, any offset), unix seconds
//! (`1801440000`), or `never`.

use labmesh_crypto::token::format_unix_time;

use super::args::quote_arg;
use crate::error::{Error, Result};

const FORMS: &str = "a duration like 30d, 12h, 2w, 1y, 90m or 3600s; a date like 2027-01-31 \
                     (the end of that day, UTC); an RFC 3339 time like 2027-01-31T12:00:00Z; \
                     unix seconds like 1801440000; or `never`";

/// Unix seconds for an expiry given relative to `now` (unix seconds).
/// `None` means no expiry.
pub fn parse_expiry(input: &str, now: i64) -> Result<Option<i64>> {
    let s = input.trim();
    let bad = || {
        Error::InvalidArgument(format!(
            "cannot read expiry {}: use {FORMS}",
            quote_arg(input)
        ))
    };
    let past = |at: i64, how: &str| {
        Error::InvalidArgument(format!(
            "expiry {} is {} ({how}); expiry must be in the future",
            quote_arg(input),
            format_unix_time(at)
        ))
    };
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    if let Some(digits) = s.strip_prefix('-').or(Some(s))
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        let at: i64 = s.parse().map_err(|_| bad())?;
        if at <= now {
            return Err(past(
                at,
                "read as unix seconds; for a duration add a unit, e.g. 30d",
            ));
        }
        return Ok(Some(at));
    }
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    if let Some(unit) = unit.chars().next().filter(|c| c.is_ascii_alphabetic())
        && !digits.is_empty()
        && digits
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        let count: i64 = digits.parse().map_err(|_| bad())?;
        if count <= 0 {
            return Err(Error::InvalidArgument(format!(
                "expiry {} is not after now; expiry must be in the future: \
                 give a positive duration like 30d",
                quote_arg(input)
            )));
        }
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            'y' => 365 * 86_400,
            _ => return Err(bad()),
        };
        return count
            .checked_mul(secs)
            .and_then(|d| now.checked_add(d))
            .map(Some)
            .ok_or_else(bad);
    }
    let at = if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        ts.as_second()
    } else if let Ok(date) = s.parse::<jiff::civil::Date>() {
        // The whole day counts: expire at the end of it, UTC.
        jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|_| bad())?
            .as_second()
            + 86_400
    } else {
        return Err(bad());
    };
    if at <= now {
        return Err(past(at, "in the past"));
    }
    Ok(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn durations_dates_and_never() {
        assert_eq!(parse_expiry("30d", NOW).unwrap(), Some(NOW + 30 * 86_400));
        assert_eq!(parse_expiry("12h", NOW).unwrap(), Some(NOW + 12 * 3_600));
        assert_eq!(parse_expiry("never", NOW).unwrap(), None);
        assert_eq!(
            parse_expiry("2027-01-31", NOW).unwrap(),
            Some(1_801_440_000),
            "end of that day, UTC"
        );
        assert_eq!(
            parse_expiry("2027-01-31T12:00:00Z", NOW).unwrap(),
            Some(1_801_396_800)
        );
        assert_eq!(
            parse_expiry("2027-01-31T14:00:00+02:00", NOW).unwrap(),
            Some(1_801_396_800),
            "RFC 3339 with an offset"
        );
        for bad in ["", "30x", "2020-01-01", "soon", "12:00"] {
            assert!(parse_expiry(bad, NOW).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unix_seconds_are_accepted() {
        assert_eq!(
            parse_expiry("1801440000", NOW).unwrap(),
            Some(1_801_440_000)
        );
        // A bare small number is unix seconds too, long past: the error
        // says how it was read and how to write a duration.
        let err = parse_expiry("30", NOW).unwrap_err().to_string();
        assert!(err.contains("1970-01-01T00:00:30Z"), "{err}");
        assert!(err.contains("add a unit, e.g. 30d"), "{err}");
        assert!(err.contains("must be in the future"), "{err}");
    }

    #[test]
    fn past_and_non_positive_expiries_must_be_in_the_future() {
        for input in ["-5d", "0d", "-1", "2020-01-01", "2020-01-01T00:00:00Z"] {
            let err = parse_expiry(input, NOW).unwrap_err().to_string();
            assert!(err.contains("must be in the future"), "{input}: {err}");
        }
    }

    #[test]
    fn errors_name_every_accepted_form_and_quote_long_input_briefly() {
        let err = parse_expiry("soon", NOW).unwrap_err().to_string();
        for form in ["30d", "2027-01-31", "RFC 3339", "unix seconds", "never"] {
            assert!(err.contains(form), "{form}: {err}");
        }
        let long = "x".repeat(5_000);
        let err = parse_expiry(&long, NOW).unwrap_err().to_string();
        assert!(err.len() < 500, "{err}");
    }
}
