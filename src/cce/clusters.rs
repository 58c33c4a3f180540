//! ListClusters and ListAutopilotClusters (cce-clusters.md §1–§2): every cluster of a
//! project in one answer, without paging. Decoded leniently and bounded: an item that is
//! not a readable cluster is counted rather than failing the whole list, and items beyond
//! [`MAX_CLUSTERS`] are counted without being kept. Pure.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::diagnostics::cluster::Cluster;
use crate::limits::MAX_CLUSTERS;

/// ListClusters' answer. `items` absent, `null` or a lone object are read as none or one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub items: Items,
}

/// The clusters kept, and how many were not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Items {
    /// At most [`MAX_CLUSTERS`], in CCE's order.
    pub kept: Vec<Cluster>,
    /// Items beyond the first [`MAX_CLUSTERS`] clusters, counted unread.
    pub more: usize,
    /// Items that were not a cluster object (a number, a cluster whose fields have the
    /// wrong JSON types).
    pub unreadable: usize,
}

impl ClusterList {
    pub fn clusters(&self) -> &[Cluster] {
        &self.items.kept
    }
}

/// Serialised as the plain list of the clusters kept, the shape CCE sent.
impl Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.kept.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl ItemsVisitor {
    fn one(items: &mut Items, value: serde_json::Value) {
        if items.kept.len() >= MAX_CLUSTERS {
            items.more += 1;
            return;
        }
        match value {
            serde_json::Value::Object(_) => match Cluster::deserialize(value) {
                Ok(cluster) => items.kept.push(cluster),
                Err(_) => items.unreadable += 1,
            },
            _ => items.unreadable += 1,
        }
    }
}

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of clusters")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut items = Items::default();
        loop {
            // Past the cap the rest is only counted, never held.
            if items.kept.len() >= MAX_CLUSTERS {
                match seq.next_element::<IgnoredAny>()? {
                    Some(_) => items.more += 1,
                    None => break,
                }
                continue;
            }
            match seq.next_element::<serde_json::Value>()? {
                Some(value) => ItemsVisitor::one(&mut items, value),
                None => break,
            }
        }
        Ok(items)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Items, A::Error> {
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let mut items = Items::default();
        ItemsVisitor::one(&mut items, value);
        Ok(items)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Items, E> {
        Ok(Items::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Items, E> {
        Ok(Items::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::diagnostics::cluster::ClusterPhase;
    use crate::cce::version::ClusterVersion;

    /// cce-clusters.md §7, trimmed to what differs between the two clusters.
    const EXAMPLE: &str = r#"{"kind":"Cluster","apiVersion":"v3","items":[
      {"kind":"Cluster","apiVersion":"v3",
       "metadata":{"name":"prod-a","uid":"6b1c3f0e","alias":"prod-a",
                   "creationTimestamp":"2025-03-04 02:11:47.418736 +0000 UTC",
                   "timezone":"Asia/Shanghai"},
       "spec":{"category":"CCE","type":"VirtualMachine","flavor":"cce.s2.small",
               "version":"v1.29","platformVersion":"cce.13.10","legacyVersion":"v1.29.13-r10",
               "hostNetwork":{"vpc":"v","subnet":"s","SecurityGroup":"g"},
               "containerNetwork":{"mode":"vpc-router","cidr":"172.16.0.0/16"},
               "serviceNetwork":{"IPv4CIDR":"10.247.0.0/16"},"billingMode":0},
       "status":{"phase":"Available","endpoints":[{"url":"https://192.168.0.61:5443","type":"Internal"}]}},
      {"kind":"Cluster","apiVersion":"v3",
       "metadata":{"name":"batch-b","uid":"c3d9a7b2","labels":{"FeatureGates":"x"}},
       "spec":{"category":"Turbo","version":"v1.28","platformVersion":"cce.15.30",
               "eniNetwork":{"subnets":[{"subnetID":"7c2f"}]}},
       "status":{"phase":"Upgrading"}}]}"#;

    #[test]
    fn the_documented_example_reads_with_names_phases_and_versions() {
        let list: ClusterList = serde_json::from_str(EXAMPLE).expect("parse");
        let [a, b] = list.clusters() else {
            panic!("two clusters: {list:?}")
        };
        assert_eq!((a.name(), a.uid()), (Some("prod-a"), Some("6b1c3f0e")));
        assert_eq!(a.phase(), Some(&ClusterPhase::Available));
        assert_eq!(a.version(), ClusterVersion::parse("v1.29.13-r10"));
        let network = a.spec.as_ref().and_then(|s| s.host_network.as_ref());
        assert_eq!(network.and_then(|n| n.security_group.as_deref()), Some("g"));
        assert_eq!(b.phase(), Some(&ClusterPhase::Upgrading));
        assert_eq!(b.version(), ClusterVersion::parse("v1.28.15-r30"));
        assert_eq!(
            b.metadata.as_ref().map(|m| m.labels.len()),
            Some(1),
            "labels kept"
        );
        assert_eq!((list.items.more, list.items.unreadable), (0, 0));
        let back = serde_json::to_value(&list).expect("json");
        assert_eq!(
            back["items"][1]["spec"]["eniNetwork"]["subnets"][0]["subnetID"],
            "7c2f"
        );
    }

    #[test]
    fn absent_null_or_lone_items_read_as_none_or_one() {
        for (json, want) in [
            (r#"{"kind":"Cluster"}"#, 0),
            (r#"{"items":null}"#, 0),
            (r#"{"items":[]}"#, 0),
            (r#"{"items":{"metadata":{"uid":"c1"}}}"#, 1),
        ] {
            let list: ClusterList = serde_json::from_str(json).expect(json);
            assert_eq!(list.clusters().len(), want, "{json}");
        }
        assert!(serde_json::from_str::<ClusterList>(r#"{"items":"many"}"#).is_err());
    }

    #[test]
    fn an_unreadable_item_is_counted_and_the_others_kept() {
        let list: ClusterList = serde_json::from_str(
            r#"{"items":[7,{"metadata":{"uid":3}},{"metadata":{"uid":"c1"},
                "status":{"phase":"Frozen"}},"x",null]}"#,
        )
        .expect("parse");
        assert_eq!(list.clusters().len(), 1);
        assert_eq!(list.items.unreadable, 4);
        let phase = list.clusters()[0].phase().map(ClusterPhase::as_str);
        assert_eq!(phase, Some("Frozen"), "an unknown phase is kept as text");
    }

    #[test]
    fn clusters_past_the_cap_are_counted_not_kept() {
        let items: Vec<String> = (0..MAX_CLUSTERS + 3)
            .map(|i| format!(r#"{{"metadata":{{"uid":"c{i}"}}}}"#))
            .collect();
        let json = format!(r#"{{"items":[{}]}}"#, items.join(","));
        let list: ClusterList = serde_json::from_str(&json).expect("parse");
        assert_eq!(list.clusters().len(), MAX_CLUSTERS);
        assert_eq!(list.items.more, 3);
        assert_eq!(list.clusters()[0].uid(), Some("c0"));
    }
}
