//! When the daemon exports a provider again: pure functions of the last
//! request time, the interval and now (no clock, no store).

use std::time::Duration;

/// Whether a provider's scheduled export is due (pure): never exported, or
/// the last request is at least `interval` ago.
pub fn export_due(
    last_requested: Option<chrono::DateTime<chrono::Utc>>,
    interval: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    match last_requested {
        None => true,
        Some(t) => chrono::Duration::from_std(interval).is_ok_and(|i| now - t >= i),
    }
}

/// When a provider's next scheduled export is due (pure): now when due.
pub fn next_export_at(
    last_requested: Option<chrono::DateTime<chrono::Utc>>,
    interval: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    match (last_requested, chrono::Duration::from_std(interval)) {
        (Some(t), Ok(i)) if !export_due(last_requested, interval, now) => t + i,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_due_after_its_interval() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .expect("time")
            .to_utc();
        let day = Duration::from_secs(86400);
        let rows: &[(Option<&str>, bool)] = &[
            (None, true),
            (Some("2026-12-05T12:00:00Z"), true),
            (Some("2026-12-05T11:00:00Z"), true),
            (Some("2026-12-05T12:00:01Z"), false),
            (Some("2026-12-06T11:59:00Z"), false),
        ];
        for (last, due) in rows {
            let last = last.map(|l| {
                chrono::DateTime::parse_from_rfc3339(l)
                    .expect("time")
                    .to_utc()
            });
            assert_eq!(export_due(last, day, now), *due, "{last:?}");
            let next = next_export_at(last, day, now);
            assert_eq!(next == now, *due, "{last:?}");
        }
    }
}
