//! Durations on the command line: a number and a unit, `ms`, `s`, `m` or `h` (`250ms`, `5s`,
//! `2m`, `1h`); a bare `0` is zero.

use std::time::Duration;

/// Parses `text` as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
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
    .ok_or_else(|| format!("'{text}' is too long a duration"))?;
    Ok(Duration::from_millis(ms))
}

/// A duration that may be `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

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
    }
}
