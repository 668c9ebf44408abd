//! `handover stats`: handover figures for a period, read from the table rather than from
//! CloudWatch, so they work on the local stack and without access to the account's metrics.
//!
//! Sources: each session's state item carries its current handover and its last finished one
//! (`lastHandover`); the bot's `WAIT#{queue}#{day}` items hold the time-to-join statistics per
//! queue and day (kept 3 days). Limits, said in the output's `notes`: a session keeps only its
//! most recent finished handover, and requests answered `closed` or `disabled` store nothing, so
//! those are counted by the metrics only.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{Handover, Session, State};
use crate::store::{DynamoStore, StoreResult, WaitStat};

/// Which handovers count: requested in `[since, until)`, of one queue if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub queue: Option<String>,
}

/// Whole seconds: count, nearest-rank p50 and p90, mean (rounded), max.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seconds {
    pub count: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub mean: Option<u64>,
    pub max: Option<u64>,
}

impl Seconds {
    fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let n = values.len();
        if n == 0 {
            return Seconds::default();
        }
        // Nearest rank: the smallest value with at least p% of the values at or below it.
        let rank = |p: usize| values[(p * n).div_ceil(100).max(1) - 1];
        let sum: u64 = values.iter().sum();
        let count = n as u64;
        Seconds {
            count,
            p50: Some(rank(50)),
            p90: Some(rank(90)),
            mean: Some((sum + count / 2) / count),
            max: values.last().copied(),
        }
    }
}

/// A count with its breakdown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub total: u64,
    pub by: BTreeMap<String, u64>,
}

impl Breakdown {
    fn add(&mut self, key: &str) {
        self.total += 1;
        *self.by.entry(key.to_owned()).or_default() += 1;
    }
}

/// One day of a queue's joins, from the `WAIT#` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDay {
    pub queue: String,
    pub day: NaiveDate,
    pub joins: u64,
    pub mean_wait_seconds: u64,
}

/// The figures for one bot and period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub bot_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Handovers opened (requested and accepted by a provider) in the period, by trigger.
    pub opened: Breakdown,
    pub by_provider: BTreeMap<String, u64>,
    pub by_queue: BTreeMap<String, u64>,
    /// Of those, how many an agent joined, and after how long.
    pub agent_joined: u64,
    pub time_to_agent: Seconds,
    /// Ended before any agent joined, by end reason.
    pub abandoned: Breakdown,
    /// How long users who gave up or timed out had waited.
    pub abandoned_after: Seconds,
    /// Ended, by end reason; and how long they lasted from request to end.
    pub ended: Breakdown,
    pub duration: Seconds,
    /// Still open now.
    pub waiting_now: u64,
    pub with_agent_now: u64,
    /// Time to join per queue and day (the last 3 days are kept).
    pub queue_days: Vec<QueueDay>,
    pub notes: Vec<String>,
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}

/// Computes the figures from session states and wait statistics (pure).
pub fn compute(bot_id: &str, period: &Period, sessions: &[Session], waits: &[WaitStat]) -> Stats {
    let in_period = |h: &Handover| {
        h.requested_at >= period.since
            && h.requested_at < period.until
            && period.queue.as_ref().is_none_or(|q| *q == h.queue)
    };
    let mut opened = Breakdown::default();
    let (mut by_provider, mut by_queue) = (BTreeMap::new(), BTreeMap::new());
    let (mut joined, mut abandoned_after, mut durations) = (Vec::new(), Vec::new(), Vec::new());
    let (mut abandoned, mut ended) = (Breakdown::default(), Breakdown::default());
    let (mut waiting_now, mut with_agent_now) = (0, 0);
    for s in sessions.iter().filter(|s| s.bot_id == bot_id) {
        let current = s.handover.as_ref().map(|h| (h, true));
        let last = s.last_handover.as_ref().map(|h| (h, false));
        for (h, open) in [current, last].into_iter().flatten().filter(|(h, _)| in_period(h)) {
            opened.add(h.trigger.as_str());
            *by_provider.entry(h.provider.clone()).or_default() += 1;
            *by_queue.entry(h.queue.clone()).or_default() += 1;
            if let Some(j) = h.joined_at {
                joined.push(secs(h.requested_at, j));
            }
            if open {
                match s.state {
                    State::Waiting => waiting_now += 1,
                    State::Agent => with_agent_now += 1,
                    State::Bot => {}
                }
            }
            if let (Some(reason), Some(end)) = (h.end_reason, h.ended_at) {
                ended.add(reason.as_str());
                durations.push(secs(h.requested_at, end));
                if h.joined_at.is_none() {
                    abandoned.add(reason.as_str());
                    abandoned_after.push(secs(h.requested_at, end));
                }
            }
        }
    }
    let first_day = period.since.date_naive();
    let last_day = period.until.date_naive();
    let mut queue_days: Vec<QueueDay> = waits
        .iter()
        .filter(|w| w.day >= first_day && w.day <= last_day)
        .filter(|w| period.queue.as_ref().is_none_or(|q| *q == w.queue))
        .map(|w| QueueDay {
            queue: w.queue.clone(),
            day: w.day,
            joins: w.joins,
            mean_wait_seconds: (w.wait_seconds + w.joins / 2).checked_div(w.joins).unwrap_or(0),
        })
        .collect();
    queue_days.sort_by(|a, b| (&a.queue, a.day).cmp(&(&b.queue, b.day)));
    Stats {
        bot_id: bot_id.to_owned(),
        since: period.since,
        until: period.until,
        queue: period.queue.clone(),
        opened,
        by_provider,
        by_queue,
        agent_joined: joined.len() as u64,
        time_to_agent: Seconds::of(joined),
        abandoned,
        abandoned_after: Seconds::of(abandoned_after),
        ended,
        duration: Seconds::of(durations),
        waiting_now,
        with_agent_now,
        queue_days,
        notes: vec![
            "each session keeps only its most recent finished handover: earlier ones of the same session are not counted".into(),
            "requests answered closed or disabled store nothing: see the HandoverClosed and HandoverDisabled metrics".into(),
        ],
    }
}

/// Reads what [`compute`] needs from the table and computes the figures.
pub async fn load(store: &DynamoStore, bot_id: &str, period: &Period) -> StoreResult<Stats> {
    let sessions = store.bot_sessions(bot_id).await?;
    let waits = store.wait_stats(bot_id).await?;
    Ok(compute(bot_id, period, &sessions, &waits))
}

/// `1h 2m 3s`, `4m 0s`, `12s`, or `-` when there is nothing to show.
pub fn human(seconds: Option<u64>) -> String {
    let Some(s) = seconds else { return "-".into() };
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, sec) => format!("{h}h {m}m {sec}s"),
    }
}

fn breakdown(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn timing(s: &Seconds) -> String {
    format!(
        "p50 {}, p90 {}, mean {}, max {} (n={})",
        human(s.p50),
        human(s.p90),
        human(s.mean),
        human(s.max),
        s.count
    )
}

fn percent(part: u64, whole: u64) -> String {
    (part * 100 + whole / 2)
        .checked_div(whole)
        .map_or_else(|| "-".into(), |p| format!("{p}%"))
}

/// The figures as a plain-text table.
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    let queue = s.queue.as_deref().map(|q| format!(", queue {q}")).unwrap_or_default();
    out.push_str(&format!(
        "bot {}{queue}: handovers requested from {} to {}\n\n",
        s.bot_id,
        s.since.format("%Y-%m-%d %H:%M"),
        s.until.format("%Y-%m-%d %H:%M UTC")
    ));
    let rows: Vec<(String, String, String)> = vec![
        ("opened".into(), s.opened.total.to_string(), breakdown(&s.opened.by)),
        ("  by provider".into(), String::new(), breakdown(&s.by_provider)),
        ("  by queue".into(), String::new(), breakdown(&s.by_queue)),
        (
            "agent joined".into(),
            s.agent_joined.to_string(),
            format!("{} of opened", percent(s.agent_joined, s.opened.total)),
        ),
        ("time to agent".into(), String::new(), timing(&s.time_to_agent)),
        (
            "abandoned while waiting".into(),
            s.abandoned.total.to_string(),
            breakdown(&s.abandoned.by),
        ),
        ("  after waiting".into(), String::new(), timing(&s.abandoned_after)),
        ("ended".into(), s.ended.total.to_string(), breakdown(&s.ended.by)),
        ("handover duration".into(), String::new(), timing(&s.duration)),
        ("waiting now".into(), s.waiting_now.to_string(), String::new()),
        ("with an agent now".into(), s.with_agent_now.to_string(), String::new()),
    ];
    for (label, n, detail) in rows {
        out.push_str(format!("{label:<24} {n:>6}  {detail}").trim_end());
        out.push('\n');
    }
    if !s.queue_days.is_empty() {
        out.push_str("\nqueue                    day         joins  mean wait\n");
        for d in &s.queue_days {
            out.push_str(&format!(
                "{:<24} {} {:>6}  {}\n",
                d.queue,
                d.day,
                d.joins,
                human(Some(d.mean_wait_seconds))
            ));
        }
    }
    out.push('\n');
    for n in &s.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// Reads `--since`: a duration back from `now` (`90m`, `24h`, `7d`), a date (`2026-11-25`,
/// midnight UTC) or an RFC 3339 time.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Some(unit) = t.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd'))
        && let Ok(n) = t[..t.len() - 1].parse::<i64>()
    {
        let d = match unit {
            'm' => chrono::Duration::try_minutes(n),
            'h' => chrono::Duration::try_hours(n),
            _ => chrono::Duration::try_days(n),
        };
        return d
            .filter(|d| *d >= chrono::Duration::zero())
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("--since {t:?} is out of range"));
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.to_utc())
        .map_err(|_| format!("--since {t:?}: use 90m, 24h, 7d, a date (2026-11-25) or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Seconds::of(vec![60, 10, 30, 20, 50, 40, 70, 80, 90, 100]);
        assert_eq!(
            (s.p50, s.p90, s.mean, s.max, s.count),
            (Some(50), Some(90), Some(55), Some(100), 10)
        );
        let one = Seconds::of(vec![7]);
        assert_eq!((one.p50, one.p90), (Some(7), Some(7)));
        assert_eq!(Seconds::of(vec![]), Seconds::default());
    }

    #[test]
    fn since_accepts_durations_dates_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
        assert_eq!(
            parse_since("90m", now).unwrap().to_rfc3339(),
            "2026-11-25T10:30:00+00:00"
        );
        assert_eq!(
            parse_since("7d", now).unwrap().to_rfc3339(),
            "2026-11-18T12:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-20", now).unwrap().to_rfc3339(),
            "2026-11-20T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-25T09:30:00+01:00", now).unwrap().to_rfc3339(),
            "2026-11-25T08:30:00+00:00"
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("-3h", now).is_err());
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Some(12)), "12s");
        assert_eq!(human(Some(240)), "4m 0s");
        assert_eq!(human(Some(3723)), "1h 2m 3s");
        assert_eq!(human(None), "-");
    }
}
