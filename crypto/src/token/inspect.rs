//! Human-readable description of a token chain, for `labmesh token inspect`.
//!
//! Describes what the token *claims*; it does not verify anything.

use std::fmt;

use super::{NO_EXPIRY, Token};

/// Displays a token's chain, one section per block.
pub struct Inspect<'a> {
    token: &'a Token,
}

impl<'a> Inspect<'a> {
    pub(crate) fn new(token: &'a Token) -> Self {
        Inspect { token }
    }
}

impl fmt::Display for Inspect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.token;
        let n = t.blocks().len();
        writeln!(f, "token {}", t.id())?;
        writeln!(
            f,
            "  blocks       {n} (unverified: run verify to check them)"
        )?;
        writeln!(f, "  root issuer  {}", t.root_issuer())?;
        writeln!(f, "  holder       {}", t.holder())?;
        writeln!(f, "  grants       {} on {}", t.role(), t.scope())?;
        writeln!(f, "  valid        {}", window(t.not_before(), t.expires()))?;
        for (i, block) in t.blocks().iter().enumerate() {
            let b = block.body();
            writeln!(f, "block {i}")?;
            writeln!(f, "  id           {}", block.id())?;
            writeln!(f, "  issuer       {}", b.issuer)?;
            writeln!(f, "  holder       {}", b.holder)?;
            writeln!(f, "  role         {}", b.role)?;
            writeln!(f, "  scope        {}", b.scope)?;
            writeln!(f, "  not_before   {}", time_and_secs(b.not_before))?;
            writeln!(f, "  expires      {}", time_and_secs(b.expires))?;
        }
        Ok(())
    }
}

fn window(not_before: i64, expires: i64) -> String {
    format!(
        "from {} until {}",
        format_unix_time(not_before),
        format_unix_time(expires)
    )
}

fn time_and_secs(secs: i64) -> String {
    if secs == NO_EXPIRY {
        "never".into()
    } else {
        format!("{} ({secs})", format_unix_time(secs))
    }
}

/// Formats unix seconds as UTC RFC 3339 (`2026-03-01T12:00:00Z`), and
/// [`NO_EXPIRY`] as `never`. Total: any i64 formats without panicking.
pub fn format_unix_time(secs: i64) -> String {
    if secs == NO_EXPIRY {
        return "never".into();
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`). No overflow for any i64 day count
/// derived from i64 seconds.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_unix_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_time(1_772_366_400), "2026-03-01T12:00:00Z");
        assert_eq!(format_unix_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_unix_time(NO_EXPIRY), "never");
        // Extremes do not panic.
        let _ = format_unix_time(i64::MIN);
        let _ = format_unix_time(i64::MAX - 1);
    }
}
