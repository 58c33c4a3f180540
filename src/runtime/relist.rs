//! Re-lists that update the watch cache in place.
//!
//! kube-runtime's reflector fills a second map during every list and swaps it in when the
//! list is complete, so while the API server re-lists the watches (after it expired the
//! watch as "too old resource version") the operator holds every cached watch twice. That
//! is the largest moment of its memory at a large fleet. After the first list, this adapter
//! hands each listed watch to the cache as an update and, once the list is complete, deletes
//! what the list no longer holds: one copy throughout, and what a re-list finds is served at
//! once instead of at its end. The first list passes unchanged, so the cache still becomes
//! ready when it completes.

use std::collections::HashSet;
use std::hash::Hash;

use futures::{Stream, StreamExt, stream};
use kube::runtime::reflector::{Lookup, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

type Item<K> = Result<Event<K>, watcher::Error>;

/// Rewrites the re-lists of `events`; `cache` is the store the events are reflected into.
pub fn in_place<K, S>(events: S, cache: Store<K>) -> impl Stream<Item = Item<K>>
where
    S: Stream<Item = Item<K>>,
    K: Lookup + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let mut relist = Relist::default();
    events.flat_map(move |event| stream::iter(relist.rewrite(event, &cache)))
}

struct Relist<K: Lookup>
where
    K::DynamicType: Eq + Hash,
{
    listed_once: bool,
    /// What the re-list in progress has delivered so far.
    seen: Option<HashSet<ObjectRef<K>>>,
}

impl<K: Lookup> Default for Relist<K>
where
    K::DynamicType: Eq + Hash,
{
    fn default() -> Self {
        Self {
            listed_once: false,
            seen: None,
        }
    }
}

impl<K> Relist<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    fn rewrite(&mut self, event: Item<K>, cache: &Store<K>) -> Vec<Item<K>> {
        let event = match event {
            Ok(event) => event,
            Err(e) => return vec![Err(e)],
        };
        if !self.listed_once {
            self.listed_once = matches!(event, Event::InitDone);
            return vec![Ok(event)];
        }
        match event {
            // A list that starts again (it failed midway) starts counting again.
            Event::Init => {
                self.seen = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(watch) => {
                if let Some(seen) = &mut self.seen {
                    seen.insert(key_of(&watch));
                }
                vec![Ok(Event::Apply(watch))]
            }
            Event::InitDone => {
                let Some(seen) = self.seen.take() else {
                    return Vec::new();
                };
                cache
                    .state()
                    .into_iter()
                    .filter(|watch| !seen.contains(&key_of(watch)))
                    .map(|gone| Ok(Event::Delete(K::clone(&gone))))
                    .collect()
            }
            other => vec![Ok(other)],
        }
    }
}

/// Name and namespace only: the uid and resourceVersion take no part in the key.
fn key_of<K>(watch: &K) -> ObjectRef<K>
where
    K: Lookup,
    K::DynamicType: Default,
{
    let mut key = ObjectRef::from_obj(watch);
    key.extra = Default::default();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::{WatchStreamExt, reflector};

    fn map(name: &str, version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team-a".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn list(names: &[(&str, &str)]) -> Vec<Item<ConfigMap>> {
        let mut events = vec![Ok(Event::Init)];
        events.extend(names.iter().map(|(n, v)| Ok(Event::InitApply(map(n, v)))));
        events.push(Ok(Event::InitDone));
        events
    }

    fn cached(store: &Store<ConfigMap>) -> Vec<(String, String)> {
        let mut all: Vec<_> = store
            .state()
            .iter()
            .map(|m| {
                (
                    m.metadata.name.clone().unwrap_or_default(),
                    m.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        all.sort();
        all
    }

    /// Runs `events` through the adapter into a store; returns the store and, for each event
    /// that came out, the event and what the store held once it had been reflected.
    async fn reflect(events: Vec<Item<ConfigMap>>) -> (Store<ConfigMap>, Vec<String>, Vec<Held>) {
        let (reader, writer) = reflector::store();
        let seen = reader.clone();
        let trace: Vec<(String, Held)> = in_place(stream::iter(events), reader.clone())
            .reflect(writer)
            .map_ok(|event| {
                let said = match event {
                    Event::Init => "init".to_string(),
                    Event::InitApply(m) => format!("list {}", m.metadata.name.unwrap_or_default()),
                    Event::InitDone => "done".to_string(),
                    Event::Apply(m) => format!("apply {}", m.metadata.name.unwrap_or_default()),
                    Event::Delete(m) => format!("delete {}", m.metadata.name.unwrap_or_default()),
                };
                (said, cached(&seen))
            })
            .try_collect()
            .await
            .expect("no errors");
        let (out, held) = trace.into_iter().unzip();
        (reader, out, held)
    }

    type Held = Vec<(String, String)>;

    fn pairs(held: &[(&str, &str)]) -> Held {
        held.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn the_first_list_fills_the_cache_as_the_reflector_does() {
        let (store, out, held) = reflect(list(&[("a", "1"), ("b", "2")])).await;
        assert_eq!(out, ["init", "list a", "list b", "done"]);
        // kube-runtime's reflector shows the first list whole, at its end.
        assert_eq!(held[2], pairs(&[]));
        assert_eq!(held[3], pairs(&[("a", "1"), ("b", "2")]));
        assert!(store.wait_until_ready().await.is_ok());
    }

    #[tokio::test]
    async fn a_relist_updates_in_place_and_deletes_what_it_no_longer_lists() {
        let mut events = list(&[("a", "1"), ("b", "2"), ("c", "3")]);
        events.extend(list(&[("a", "1"), ("c", "7"), ("d", "8")]));

        let (store, out, held) = reflect(events).await;

        assert_eq!(
            out,
            [
                "init", "list a", "list b", "list c", "done", //
                "apply a", "apply c", "apply d", "delete b",
            ]
        );
        // Each listed watch replaces its cached copy as it arrives: the cache never holds
        // a second copy of it, and serves the new version before the list ends.
        assert_eq!(held[6], pairs(&[("a", "1"), ("b", "2"), ("c", "7")]));
        assert_eq!(
            held[7],
            pairs(&[("a", "1"), ("b", "2"), ("c", "7"), ("d", "8")])
        );
        assert_eq!(cached(&store), pairs(&[("a", "1"), ("c", "7"), ("d", "8")]));
    }

    #[tokio::test]
    async fn a_relist_that_starts_over_deletes_only_what_its_last_attempt_missed() {
        let mut events = list(&[("a", "1"), ("b", "2")]);
        // A re-list that fails after its first page, then one that completes.
        events.push(Ok(Event::Init));
        events.push(Ok(Event::InitApply(map("b", "5"))));
        events.extend(list(&[("a", "6")]));

        let (store, out, _) = reflect(events).await;

        assert_eq!(
            out,
            [
                "init", "list a", "list b", "done", //
                "apply b", "apply a", "delete b",
            ]
        );
        assert_eq!(cached(&store), pairs(&[("a", "6")]));
    }

    #[tokio::test]
    async fn watch_events_and_errors_pass_unchanged() {
        let mut events = list(&[("a", "1")]);
        events.push(Ok(Event::Apply(map("b", "2"))));
        events.push(Ok(Event::Delete(map("a", "1"))));
        let (store, out, _) = reflect(events).await;
        assert_eq!(out, ["init", "list a", "done", "apply b", "delete a"]);
        assert_eq!(cached(&store), pairs(&[("b", "2")]));

        let (reader, _writer) = reflector::store::<ConfigMap>();
        let failed = watcher::Error::NoResourceVersion;
        let out: Vec<_> = in_place(stream::iter(vec![Err(failed)]), reader)
            .collect()
            .await;
        assert!(matches!(out[..], [Err(watcher::Error::NoResourceVersion)]));
    }
}
