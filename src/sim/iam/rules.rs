//! Identity conversion: which rule a verified token's subject falls under, and the
//! identity it becomes. Pure.

use std::collections::BTreeSet;

use super::config::RuleDef;

/// What a token is converted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub user: String,
    pub projects: BTreeSet<String>,
}

/// Whether `subject` matches `pattern`, where `*` stands for any run of characters
/// (none included) and everything else for itself.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole subject must have been the prefix.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The first rule of `provider` whose pattern matches `subject` and whose agency is
/// `agency` (`None`: federation and pod identity, which use rules without one).
pub fn convert(
    rules: &[RuleDef],
    provider: &str,
    subject: &str,
    agency: Option<&str>,
) -> Option<Converted> {
    rules
        .iter()
        .find(|r| {
            r.provider == provider && r.agency.as_deref() == agency && matches(&r.sub, subject)
        })
        .map(|r| Converted {
            user: r.user.clone(),
            projects: r.project_ids.iter().cloned().collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_with_stars() {
        let sa = "system:serviceaccount:team-a:watcher";
        for (pattern, expected) in [
            (sa, true),
            ("system:serviceaccount:team-a:watche", false),
            ("system:serviceaccount:team-a:watcher2", false),
            ("system:serviceaccount:team-a:*", true),
            ("system:serviceaccount:*:watcher", true),
            ("system:serviceaccount:*", true),
            ("*", true),
            ("*:team-b:*", false),
            ("system:*:team-a:*er", true),
            ("system:serviceaccount:team-a:watcher*", true),
            ("*watcher*watcher", false),
            ("", false),
        ] {
            assert_eq!(matches(pattern, sa), expected, "{pattern}");
        }
        assert!(matches("", ""));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
    }

    fn rule(provider: &str, sub: &str, user: &str, agency: Option<&str>) -> RuleDef {
        RuleDef {
            provider: provider.into(),
            sub: sub.into(),
            user: user.into(),
            project_ids: vec![format!("project-of-{user}")],
            agency: agency.map(str::to_string),
        }
    }

    #[test]
    fn the_first_matching_rule_of_the_provider_and_agency_wins() {
        let rules = [
            rule("other", "*", "wrong-provider", None),
            rule("plane", "system:serviceaccount:team-a:*", "team-a", None),
            rule("plane", "*", "anyone", None),
            rule(
                "plane",
                "system:serviceaccount:team-a:*",
                "sts-user",
                Some("ops"),
            ),
        ];
        let sub = "system:serviceaccount:team-a:watcher";
        let c = convert(&rules, "plane", sub, None).expect("converted");
        assert_eq!(c.user, "team-a");
        assert!(c.projects.contains("project-of-team-a"));
        let any = convert(&rules, "plane", "system:serviceaccount:b:x", None).expect("any");
        assert_eq!(any.user, "anyone");
        let sts = convert(&rules, "plane", sub, Some("ops")).expect("sts");
        assert_eq!(sts.user, "sts-user");
        assert_eq!(convert(&rules, "plane", sub, Some("other-agency")), None);
        assert_eq!(convert(&rules, "nobody", sub, None), None);
        assert_eq!(
            convert(&rules[..2], "plane", "system:serviceaccount:b:x", None),
            None
        );
    }
}
