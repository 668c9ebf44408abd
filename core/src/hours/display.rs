//! Wording of "when do we open again" for dialogs.
//!
//! Written as small tables rather than pulled from a locale library: four
//! languages, one phrase shape, and the bot's own tone matters more than
//! CLDR completeness.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    En,
    Nl,
    Fr,
    De,
}

impl Language {
    /// Users' languages arrive as locales ("nl-BE", "fr_BE"); only the
    /// language part changes the wording, and an unsupported one must still
    /// produce a sentence.
    fn from_tag(tag: &str) -> Language {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "nl" => Language::Nl,
            "fr" => Language::Fr,
            "de" => Language::De,
            _ => Language::En,
        }
    }

    fn weekday(self, index: usize) -> &'static str {
        const NAMES: [[&str; 7]; 4] = [
            [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ],
            [
                "maandag",
                "dinsdag",
                "woensdag",
                "donderdag",
                "vrijdag",
                "zaterdag",
                "zondag",
            ],
            ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
            [
                "Montag",
                "Dienstag",
                "Mittwoch",
                "Donnerstag",
                "Freitag",
                "Samstag",
                "Sonntag",
            ],
        ];
        NAMES[self as usize][index]
    }

    fn month(self, index: usize) -> &'static str {
        const NAMES: [[&str; 12]; 4] = [
            [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ],
            [
                "januari",
                "februari",
                "maart",
                "april",
                "mei",
                "juni",
                "juli",
                "augustus",
                "september",
                "oktober",
                "november",
                "december",
            ],
            [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ],
            [
                "Januar",
                "Februar",
                "März",
                "April",
                "Mai",
                "Juni",
                "Juli",
                "August",
                "September",
                "Oktober",
                "November",
                "Dezember",
            ],
        ];
        NAMES[self as usize][index]
    }
}

/// Renders an instant for a user: weekday + time in the bot's time zone, in the user's language
/// (en, nl, fr, de; any other falls back to en). Relative words for today/tomorrow.
///
/// Days are counted in the bot's time zone because that is where the office
/// is: "tomorrow" must mean the office's tomorrow. Beyond six days a weekday
/// alone would be ambiguous, so the date is added.
pub fn describe_opening(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz, language: &str) -> String {
    let lang = Language::from_tag(language);
    let at = at.with_timezone(&tz);
    let days_ahead = (at.date_naive() - now.with_timezone(&tz).date_naive()).num_days();
    let time = at.format("%H:%M");
    let weekday = lang.weekday(at.weekday().num_days_from_monday() as usize);
    let month = lang.month(at.month0() as usize);
    let day = at.day();

    match (lang, days_ahead) {
        (Language::En, 0) => format!("today at {time}"),
        (Language::En, 1) => format!("tomorrow at {time}"),
        (Language::En, 2..=6) => format!("on {weekday} at {time}"),
        (Language::En, _) => format!("on {weekday} {day} {month} at {time}"),
        (Language::Nl, 0) => format!("vandaag om {time}"),
        (Language::Nl, 1) => format!("morgen om {time}"),
        (Language::Nl, 2..=6) => format!("op {weekday} om {time}"),
        (Language::Nl, _) => format!("op {weekday} {day} {month} om {time}"),
        (Language::Fr, 0) => format!("aujourd'hui à {time}"),
        (Language::Fr, 1) => format!("demain à {time}"),
        (Language::Fr, 2..=6) => format!("{weekday} à {time}"),
        (Language::Fr, _) if day == 1 => format!("{weekday} 1er {month} à {time}"),
        (Language::Fr, _) => format!("{weekday} {day} {month} à {time}"),
        (Language::De, 0) => format!("heute um {time}"),
        (Language::De, 1) => format!("morgen um {time}"),
        (Language::De, 2..=6) => format!("am {weekday} um {time}"),
        (Language::De, _) => format!("am {weekday}, {day}. {month} um {time}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use chrono_tz::Europe::Brussels;

    fn brussels(local: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        Brussels.from_local_datetime(&naive).single().unwrap().to_utc()
    }

    /// Tuesday.
    const NOW: &str = "2026-12-22 10:00";

    #[test]
    fn describes_today_tomorrow_weekday_and_far_date_in_each_language() {
        let cases = [
            ("en", "2026-12-22 13:00", "today at 13:00"),
            ("en", "2026-12-23 08:30", "tomorrow at 08:30"),
            ("en", "2026-12-28 08:30", "on Monday at 08:30"),
            ("en", "2027-01-04 08:30", "on Monday 4 January at 08:30"),
            ("nl", "2026-12-22 13:00", "vandaag om 13:00"),
            ("nl", "2026-12-23 08:30", "morgen om 08:30"),
            ("nl", "2026-12-28 08:30", "op maandag om 08:30"),
            ("nl", "2027-01-04 08:30", "op maandag 4 januari om 08:30"),
            ("fr", "2026-12-22 13:00", "aujourd'hui à 13:00"),
            ("fr", "2026-12-23 08:30", "demain à 08:30"),
            ("fr", "2026-12-28 08:30", "lundi à 08:30"),
            ("fr", "2027-01-04 08:30", "lundi 4 janvier à 08:30"),
            ("de", "2026-12-22 13:00", "heute um 13:00"),
            ("de", "2026-12-23 08:30", "morgen um 08:30"),
            ("de", "2026-12-28 08:30", "am Montag um 08:30"),
            ("de", "2027-01-04 08:30", "am Montag, 4. Januar um 08:30"),
        ];
        for (lang, at, expected) in cases {
            let got = describe_opening(brussels(at), brussels(NOW), Brussels, lang);
            assert_eq!(got, expected, "{lang} {at}");
        }
    }

    #[test]
    fn seven_days_ahead_names_the_date_because_the_weekday_alone_is_ambiguous() {
        let cases = [
            ("en", "2026-12-28 08:30", "on Monday at 08:30"),
            ("en", "2026-12-29 08:30", "on Tuesday 29 December at 08:30"),
            ("fr", "2027-01-01 09:00", "vendredi 1er janvier à 09:00"),
            ("fr", "2027-02-12 09:00", "vendredi 12 février à 09:00"),
            ("de", "2027-03-01 09:00", "am Montag, 1. März um 09:00"),
            ("nl", "2027-03-01 09:00", "op maandag 1 maart om 09:00"),
        ];
        for (lang, at, expected) in cases {
            let got = describe_opening(brussels(at), brussels(NOW), Brussels, lang);
            assert_eq!(got, expected, "{lang} {at}");
        }
    }

    #[test]
    fn locale_tags_use_their_language_and_unknown_languages_fall_back_to_english() {
        let cases = [
            ("nl-BE", "morgen om 08:30"),
            ("fr_BE", "demain à 08:30"),
            ("DE-de", "morgen um 08:30"),
            ("EN-GB", "tomorrow at 08:30"),
            ("es", "tomorrow at 08:30"),
            ("", "tomorrow at 08:30"),
            ("  nl ", "morgen om 08:30"),
        ];
        for (lang, expected) in cases {
            let got = describe_opening(brussels("2026-12-23 08:30"), brussels(NOW), Brussels, lang);
            assert_eq!(got, expected, "{lang:?}");
        }
    }

    #[test]
    fn days_are_counted_in_the_bot_time_zone_not_in_utc() {
        // 23:30 in Brussels is still 22:30 on the same UTC date; 00:30 the
        // next local day must read as tomorrow.
        let now = Utc.with_ymd_and_hms(2026, 12, 22, 22, 30, 0).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 22, 23, 30, 0).unwrap();
        assert_eq!(describe_opening(at, now, Brussels, "en"), "tomorrow at 00:30");
        assert_eq!(describe_opening(at, now, chrono_tz::UTC, "en"), "today at 23:30");
    }

    #[test]
    fn time_is_shown_in_the_bot_time_zone_across_dst() {
        // Summer time: 06:30 UTC is 08:30 in Brussels.
        let now = brussels("2027-03-26 18:00");
        let at = Utc.with_ymd_and_hms(2027, 3, 30, 6, 30, 0).unwrap();
        assert_eq!(describe_opening(at, now, Brussels, "en"), "on Tuesday at 08:30");
    }
}
