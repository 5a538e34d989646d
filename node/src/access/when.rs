//! Parsing expiry times for grants: a duration from now (`30d`, `12h`,
//! `2w`, `1y`), a date (`2027-01-31`, end of that day UTC), a timestamp
//! (`2027-01-31T12:00:00Z`), or `never`.

use crate::error::{Error, Result};

/// Unix seconds for an expiry given relative to `now` (unix seconds).
/// `None` means no expiry.
pub fn parse_expiry(input: &str, now: i64) -> Result<Option<i64>> {
    let s = input.trim();
    let bad = || {
        Error::InvalidArgument(format!(
            "cannot read expiry {input:?}: use a duration like 30d, 12h, 2w or 1y, a date like 2027-01-31, \
             a timestamp like 2027-01-31T12:00:00Z, or `never`"
        ))
    };
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
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
                "expiry {input:?} must be in the future"
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
        return Err(Error::InvalidArgument(format!(
            "expiry {input:?} is in the past"
        )));
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
        assert!(parse_expiry("2027-01-31T12:00:00Z", NOW).unwrap().is_some());
        for bad in ["", "30", "30x", "-1d", "0d", "2020-01-01", "soon"] {
            assert!(parse_expiry(bad, NOW).is_err(), "{bad:?}");
        }
    }
}
