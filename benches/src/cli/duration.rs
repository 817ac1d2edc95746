//! Durations on the command line: a number and a unit, `ms`, `s`, `m` or `h` (`250ms`, `5s`,
//! `2m`, `1h`); a bare `0` is zero. Never negative, at most `i64::MAX` ms (event time's range).
//!
//! The options that take one accept a value starting with `-` (`allow_hyphen_values`), so that
//! `-5s` gets "durations cannot be negative" rather than clap's "unexpected argument".

use std::time::Duration;

/// Parses `text` as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("durations cannot be negative".into());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' needs a unit: ms, s, m or h (for example 5s)"))?;
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a whole number"))?;
    let ms = match unit {
        "ms" => Some(value),
        "s" => value.checked_mul(1_000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "'{unit}' in '{text}' is not a unit: use ms, s, m or h"
            ));
        }
    }
    .filter(|&ms| i64::try_from(ms).is_ok())
    .ok_or_else(|| format!("'{text}' is too long a duration: at most {}ms", i64::MAX))?;
    Ok(Duration::from_millis(ms))
}

/// Parses `text` as a duration longer than zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "'{}': the duration must be more than 0",
            text.trim()
        )),
        d => Ok(d),
    }
}

/// A duration that may be `off` (or `auto`: [`parse_auto_duration`]), then `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// Parses a duration or `auto` (`None`: the engine derives it).
pub fn parse_auto_duration(text: &str) -> Result<OptionalDuration, String> {
    if text.trim() == "auto" {
        Ok(OptionalDuration(None))
    } else {
        parse_duration(text).map(|d| OptionalDuration(Some(d)))
    }
}

/// Parses a duration or `off`.
pub fn parse_optional_duration(text: &str) -> Result<OptionalDuration, String> {
    if text.trim() == "off" {
        Ok(OptionalDuration(None))
    } else {
        parse_duration(text).map(|d| OptionalDuration(Some(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5d").unwrap_err().contains("not a unit"));
        assert!(parse_duration("s").unwrap_err().contains("whole number"));
        assert_eq!(parse_optional_duration("off"), Ok(OptionalDuration(None)));
        assert_eq!(parse_auto_duration("auto"), Ok(OptionalDuration(None)));
        assert_eq!(
            parse_auto_duration("2ms"),
            Ok(OptionalDuration(Some(Duration::from_millis(2))))
        );
        assert!(
            parse_auto_duration("off")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            parse_duration("-5s")
                .unwrap_err()
                .contains("cannot be negative")
        );
        assert!(
            parse_optional_duration("-1ms")
                .unwrap_err()
                .contains("cannot be negative")
        );
        assert!(parse_duration("9223372036854775807ms").is_ok());
        assert!(
            parse_positive_duration("0s")
                .unwrap_err()
                .contains("more than 0")
        );
        assert!(
            parse_duration("9223372036854775808ms")
                .unwrap_err()
                .contains("too long")
        );
    }
}
