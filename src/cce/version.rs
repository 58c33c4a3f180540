//! CCE's cluster versions and how to compare them (cce-clusters.md §3.2). A cluster's
//! `spec.version` is `vA.B` since 1.21 (`v1.28`) and `vA.B.C-rN` before (`v1.19.16-r20`);
//! `platformVersion` `cce.C.N` and the deprecated `legacyVersion` `vA.B.C-rN` say the rest;
//! a workflow's `clusterVersion` and `targetVersion` are always the long form
//! (`v1.28.15-r30`). Two versions are compared on the parts both carry, so `v1.28` and
//! `v1.28.15-r30` agree, while `v1.28.15-r10` and `v1.28.15-r30` do not. Pure.

use std::cmp::Ordering;
use std::fmt;

/// The first minor version whose `spec.version` CCE writes as `vA.B` only.
const SHORT_FORM_SINCE_MINOR: u32 = 21;

/// A version as far as it was written: `vA.B`, `vA.B.C` or `vA.B.C-rN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterVersion {
    pub major: u32,
    pub minor: u32,
    /// The community patch (`C`), when written.
    pub patch: Option<u32>,
    /// CCE's own patch (`N` of `-rN`), when written.
    pub revision: Option<u32>,
}

impl ClusterVersion {
    /// `vA.B`, `vA.B.C` or `vA.B.C-rN`; the `v` may be missing or upper case, spaces around
    /// are ignored. Anything else (a prefix such as `v1.`, a build suffix) is `None`.
    pub fn parse(text: &str) -> Option<ClusterVersion> {
        let text = text.trim();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let (numbers, revision) = match text.split_once('-') {
            Some((numbers, rev)) => {
                let rev = rev.strip_prefix('r').or_else(|| rev.strip_prefix('R'))?;
                (numbers, Some(number(rev)?))
            }
            None => (text, None),
        };
        let mut parts = numbers.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = match parts.next() {
            Some(text) => Some(number(text)?),
            None => None,
        };
        if parts.next().is_some() || (revision.is_some() && patch.is_none()) {
            return None;
        }
        Some(ClusterVersion {
            major,
            minor,
            patch,
            revision,
        })
    }

    /// The most a cluster says of its version: `legacyVersion` when it reads, else
    /// `version` completed by `platformVersion` (`cce.C.N`) when `version` is `vA.B`, else
    /// `version` alone.
    pub fn of_cluster(
        version: Option<&str>,
        platform_version: Option<&str>,
        legacy_version: Option<&str>,
    ) -> Option<ClusterVersion> {
        if let Some(legacy) = legacy_version.and_then(ClusterVersion::parse) {
            return Some(legacy);
        }
        let short = ClusterVersion::parse(version?)?;
        match (short.patch, platform_version.and_then(platform)) {
            (None, Some((patch, revision))) => Some(ClusterVersion {
                patch: Some(patch),
                revision: Some(revision),
                ..short
            }),
            _ => Some(short),
        }
    }

    /// Compared on the parts both carry (major and minor always are): `Equal` when they
    /// agree, so `v1.28` is neither before nor after `v1.28.15-r30`.
    pub fn compare(&self, other: &ClusterVersion) -> Ordering {
        let common = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => Ordering::Equal,
        };
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(common(self.patch, other.patch))
            .then(common(self.revision, other.revision))
    }

    /// Whether the two agree on every part both carry (`v1.28` and `v1.28.15-r30` do).
    pub fn agrees_with(&self, other: &ClusterVersion) -> bool {
        self.compare(other) == Ordering::Equal
    }

    /// Whether this version starts with `prefix` part by part: `v1.28` is a prefix of
    /// `v1.28.15-r30`, not of `v1.2` or `v1.280`; a prefix more precise than the version
    /// is not one.
    pub fn has_prefix(&self, prefix: &ClusterVersion) -> bool {
        let covers = |mine: Option<u32>, theirs: Option<u32>| match theirs {
            None => true,
            Some(t) => mine == Some(t),
        };
        self.major == prefix.major
            && self.minor == prefix.minor
            && covers(self.patch, prefix.patch)
            && covers(self.revision, prefix.revision)
    }

    /// `vA.B`: the Kubernetes minor release.
    pub fn release(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// How a cluster of this version writes it on the wire: `spec.version` (`vA.B` since
    /// 1.21, the long form before) and `spec.platformVersion` (`cce.C.N`, when both are
    /// known).
    pub fn wire_fields(&self) -> (String, Option<String>) {
        let platform = match (self.patch, self.revision) {
            (Some(p), Some(r)) => Some(format!("cce.{p}.{r}")),
            _ => None,
        };
        let version = if self.minor >= SHORT_FORM_SINCE_MINOR && self.major == 1 {
            self.release()
        } else {
            self.to_string()
        };
        (version, platform)
    }
}

impl fmt::Display for ClusterVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        if let Some(revision) = self.revision {
            write!(f, "-r{revision}")?;
        }
        Ok(())
    }
}

/// Whether a cluster's `spec.version` (`v1.28`) and a workflow's version (`v1.28.15-r30`)
/// name the same version as far as both say; unreadable text agrees only with itself.
pub fn same_version(cluster: &str, workflow: &str) -> bool {
    match (
        ClusterVersion::parse(cluster),
        ClusterVersion::parse(workflow),
    ) {
        (Some(a), Some(b)) => a.agrees_with(&b),
        _ => cluster.trim() == workflow.trim(),
    }
}

/// A number of decimal digits only (no sign, no spaces), bounded to `u32`.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `cce.C.N` → `(C, N)`.
fn platform(text: &str) -> Option<(u32, u32)> {
    let rest = text.trim().strip_prefix("cce.")?;
    let (patch, revision) = rest.split_once('.')?;
    Some((number(patch)?, number(revision)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ClusterVersion {
        ClusterVersion::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn every_documented_shape_parses_and_prints_back() {
        for text in [
            "v1.28",
            "v1.28.15",
            "v1.28.15-r30",
            "v1.19.16-r20",
            "v1.17.9-r0",
        ] {
            assert_eq!(v(text).to_string(), text);
        }
        assert_eq!(v(" V1.29 "), v("v1.29"));
        assert_eq!(v("1.29.13-R10"), v("v1.29.13-r10"));
        for bad in [
            "",
            "v",
            "v1",
            "v1.",
            "v1.28.",
            "v1.28-r3",
            "v1.28.15-x3",
            "v1.28.15-r",
            "v1.2a",
            "v1.28.15.1",
            "v-1.28",
            "v1.28 .1",
            "latest",
            "v99999999999.1",
        ] {
            assert_eq!(ClusterVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_short_spec_version_agrees_with_the_workflows_long_one() {
        assert!(same_version("v1.28", "v1.28.15-r30"));
        assert!(same_version("v1.28.15", "v1.28.15-r30"));
        assert!(!same_version("v1.28.15-r10", "v1.28.15-r30"));
        assert!(!same_version("v1.28", "v1.29.13-r10"));
        assert!(!same_version("v1.2", "v1.28.15-r30"));
        assert!(same_version("odd", " odd"));
        assert!(!same_version("odd", "v1.28"));
    }

    #[test]
    fn versions_order_on_the_parts_both_carry() {
        assert_eq!(v("v1.28").compare(&v("v1.29.13-r10")), Ordering::Less);
        assert_eq!(v("v1.29").compare(&v("v1.28.15-r30")), Ordering::Greater);
        assert_eq!(
            v("v1.28.15-r10").compare(&v("v1.28.15-r30")),
            Ordering::Less
        );
        assert_eq!(v("v1.28.9-r99").compare(&v("v1.28.15-r0")), Ordering::Less);
        assert_eq!(v("v1.28").compare(&v("v1.28.15-r30")), Ordering::Equal);
        assert_eq!(v("v2.0").compare(&v("v1.99")), Ordering::Greater);
    }

    #[test]
    fn a_prefix_matches_part_by_part() {
        assert!(v("v1.28.15-r30").has_prefix(&v("v1.28")));
        assert!(v("v1.28.15-r30").has_prefix(&v("v1.28.15")));
        assert!(v("v1.28").has_prefix(&v("v1.28")));
        assert!(!v("v1.28").has_prefix(&v("v1.28.15")), "more precise");
        assert!(!v("v1.280").has_prefix(&v("v1.28")));
        assert!(!v("v1.28.15-r30").has_prefix(&v("v1.28.1")));
    }

    #[test]
    fn a_cluster_says_its_version_through_three_fields() {
        let full = ClusterVersion::of_cluster(Some("v1.28"), Some("cce.15.30"), None);
        assert_eq!(full, Some(v("v1.28.15-r30")));
        let legacy =
            ClusterVersion::of_cluster(Some("v1.28"), Some("cce.1.0"), Some("v1.28.15-r30"));
        assert_eq!(legacy, Some(v("v1.28.15-r30")), "legacyVersion first");
        let odd_platform = ClusterVersion::of_cluster(Some("v1.28"), Some("cce.x"), None);
        assert_eq!(odd_platform, Some(v("v1.28")));
        let old = ClusterVersion::of_cluster(Some("v1.19.16-r20"), Some("cce.2.0"), None);
        assert_eq!(
            old,
            Some(v("v1.19.16-r20")),
            "a long version is not completed"
        );
        assert_eq!(
            ClusterVersion::of_cluster(None, Some("cce.1.0"), None),
            None
        );
    }

    #[test]
    fn the_wire_uses_the_short_form_from_1_21_on() {
        assert_eq!(
            v("v1.28.15-r30").wire_fields(),
            ("v1.28".to_string(), Some("cce.15.30".to_string()))
        );
        assert_eq!(
            v("v1.19.16-r20").wire_fields(),
            ("v1.19.16-r20".to_string(), Some("cce.16.20".to_string()))
        );
        assert_eq!(v("v1.29").wire_fields(), ("v1.29".to_string(), None));
    }
}
