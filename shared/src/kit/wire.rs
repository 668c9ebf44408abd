//! Small wire types several providers need: values they send as a string in one place and a
//! number in another ([`Scalar`]), parts of a body read only when they have the expected shape
//! ([`Lenient`]), and ids operators write quoted or not in a bot document ([`IdSetting`]).

use serde::Deserialize;
use serde::de::IgnoredAny;

/// A value a provider sends as a string or a number (ids, mostly: Engage types resource ids
/// as integers while its examples show strings; Intercom's `admin_assignee_id` is a number,
/// its conversation ids are strings). Anything else (an object, a bool, `null`) reads as no
/// value rather than failing the whole body.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Other(#[allow(dead_code)] IgnoredAny),
}

impl Scalar {
    /// The value as text, trimmed; `None` when blank or not a string or number.
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Text(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Scalar::Number(n) => Some(n.to_string()),
            Scalar::Other(_) => None,
        }
    }
}

/// The text of an optional [`Scalar`] field.
pub fn text(field: &Option<Scalar>) -> Option<String> {
    field.as_ref().and_then(Scalar::text)
}

/// A part of a body read when it has the expected shape and ignored otherwise, so that one
/// odd field (a count where older formats had a list, a number where an object was expected)
/// does not make the whole callback unreadable.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Lenient<T> {
    Read(T),
    Unreadable(#[allow(dead_code)] IgnoredAny),
}

impl<T> Lenient<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Lenient::Read(t) => Some(t),
            Lenient::Unreadable(_) => None,
        }
    }
}

/// The value of an optional lenient field, when it was readable.
pub fn read<T>(field: &Option<Lenient<T>>) -> Option<&T> {
    field.as_ref().and_then(Lenient::get)
}

/// An id setting as an operator writes it in YAML: `12345` or `"12345"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IdSetting {
    Text(String),
    Number(u64),
}

impl IdSetting {
    /// The id as text, trimmed (possibly empty: the caller says whether that is allowed).
    pub fn into_string(self) -> String {
        match self {
            IdSetting::Text(s) => s.trim().to_owned(),
            IdSetting::Number(n) => n.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        id: Option<Scalar>,
    }

    fn id_of(v: serde_json::Value) -> Option<String> {
        text(&serde_json::from_value::<Body>(v).unwrap().id)
    }

    #[test]
    fn strings_and_numbers_are_ids_and_anything_else_is_none() {
        assert_eq!(id_of(json!({"id": " abc "})).as_deref(), Some("abc"));
        assert_eq!(id_of(json!({"id": 42})).as_deref(), Some("42"));
        assert_eq!(id_of(json!({"id": "  "})), None);
        assert_eq!(id_of(json!({"id": null})), None);
        assert_eq!(id_of(json!({"id": {"nested": 1}})), None);
        assert_eq!(id_of(json!({"id": true})), None);
        assert_eq!(id_of(json!({})), None);
    }

    #[test]
    fn a_lenient_part_of_another_shape_is_unreadable_not_an_error() {
        #[derive(Debug, Deserialize)]
        struct Person {
            name: String,
        }
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            people: Option<Lenient<Vec<Lenient<Person>>>>,
        }
        let names = |v: serde_json::Value| -> Option<Vec<Option<String>>> {
            let doc: Doc = serde_json::from_value(v).unwrap();
            read(&doc.people).map(|list| list.iter().map(|p| p.get().map(|p| p.name.clone())).collect())
        };
        assert_eq!(
            names(json!({"people": [{"name": "Eva"}, 3]})),
            Some(vec![Some("Eva".to_owned()), None])
        );
        assert_eq!(names(json!({"people": 3})), None, "a count, not a list");
        assert_eq!(names(json!({})), None);
    }

    #[test]
    fn id_settings_may_be_quoted_or_not() {
        let read = |v| serde_json::from_value::<IdSetting>(v).unwrap().into_string();
        assert_eq!(read(json!(900002)), "900002");
        assert_eq!(read(json!(" 900002 ")), "900002");
        assert!(serde_json::from_value::<IdSetting>(json!(-1)).is_err());
    }
}
