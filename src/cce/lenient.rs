//! Readers for fields whose JSON type CCE has changed between releases or sends
//! inconsistently: a value of an unexpected type reads as absent instead of failing the
//! whole answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A bool sent as `true`/`false` or as a string of either (any case, surrounding spaces).
pub(crate) fn bool_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("true") {
                Some(true)
            } else if s.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    })
}

/// A text field that is sometimes sent as a number (`"45.00"` or `45`): kept as text.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A map of text (labels, annotations): entries whose value is not text are left out, and
/// anything but an object reads as empty, so one odd annotation does not lose the cluster.
pub(crate) fn text_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// A list that may be `null`: read as empty.
pub(crate) fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A list that may come as a list, as one object (Huawei's ListUpgradeWorkFlows page shows
/// `items` as a single object) or as `null`.
pub(crate) fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(deserializer)? {
        Some(OneOrMany::Many(list)) => list,
        Some(OneOrMany::One(item)) => vec![item],
        None => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "bool_or_string")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "string_or_number")]
        text: Option<String>,
        #[serde(default, deserialize_with = "null_as_empty")]
        list: Vec<u8>,
        #[serde(default, deserialize_with = "text_map")]
        map: BTreeMap<String, String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Items {
        #[serde(default, deserialize_with = "one_or_many")]
        items: Vec<Item>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Item {
        id: String,
    }

    #[test]
    fn items_come_as_a_list_one_object_null_or_nothing() {
        let read = |json: &str| -> Vec<String> {
            let items: Items = serde_json::from_str(json).expect("readable");
            items.items.into_iter().map(|i| i.id).collect()
        };
        assert_eq!(read(r#"{"items": [{"id": "a"}, {"id": "b"}]}"#), ["a", "b"]);
        assert_eq!(read(r#"{"items": {"id": "a"}}"#), ["a"]);
        assert!(read(r#"{"items": null}"#).is_empty());
        assert!(read(r#"{"items": []}"#).is_empty());
        assert!(read("{}").is_empty());
        assert!(serde_json::from_str::<Items>(r#"{"items": "a"}"#).is_err());
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).expect(json)
    }

    #[test]
    fn bools_come_as_bools_or_strings_and_anything_else_is_absent() {
        for (json, want) in [
            (r#"{"flag":true}"#, Some(true)),
            (r#"{"flag":"false"}"#, Some(false)),
            (r#"{"flag":" TRUE "}"#, Some(true)),
            (r#"{"flag":"yes"}"#, None),
            (r#"{"flag":1}"#, None),
            (r#"{"flag":null}"#, None),
            (r#"{}"#, None),
        ] {
            assert_eq!(probe(json).flag, want, "{json}");
        }
    }

    #[test]
    fn text_may_come_as_a_number() {
        assert_eq!(probe(r#"{"text":"45.00"}"#).text.as_deref(), Some("45.00"));
        assert_eq!(probe(r#"{"text":45}"#).text.as_deref(), Some("45"));
        assert_eq!(probe(r#"{"text":[1]}"#).text, None);
    }

    #[test]
    fn a_text_map_keeps_its_text_entries_only() {
        let map = probe(r#"{"map":{"a":"1","b":2,"c":null,"d":{"x":"y"},"e":""}}"#).map;
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [("a".into(), "1".into()), ("e".into(), String::new())]
        );
        assert!(probe(r#"{"map":["a"]}"#).map.is_empty());
        assert!(probe(r#"{"map":null}"#).map.is_empty());
    }

    #[test]
    fn a_null_list_is_empty() {
        assert!(probe(r#"{"list":null}"#).list.is_empty());
        assert_eq!(probe(r#"{"list":[1,2]}"#).list, [1, 2]);
    }
}
