//! Durations as the Go original writes them: `500ms`, `2s`, `1m30s`, `1.5h`, `0`.

use std::time::Duration;

/// Parses a Go-style duration: one or more `<number><unit>` terms with units `ns`, `us`
/// (`µs`), `ms`, `s`, `m`, `h`; numbers may have a fraction. A bare `0` is zero. Negative
/// values are refused.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!("duration `{text}` must not be negative"));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    let invalid = || format!("invalid duration `{text}` (expected e.g. `500ms`, `2s`, `1m30s`)");
    let mut rest = body;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_num) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after_num
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_num.len(), |(index, _)| index);
        let (unit, after_unit) = after_num.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration `{text}`")),
            other => return Err(format!("unknown unit `{other}` in duration `{text}`")),
        };
        let too_large = || format!("duration `{text}` is too large");
        // Bound the digits so the arithmetic below cannot overflow u128.
        if int_part.len() > 20 {
            return Err(too_large());
        }
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(too_large)?;
        // Fraction: only the digits that can still matter at nanosecond resolution.
        let mut frac_scale = scale;
        for digit in frac_part.bytes().take(20) {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * frac_scale;
        }
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        rest = after_unit;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| format!("duration `{text}` is too large"))?;
    // The remainder is below 10^9, so it fits in u32.
    let subsec = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_durations() {
        let ok = [
            ("0", Duration::ZERO),
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("2.s", Duration::from_secs(2)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("7ns", Duration::from_nanos(7)),
            ("+3s", Duration::from_secs(3)),
            ("0s", Duration::ZERO),
            ("1.0000000001s", Duration::from_secs(1)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_bad_durations() {
        let bad = [
            ("", "empty duration"),
            ("5", "missing unit in duration `5`"),
            ("-1s", "duration `-1s` must not be negative"),
            ("2 s", "unknown unit ` s` in duration `2 s`"),
            ("2sec", "unknown unit `sec` in duration `2sec`"),
            (
                "s",
                "invalid duration `s` (expected e.g. `500ms`, `2s`, `1m30s`)",
            ),
            (
                ".s",
                "invalid duration `.s` (expected e.g. `500ms`, `2s`, `1m30s`)",
            ),
            (
                "+",
                "invalid duration `+` (expected e.g. `500ms`, `2s`, `1m30s`)",
            ),
            ("1d", "unknown unit `d` in duration `1d`"),
            (
                "99999999999999999999999h",
                "duration `99999999999999999999999h` is too large",
            ),
            (
                "9999999999999999999h",
                "duration `9999999999999999999h` is too large",
            ),
        ];
        for (text, want) in bad {
            assert_eq!(parse_duration(text), Err(want.to_owned()), "{text}");
        }
    }
}
