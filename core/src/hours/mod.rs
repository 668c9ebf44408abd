//! Opening hours of a bot and of its queues.
//!
//! Hours are written in the OpenStreetMap `opening_hours` syntax because
//! operators already know it and it covers lunch breaks, public holidays,
//! closing days and hours past midnight without us inventing a format.
//!
//! The `opening-hours` crate evaluates expressions on local wall-clock time.
//! We keep it on naive local time and do the time-zone mapping here, so that
//! `evaluate` and `next_change` agree on every instant, including the
//! repeated hour when clocks go back: the crate's own time-zone support
//! reports an opening inside that hour at its second occurrence while
//! `is_open` already says open at the first one.

mod display;

pub use display::describe_opening;

use std::collections::BTreeMap;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use opening_hours::localization::Country;
use opening_hours::{Context, ContextHolidays, OpeningHours};

/// Configuration as written in the bot config document (serde, camelCase,
/// deny nothing: unknown fields ignored, so older services accept newer
/// documents).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoursConfig {
    /// IANA name, e.g. "Europe/Brussels": hours are wall-clock times there.
    pub time_zone: String,
    /// OSM syntax; `None` means always open, so a bot without hours never turns users away.
    #[serde(default)]
    pub opening_hours: Option<String>,
    /// ISO country code, e.g. "BE"; without it `PH` never matches.
    #[serde(default)]
    pub public_holidays: Option<String>,
    /// Queues staffed by other teams may keep other hours than the bot.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueHours>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueHours {
    pub opening_hours: String,
}

/// Config errors, worded to follow a field path such as `hours.timeZone: `.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HoursError {
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("unknown country code {0:?} for public holidays")]
    UnknownCountry(String),
    #[error(
        "invalid opening hours{}: {message}",
        .queue.as_ref().map(|q| format!(" for queue {q:?}")).unwrap_or_default()
    )]
    InvalidExpression { queue: Option<String>, message: String },
}

/// Why users are told the queue is closed; a holiday deserves other wording
/// than "outside office hours".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedReason {
    OutsideHours,
    PublicHoliday,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoursState {
    pub open: bool,
    /// `None` when open.
    pub closed_reason: Option<ClosedReason>,
    /// First instant at which `open` flips; `None` when it never does within
    /// about a year, so callers can cache the state until then.
    pub next_change: Option<DateTime<Utc>>,
}

/// How far ahead we look for a change: a year plus a few days, so that a
/// once-a-year opening (e.g. `Dec 24 09:00-12:00`) is still found.
const HORIZON: TimeDelta = TimeDelta::days(370);

/// Bounds the search for a real flip when the crate reports changes that do
/// not flip open/closed (comments, `unknown`, hours inside a DST gap).
const MAX_STEPS: usize = 1000;

/// Compiled once per bot config so that each message only evaluates, never
/// parses; cheap to clone (expressions are shared) and Send + Sync.
#[derive(Clone, Debug)]
pub struct Schedule {
    tz: Tz,
    default: OpeningHours,
    queues: BTreeMap<String, OpeningHours>,
    holidays: ContextHolidays,
}

impl Schedule {
    /// Validates everything up front so a bad config is rejected when it is
    /// saved, not when the first user writes outside office hours.
    pub fn compile(cfg: &HoursConfig) -> Result<Schedule, HoursError> {
        let tz: Tz = cfg
            .time_zone
            .trim()
            .parse()
            .map_err(|_| HoursError::UnknownTimeZone(cfg.time_zone.clone()))?;

        let holidays = match cfg.public_holidays.as_deref() {
            None => ContextHolidays::default(),
            Some(code) => code
                .trim()
                .to_ascii_uppercase()
                .parse::<Country>()
                .map_err(|_| HoursError::UnknownCountry(code.to_string()))?
                .holidays(),
        };
        let ctx = Context::default().with_holidays(holidays.clone());

        let default = compile_expression(cfg.opening_hours.as_deref().unwrap_or("24/7"), None, &ctx)?;
        let queues = cfg
            .queues
            .iter()
            .map(|(name, q)| compile_expression(&q.opening_hours, Some(name), &ctx).map(|oh| (name.clone(), oh)))
            .collect::<Result<_, _>>()?;

        Ok(Schedule {
            tz,
            default,
            queues,
            holidays,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Whether `queue` (falls back to the bot-wide hours when the queue has
    /// no override, or when queue is None) is open at `now`. A queue name
    /// that is not configured is not an error: queues are added to the bot
    /// before their hours are known.
    pub fn evaluate(&self, queue: Option<&str>, now: DateTime<Utc>) -> HoursState {
        let hours = self.hours_for(queue);
        let local = self.local(now);
        let open = hours.is_open(local);
        let closed_reason = match open {
            true => None,
            false if self.holidays.get_public().contains(local.date()) => Some(ClosedReason::PublicHoliday),
            false => Some(ClosedReason::OutsideHours),
        };
        HoursState {
            open,
            closed_reason,
            next_change: self.next_flip(hours, now, open),
        }
    }

    /// The next moment the queue opens, at or after `now` (None if never within ~1 year).
    pub fn next_opening(&self, queue: Option<&str>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let hours = self.hours_for(queue);
        if hours.is_open(self.local(now)) {
            Some(now)
        } else {
            self.next_flip(hours, now, false)
        }
    }

    fn hours_for(&self, queue: Option<&str>) -> &OpeningHours {
        queue.and_then(|q| self.queues.get(q)).unwrap_or(&self.default)
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    fn offset_at(&self, at: DateTime<Utc>) -> chrono::FixedOffset {
        self.tz.offset_from_utc_datetime(&at.naive_utc()).fix()
    }

    /// The crate only knows naive local time, which is continuous except at
    /// DST transitions; so we take its next change, map it back to an
    /// instant, also stop where the clock is set back, and keep going until
    /// the state really flips.
    fn next_flip(&self, hours: &OpeningHours, now: DateTime<Utc>, open_now: bool) -> Option<DateTime<Utc>> {
        let horizon = now + HORIZON;
        let horizon_local = self.local(horizon);
        let mut t = now;
        for _ in 0..MAX_STEPS {
            let from_crate = hours
                .iter_range(self.local(t), horizon_local)
                .next()
                .map(|range| range.range.end)
                .filter(|end| *end < horizon_local)
                .and_then(|end| self.first_instant_after(end, t));
            let next = match (from_crate, self.clock_set_back_after(t)) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b)?,
            };
            if next > horizon {
                return None;
            }
            if hours.is_open(self.local(next)) != open_now {
                return Some(next);
            }
            t = next;
        }
        None
    }

    /// A local time in the DST gap never shows on the clock, so the change
    /// happens when the clock jumps past it; one in the repeated hour happens
    /// at whichever occurrence comes first after `after`.
    fn first_instant_after(&self, local: NaiveDateTime, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(dt) => Some(dt.to_utc()).filter(|i| *i > after),
            LocalResult::Ambiguous(earliest, latest) => [earliest, latest]
                .into_iter()
                .map(|dt| dt.to_utc())
                .find(|i| *i > after),
            LocalResult::None => (1..=24 * 60)
                .map(|m| local + TimeDelta::minutes(m))
                .find_map(|l| self.tz.from_local_datetime(&l).earliest())
                .map(|dt| dt.to_utc())
                .filter(|i| *i > after),
        }
    }

    /// When `at` is in the first pass of a repeated hour, the clock will jump
    /// back to local times the crate considers already past; the state may
    /// flip at that jump, which the crate cannot report.
    fn clock_set_back_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let LocalResult::Ambiguous(earliest, latest) = self.tz.from_local_datetime(&self.local(at)) else {
            return None;
        };
        if earliest.to_utc() != at {
            return None;
        }
        // Offsets change on whole seconds, so bisect over seconds.
        let before = self.offset_at(at);
        let (mut lo, mut hi) = (at.timestamp(), latest.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let offset = DateTime::from_timestamp(mid, 0).map(|t| self.offset_at(t));
            if offset == Some(before) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        DateTime::from_timestamp(hi, 0)
    }
}

fn compile_expression(expression: &str, queue: Option<&String>, ctx: &Context) -> Result<OpeningHours, HoursError> {
    let invalid = |message: String| HoursError::InvalidExpression {
        queue: queue.cloned(),
        message,
    };
    if expression.trim().is_empty() {
        return Err(invalid("the expression is empty".to_string()));
    }
    let parsed = expression
        .parse::<OpeningHours>()
        .map_err(|e| invalid(one_line_parse_error(expression, &e.to_string())))?;
    Ok(parsed.with_context(ctx.clone()))
}

/// The parser's message is a multi-line pest report with an ASCII caret;
/// config errors are shown on one line, so keep the position and the
/// expectation and drop the drawing.
fn one_line_parse_error(expression: &str, report: &str) -> String {
    let position = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(|pos| pos.trim().split_once(':'));
    let detail = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .map(|d| d.replace("EOI", "end of expression").replace('_', " "));
    match (position, detail) {
        (Some((line, column)), Some(detail)) => {
            let at = if expression.contains('\n') {
                format!("line {line}, column {column}")
            } else {
                format!("column {column}")
            };
            format!("{detail} at {at} of {expression:?}")
        }
        _ => format!(
            "{} in {expression:?}",
            report.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Brussels;

    const OFFICE: &str = "Mo-Fr 08:30-12:00,13:00-17:30; Sa 09:00-12:00; PH off";
    const WEEKDAYS_ONLY: &str = "Mo-Fr 08:30-12:00,13:00-17:30; PH off";

    fn config(tz: &str, hours: Option<&str>, country: Option<&str>) -> HoursConfig {
        HoursConfig {
            time_zone: tz.to_string(),
            opening_hours: hours.map(str::to_string),
            public_holidays: country.map(str::to_string),
            queues: BTreeMap::new(),
        }
    }

    fn schedule(tz: &str, hours: Option<&str>, country: Option<&str>) -> Schedule {
        Schedule::compile(&config(tz, hours, country)).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// An unambiguous local time ("2026-12-25 18:00" or with seconds).
    fn local(tz: Tz, s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .unwrap();
        tz.from_local_datetime(&naive).single().unwrap().to_utc()
    }

    fn brussels(s: &str) -> DateTime<Utc> {
        local(Brussels, s)
    }

    #[test]
    fn dst_missing_and_repeated_hours_flip_at_the_right_instants() {
        // Per zone and hours: (now, open, next_change), all instants in UTC.
        type Rows = &'static [(&'static str, bool, &'static str)];
        let cases: [(&str, &str, Rows); 8] = [
            // Brussels spring forward: 2026-03-29 02:00 CET -> 03:00 CEST at 01:00Z.
            (
                "Europe/Brussels",
                "Mo-Su 01:00-04:00",
                &[
                    ("2026-03-28T23:59:59Z", false, "2026-03-29T00:00:00Z"),
                    ("2026-03-29T00:00:00Z", true, "2026-03-29T02:00:00Z"),
                    ("2026-03-29T00:59:59Z", true, "2026-03-29T02:00:00Z"),
                    ("2026-03-29T01:00:00Z", true, "2026-03-29T02:00:00Z"),
                    ("2026-03-29T02:00:00Z", false, "2026-03-29T23:00:00Z"),
                    // Fall back: 2026-10-25 03:00 CEST -> 02:00 CET at 01:00Z.
                    ("2026-10-24T22:59:59Z", false, "2026-10-24T23:00:00Z"),
                    ("2026-10-24T23:00:00Z", true, "2026-10-25T03:00:00Z"),
                    ("2026-10-25T00:30:00Z", true, "2026-10-25T03:00:00Z"),
                    ("2026-10-25T01:30:00Z", true, "2026-10-25T03:00:00Z"),
                    ("2026-10-25T03:00:00Z", false, "2026-10-26T00:00:00Z"),
                ],
            ),
            // 02:30 does not exist that night: opens when the clock jumps to 03:00.
            (
                "Europe/Brussels",
                "Su 02:30-04:00",
                &[
                    ("2026-03-29T00:30:00Z", false, "2026-03-29T01:00:00Z"),
                    ("2026-03-29T00:59:59Z", false, "2026-03-29T01:00:00Z"),
                    ("2026-03-29T01:00:00Z", true, "2026-03-29T02:00:00Z"),
                    ("2026-03-29T02:00:00Z", false, "2026-04-05T00:30:00Z"),
                ],
            ),
            // 02:30 shows twice in October: open at the first, closed again
            // when the clock goes back to 02:00, open at the second 02:30.
            (
                "Europe/Brussels",
                "Su 02:30-04:00",
                &[
                    ("2026-10-24T23:45:00Z", false, "2026-10-25T00:30:00Z"),
                    ("2026-10-25T00:30:00Z", true, "2026-10-25T01:00:00Z"),
                    ("2026-10-25T00:59:59Z", true, "2026-10-25T01:00:00Z"),
                    ("2026-10-25T01:00:00Z", false, "2026-10-25T01:30:00Z"),
                    ("2026-10-25T01:30:00Z", true, "2026-10-25T03:00:00Z"),
                    ("2026-10-25T03:00:00Z", false, "2026-11-01T01:30:00Z"),
                ],
            ),
            // New York spring forward: 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z.
            (
                "America/New_York",
                "Mo-Su 01:00-04:00",
                &[
                    ("2026-03-08T05:59:59Z", false, "2026-03-08T06:00:00Z"),
                    ("2026-03-08T06:00:00Z", true, "2026-03-08T08:00:00Z"),
                    ("2026-03-08T06:59:59Z", true, "2026-03-08T08:00:00Z"),
                    ("2026-03-08T07:00:00Z", true, "2026-03-08T08:00:00Z"),
                    ("2026-03-08T08:00:00Z", false, "2026-03-09T05:00:00Z"),
                ],
            ),
            (
                "America/New_York",
                "Su 02:30-04:00",
                &[
                    ("2026-03-08T06:30:00Z", false, "2026-03-08T07:00:00Z"),
                    ("2026-03-08T07:00:00Z", true, "2026-03-08T08:00:00Z"),
                    // In November 02:30 happens once, after the repeated hour.
                    ("2026-11-01T06:30:00Z", false, "2026-11-01T07:30:00Z"),
                    ("2026-11-01T07:30:00Z", true, "2026-11-01T09:00:00Z"),
                ],
            ),
            // New York fall back: 2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z.
            (
                "America/New_York",
                "Mo-Su 01:00-04:00",
                &[
                    ("2026-11-01T04:59:59Z", false, "2026-11-01T05:00:00Z"),
                    ("2026-11-01T05:30:00Z", true, "2026-11-01T09:00:00Z"),
                    ("2026-11-01T06:30:00Z", true, "2026-11-01T09:00:00Z"),
                    ("2026-11-01T09:00:00Z", false, "2026-11-02T06:00:00Z"),
                ],
            ),
            (
                "America/New_York",
                "Su 01:30-04:00",
                &[
                    ("2026-11-01T05:00:00Z", false, "2026-11-01T05:30:00Z"),
                    ("2026-11-01T05:30:00Z", true, "2026-11-01T06:00:00Z"),
                    ("2026-11-01T06:00:00Z", false, "2026-11-01T06:30:00Z"),
                    ("2026-11-01T06:30:00Z", true, "2026-11-01T09:00:00Z"),
                ],
            ),
            // Closes inside the repeated hour: closes twice.
            (
                "Europe/Brussels",
                "Su 01:00-02:30",
                &[
                    ("2026-10-24T23:30:00Z", true, "2026-10-25T00:30:00Z"),
                    ("2026-10-25T00:30:00Z", false, "2026-10-25T01:00:00Z"),
                    ("2026-10-25T01:00:00Z", true, "2026-10-25T01:30:00Z"),
                    ("2026-10-25T01:30:00Z", false, "2026-11-01T00:00:00Z"),
                ],
            ),
        ];
        for (tz, hours, rows) in cases {
            let sched = schedule(tz, Some(hours), None);
            for &(now, open, next) in rows {
                let state = sched.evaluate(None, utc(now));
                assert_eq!(
                    (state.open, state.next_change),
                    (open, Some(utc(next))),
                    "{tz} {hours:?} at {now}"
                );
            }
        }
    }

    /// Whatever the crate does internally, a caller that sleeps until
    /// `next_change` must wake up exactly when the state flips.
    #[test]
    fn next_change_is_the_first_minute_the_state_flips_across_dst_days() {
        // (zone, start of a 36-hour window around the change, hours)
        let windows: [(&str, &str, &[&str]); 4] = [
            (
                "Europe/Brussels",
                "2026-03-28T12:00:00Z",
                &["Mo-Su 01:00-04:00", "Su 02:30-04:00", "Su 02:15-02:45,03:30-05:00"],
            ),
            (
                "Europe/Brussels",
                "2026-10-24T12:00:00Z",
                &[
                    "Mo-Su 01:00-04:00",
                    "Su 02:30-04:00",
                    "Su 01:00-02:30",
                    "Mo-Su 22:00-02:30",
                ],
            ),
            ("America/New_York", "2026-03-07T12:00:00Z", &["Su 01:30-04:00"]),
            (
                "America/New_York",
                "2026-10-31T12:00:00Z",
                &["Su 01:30-04:00", "Mo-Su 01:00-01:30"],
            ),
        ];
        let windows = windows
            .into_iter()
            .flat_map(|(tz, start, hours)| hours.iter().map(move |h| (tz, start, *h)));
        for (tz, start, hours) in windows {
            let sched = schedule(tz, Some(hours), None);
            let minutes: Vec<_> = (0..36 * 60).map(|m| utc(start) + TimeDelta::minutes(m)).collect();
            let states: Vec<_> = minutes.iter().map(|t| sched.evaluate(None, *t)).collect();
            for i in 0..minutes.len() {
                let Some(j) = (i + 1..minutes.len()).find(|&j| states[j].open != states[i].open) else {
                    continue;
                };
                assert_eq!(
                    states[i].next_change,
                    Some(minutes[j]),
                    "{tz} {hours:?} at {}",
                    minutes[i]
                );
            }
        }
    }

    #[test]
    fn lunch_break_edges() {
        let sched = schedule("Europe/Brussels", Some(OFFICE), Some("BE"));
        // Tuesday 2026-12-22.
        let cases = [
            ("2026-12-22 08:29:59", false, "2026-12-22 08:30"),
            ("2026-12-22 08:30:00", true, "2026-12-22 12:00"),
            ("2026-12-22 11:59:59", true, "2026-12-22 12:00"),
            ("2026-12-22 12:00:00", false, "2026-12-22 13:00"),
            ("2026-12-22 12:59:59", false, "2026-12-22 13:00"),
            ("2026-12-22 13:00:00", true, "2026-12-22 17:30"),
            ("2026-12-22 17:29:59", true, "2026-12-22 17:30"),
            ("2026-12-22 17:30:00", false, "2026-12-23 08:30"),
        ];
        for (now, open, next) in cases {
            let state = sched.evaluate(None, brussels(now));
            assert_eq!((state.open, state.next_change), (open, Some(brussels(next))), "{now}");
        }
        assert_eq!(
            sched.evaluate(None, brussels("2026-12-22 12:00")).closed_reason,
            Some(ClosedReason::OutsideHours)
        );
    }

    #[test]
    fn closed_on_public_holiday() {
        use ClosedReason::{OutsideHours, PublicHoliday};
        let sched = schedule("Europe/Brussels", Some(OFFICE), Some("BE"));
        let cases = [
            // Christmas and New Year 2026/27 fall on Fridays.
            ("2026-12-25 10:00", Some(PublicHoliday), "2026-12-26 09:00"),
            ("2026-12-25 20:00", Some(PublicHoliday), "2026-12-26 09:00"),
            ("2027-01-01 10:00", Some(PublicHoliday), "2027-01-02 09:00"),
            // Easter Monday, Labour Day, Ascension, National Day.
            ("2027-03-29 10:00", Some(PublicHoliday), "2027-03-30 08:30"),
            ("2026-05-01 10:00", Some(PublicHoliday), "2026-05-02 09:00"),
            ("2026-05-14 10:00", Some(PublicHoliday), "2026-05-15 08:30"),
            ("2026-07-21 10:00", Some(PublicHoliday), "2026-07-22 08:30"),
            // Ordinary days around them: weekdays, Saturday morning, Sunday.
            ("2026-12-24 10:00", None, "2026-12-24 12:00"),
            ("2026-12-22 10:00", None, "2026-12-22 12:00"),
            ("2026-12-19 10:00", None, "2026-12-19 12:00"),
            ("2026-12-19 12:00", Some(OutsideHours), "2026-12-21 08:30"),
            ("2026-12-20 10:00", Some(OutsideHours), "2026-12-21 08:30"),
            ("2026-12-28 07:00", Some(OutsideHours), "2026-12-28 08:30"),
        ];
        for (now, closed_reason, next) in cases {
            let expected = HoursState {
                open: closed_reason.is_none(),
                closed_reason,
                next_change: Some(brussels(next)),
            };
            assert_eq!(sched.evaluate(None, brussels(now)), expected, "{now}");
        }
    }

    #[test]
    fn without_a_country_public_holidays_never_match() {
        let sched = schedule("Europe/Brussels", Some(OFFICE), None);
        let state = sched.evaluate(None, brussels("2026-12-25 10:00"));
        assert!(state.open);
        let closed = sched.evaluate(None, brussels("2026-12-25 12:30"));
        assert_eq!(closed.closed_reason, Some(ClosedReason::OutsideHours));
    }

    #[test]
    fn holiday_reason_only_when_closed() {
        // Open on a holiday because the expression says nothing about PH.
        let sched = schedule("Europe/Brussels", Some("Mo-Fr 08:30-17:30"), Some("BE"));
        let open = sched.evaluate(None, brussels("2026-12-25 10:00"));
        assert_eq!((open.open, open.closed_reason), (true, None));
        let after = sched.evaluate(None, brussels("2026-12-25 18:00"));
        assert_eq!(after.closed_reason, Some(ClosedReason::PublicHoliday));
    }

    #[test]
    fn hours_across_midnight() {
        let sched = schedule("Europe/Brussels", Some("Mo-Su 22:00-02:00"), None);
        let cases = [
            ("2026-12-22 23:30", true, "2026-12-23 02:00"),
            ("2026-12-23 01:59", true, "2026-12-23 02:00"),
            ("2026-12-23 02:00", false, "2026-12-23 22:00"),
            ("2026-12-23 21:59", false, "2026-12-23 22:00"),
            ("2026-12-23 22:00", true, "2026-12-24 02:00"),
            ("2026-12-31 23:59", true, "2027-01-01 02:00"),
        ];
        for (now, open, next) in cases {
            let state = sched.evaluate(None, brussels(now));
            assert_eq!((state.open, state.next_change), (open, Some(brussels(next))), "{now}");
        }
    }

    #[test]
    fn next_opening_skips_holidays_weekends_and_dst() {
        let cases = [
            (OFFICE, "2026-12-25 18:00", Some("2026-12-26 09:00")),
            (WEEKDAYS_ONLY, "2026-12-25 18:00", Some("2026-12-28 08:30")),
            (WEEKDAYS_ONLY, "2026-12-31 17:45", Some("2027-01-04 08:30")),
            // Good Friday evening; Easter Sunday is also the DST change and
            // Easter Monday a holiday.
            (WEEKDAYS_ONLY, "2027-03-26 18:00", Some("2027-03-30 08:30")),
            (OFFICE, "2026-12-22 12:15", Some("2026-12-22 13:00")),
            // Open now: the opening is now.
            (OFFICE, "2026-12-22 10:00", Some("2026-12-22 10:00")),
            // Once a year is still found.
            ("Dec 24 09:00-12:00", "2026-12-25 10:00", Some("2027-12-24 09:00")),
            ("off", "2026-12-25 10:00", None),
            ("2020 Jan 01 09:00-12:00", "2026-12-25 10:00", None),
        ];
        for (hours, now, expected) in cases {
            let sched = schedule("Europe/Brussels", Some(hours), Some("BE"));
            assert_eq!(
                sched.next_opening(None, brussels(now)),
                expected.map(brussels),
                "{hours:?} from {now}"
            );
        }
        let sched = schedule("Europe/Brussels", Some(WEEKDAYS_ONLY), Some("BE"));
        assert_eq!(
            sched.next_opening(None, brussels("2027-03-26 18:00")),
            Some(utc("2027-03-30T06:30:00Z"))
        );
    }

    #[test]
    fn queue_override_is_used_and_unknown_queue_falls_back_to_bot_hours() {
        let mut cfg = config("Europe/Brussels", Some("Mo-Fr 08:30-17:30"), Some("BE"));
        cfg.queues.insert(
            "billing".into(),
            QueueHours {
                opening_hours: "Mo-Fr 10:00-12:00".into(),
            },
        );
        cfg.queues.insert(
            "night".into(),
            QueueHours {
                opening_hours: "Mo-Su 22:00-06:00".into(),
            },
        );
        let sched = Schedule::compile(&cfg).unwrap();
        let cases = [
            (None, "2026-12-22 09:00", true, "2026-12-22 17:30"),
            (Some("billing"), "2026-12-22 09:00", false, "2026-12-22 10:00"),
            (Some("billing"), "2026-12-22 11:00", true, "2026-12-22 12:00"),
            (Some("sales"), "2026-12-22 09:00", true, "2026-12-22 17:30"),
            (Some("night"), "2026-12-22 09:00", false, "2026-12-22 22:00"),
            (Some("night"), "2026-12-22 23:00", true, "2026-12-23 06:00"),
            (None, "2026-12-22 23:00", false, "2026-12-23 08:30"),
        ];
        for (queue, now, open, next) in cases {
            let state = sched.evaluate(queue, brussels(now));
            assert_eq!(
                (state.open, state.next_change),
                (open, Some(brussels(next))),
                "{queue:?} at {now}"
            );
        }
        assert_eq!(
            sched.next_opening(Some("billing"), brussels("2026-12-22 09:00")),
            Some(brussels("2026-12-22 10:00"))
        );
    }

    #[test]
    fn no_opening_hours_means_always_open() {
        let sched = schedule("Europe/Brussels", None, Some("BE"));
        for now in ["2026-12-25 03:00", "2026-12-20 23:59", "2026-03-29 03:30"] {
            let now = brussels(now);
            assert_eq!(
                sched.evaluate(None, now),
                HoursState {
                    open: true,
                    closed_reason: None,
                    next_change: None,
                }
            );
            assert_eq!(sched.next_opening(Some("any"), now), Some(now));
        }
    }

    #[test]
    fn closed_forever_has_no_next_change() {
        let sched = schedule("Europe/Brussels", Some("off"), None);
        let state = sched.evaluate(None, brussels("2026-12-22 10:00"));
        assert_eq!(
            state,
            HoursState {
                open: false,
                closed_reason: Some(ClosedReason::OutsideHours),
                next_change: None,
            }
        );
    }

    #[test]
    fn regional_and_company_closing_days_written_as_date_rules() {
        const FLEMISH_DAY: &str = "Mo-Sa 09:00-17:00; Jul 11 off";
        const ONE_OFF: &str = "Mo-Fr 09:00-17:00; PH off; 2026 Dec 24 off";
        let cases = [
            // Flemish Community day (a Saturday in 2026), not a national holiday.
            (FLEMISH_DAY, "2026-07-11 10:00", false, "2026-07-13 09:00"),
            (FLEMISH_DAY, "2026-07-04 10:00", true, "2026-07-04 17:00"),
            (FLEMISH_DAY, "2026-07-10 16:00", true, "2026-07-10 17:00"),
            (FLEMISH_DAY, "2026-07-10 17:00", false, "2026-07-13 09:00"),
            // A one-off closing applies to its year only.
            (ONE_OFF, "2026-12-24 10:00", false, "2026-12-28 09:00"),
            (ONE_OFF, "2027-12-24 10:00", true, "2027-12-24 17:00"),
        ];
        for (hours, now, open, next) in cases {
            let sched = schedule("Europe/Brussels", Some(hours), Some("BE"));
            let expected = HoursState {
                open,
                closed_reason: (!open).then_some(ClosedReason::OutsideHours),
                next_change: Some(brussels(next)),
            };
            assert_eq!(sched.evaluate(None, brussels(now)), expected, "{hours:?} at {now}");
        }
    }

    #[test]
    fn config_errors_name_the_problem_on_one_line() {
        let with_queue = |hours: &str| {
            let mut cfg = config("Europe/Brussels", Some("Mo-Fr 09:00-17:00"), Some("BE"));
            cfg.queues.insert(
                "billing".into(),
                QueueHours {
                    opening_hours: hours.into(),
                },
            );
            cfg
        };
        let cases = [
            (
                config("Europe/Brusels", None, None),
                HoursError::UnknownTimeZone("Europe/Brusels".into()),
                r#"unknown time zone "Europe/Brusels""#,
            ),
            (
                config("Europe/Brussels", None, Some("XX")),
                HoursError::UnknownCountry("XX".into()),
                r#"unknown country code "XX" for public holidays"#,
            ),
            (
                config("Europe/Brussels", Some("Mo-Fx 09:00-17:00"), None),
                HoursError::InvalidExpression {
                    queue: None,
                    message: r#"expected wday at column 4 of "Mo-Fx 09:00-17:00""#.into(),
                },
                r#"invalid opening hours: expected wday at column 4 of "Mo-Fx 09:00-17:00""#,
            ),
            (
                with_queue("Mo-Fr 25:00-26:00"),
                HoursError::InvalidExpression {
                    queue: Some("billing".into()),
                    message: concat!(
                        "expected end of expression, any rule separator, rules modifier, ",
                        r#"timespan, or holiday at column 7 of "Mo-Fr 25:00-26:00""#
                    )
                    .into(),
                },
                concat!(
                    r#"invalid opening hours for queue "billing": expected end of expression, "#,
                    "any rule separator, rules modifier, timespan, or holiday ",
                    r#"at column 7 of "Mo-Fr 25:00-26:00""#
                ),
            ),
            (
                with_queue("  "),
                HoursError::InvalidExpression {
                    queue: Some("billing".into()),
                    message: "the expression is empty".into(),
                },
                r#"invalid opening hours for queue "billing": the expression is empty"#,
            ),
        ];
        for (cfg, error, display) in cases {
            let got = Schedule::compile(&cfg).unwrap_err();
            assert_eq!(got, error);
            assert_eq!(got.to_string(), display);
        }
    }

    #[test]
    fn every_parse_error_is_a_single_line() {
        for bad in [
            "garbage",
            "Mo-Fr 09:00-17:00;;",
            "Mo-Fr 09:00-\n17:00",
            "Mo 99:00-10:00",
        ] {
            let err = Schedule::compile(&config("UTC", Some(bad), None)).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with("invalid opening hours: "), "{text}");
        }
    }

    #[test]
    fn country_code_is_case_insensitive_and_trimmed() {
        let sched = schedule("Europe/Brussels", Some(OFFICE), Some(" be "));
        let state = sched.evaluate(None, brussels("2026-12-25 10:00"));
        assert_eq!(state.closed_reason, Some(ClosedReason::PublicHoliday));
    }

    #[test]
    fn time_zone_is_exposed_for_rendering() {
        assert_eq!(schedule("America/New_York", None, None).time_zone(), New_York);
    }

    #[test]
    fn schedule_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Schedule>();
    }

    #[test]
    fn config_reads_camel_case_ignores_unknown_fields_and_defaults_the_rest() {
        use serde::Deserialize;
        use serde::de::value::{Error, MapDeserializer};
        let fields = [("timeZone", "Europe/Brussels"), ("somethingNew", "ignored")];
        let cfg = HoursConfig::deserialize(MapDeserializer::<_, Error>::new(fields.into_iter())).unwrap();
        assert_eq!(cfg, config("Europe/Brussels", None, None));
    }

    #[test]
    fn closed_reason_serializes_in_snake_case() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::Error;
        for (text, reason) in [
            ("outside_hours", ClosedReason::OutsideHours),
            ("public_holiday", ClosedReason::PublicHoliday),
        ] {
            let de = IntoDeserializer::<Error>::into_deserializer(text);
            assert_eq!(ClosedReason::deserialize(de).unwrap(), reason);
        }
    }
}
