//! Ids the simulator makes: the copy `i` of a scenario's id template (`{i}`, `{i:W}`) and
//! UUID-shaped ids derived from a seed, so that runs repeat. A leaf: it uses no other
//! simulator module. Pure.

use sha2::{Digest, Sha256};

/// A UUID-shaped id derived from `seed`: deterministic, so runs are repeatable.
pub fn derived_uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Replaces `{i}` by `index` and `{i:W}` by `index` zero-padded to `W` digits.
pub fn expand_id(template: &str, index: u64) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(pos) = rest.find("{i") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 2..];
        let Some(close) = tail.find('}') else {
            return Err(format!("unclosed placeholder in {template:?}"));
        };
        match &tail[..close] {
            "" => out.push_str(&index.to_string()),
            spec => {
                let width = spec
                    .strip_prefix(':')
                    .and_then(|w| w.parse::<usize>().ok())
                    .filter(|w| (1..=32).contains(w));
                let Some(width) = width else {
                    return Err(format!(
                        "placeholder {{i{spec}}} in {template:?}: use {{i}} or {{i:WIDTH}}"
                    ));
                };
                out.push_str(&format!("{index:0width$}"));
            }
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `id` differs between copies (holds an `{i}` placeholder).
pub fn is_template(id: &str) -> bool {
    id.contains("{i")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_expand_with_and_without_padding() {
        assert_eq!(expand_id("wf-{i}", 7).expect("ok"), "wf-7");
        assert_eq!(
            expand_id("f1000000-0000-4000-8000-{i:12}", 42).expect("ok"),
            "f1000000-0000-4000-8000-000000000042"
        );
        assert_eq!(expand_id("a{i}b{i:3}", 5).expect("ok"), "a5b005");
        assert_eq!(expand_id("plain", 5).expect("ok"), "plain");
        assert!(expand_id("x{i", 1).is_err());
        assert!(expand_id("x{id}", 1).is_err());
        assert!(expand_id("x{i:0}", 1).is_err());
        assert!(expand_id("x{i:99}", 1).is_err());
    }

    #[test]
    fn derived_ids_are_stable_version_4_uuids() {
        let id = derived_uuid("node/worker-2");
        assert_eq!(id, derived_uuid("node/worker-2"));
        assert_ne!(id, derived_uuid("node/worker-3"));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
