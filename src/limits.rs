//! The bounds on everything the operator writes. CCE's answers can be of any size and hold
//! any characters; a status or an Event never does. docs/operations.md lists these bounds.

use std::borrow::Cow;

/// Tasks mirrored into `status.tasks`; the rest are counted in the Synced condition.
pub const MAX_TASKS: usize = 64;
/// Lines mirrored into `status.lines`.
pub const MAX_LINES: usize = 128;
/// Bytes of any one string mirrored from CCE (ids, phases, versions, times kept raw).
pub const MAX_FIELD_BYTES: usize = 256;
/// Bytes of a condition's message: room for IAM's encoded authorization message, half of
/// what the API server accepts.
pub const CONDITION_MESSAGE_BYTES: usize = 16 * 1024;
/// Bytes of an Event's note: the most events.k8s.io/v1 accepts.
pub const EVENT_NOTE_BYTES: usize = 1024;
/// Bytes of an Event's action and reason: the most events.k8s.io/v1 accepts.
pub const EVENT_LABEL_BYTES: usize = 128;
/// Pre-check findings kept per task, the most severe first; the rest are counted.
pub const MAX_FINDINGS: usize = 10;
/// Bytes of a finding's message, a pre-check's or the cluster's message, a snapshot message.
pub const FINDING_MESSAGE_BYTES: usize = 300;
/// Error codes kept per finding.
pub const MAX_ERROR_CODES: usize = 4;
/// Failed snapshot items whose message is kept.
pub const MAX_SNAPSHOT_MESSAGES: usize = 5;
/// Finished tasks whose diagnosis one reconcile reads (each read is a CCE request).
pub const MAX_DIAGNOSED_TASKS: usize = 4;
/// Clusters kept of one ListClusters answer (CCE does not page it); the rest are counted.
/// A project's cluster quota is far below this.
pub const MAX_CLUSTERS: usize = 2_000;
/// Events one reconcile publishes; more transitions than this become one summary Event.
pub const MAX_EVENTS_PER_RECONCILE: usize = 5;

/// Marks where text was cut.
const ELLIPSIS: char = '…';

/// `raw` made safe to show in a terminal and bounded to `max_bytes`: each control
/// character (escape sequences start with one) and each bidirectional override is replaced
/// by U+FFFD, and the text is cut at a character boundary with an ellipsis. Borrowed when
/// nothing needed changing, which is the common case.
pub fn clean(raw: &str, max_bytes: usize) -> Cow<'_, str> {
    let safe = if raw.chars().any(is_unsafe) {
        Cow::Owned(
            raw.chars()
                .map(|c| {
                    if is_unsafe(c) {
                        char::REPLACEMENT_CHARACTER
                    } else {
                        c
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    if safe.len() <= max_bytes {
        return safe;
    }
    let room = max_bytes.saturating_sub(ELLIPSIS.len_utf8());
    let cut = (0..=room)
        .rev()
        .find(|&i| safe.is_char_boundary(i))
        .unwrap_or(0);
    let mut cut_text = safe[..cut].to_string();
    if ELLIPSIS.len_utf8() <= max_bytes {
        cut_text.push(ELLIPSIS);
    }
    Cow::Owned(cut_text)
}

/// Whether [`clean`] changes `raw`.
pub fn needs_cleaning(raw: &str, max_bytes: usize) -> bool {
    raw.len() > max_bytes || raw.chars().any(is_unsafe)
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(clean("Running", 16), Cow::Borrowed("Running")));
        assert!(!needs_cleaning("Running", 16));
    }

    #[test]
    fn escape_sequences_and_overrides_are_replaced_visibly() {
        assert_eq!(
            clean("\u{1b}[2Jok\r\n", 64),
            "\u{FFFD}[2Jok\u{FFFD}\u{FFFD}"
        );
        assert_eq!(clean("a\u{202E}b", 64), "a\u{FFFD}b");
        assert!(needs_cleaning("\u{7}", 64));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_an_ellipsis() {
        assert_eq!(clean("abcdefgh", 6), "abc…");
        assert_eq!(clean("ééééé", 6), "é…");
        assert_eq!(clean("abcdef", 2), "");
        assert!(needs_cleaning("abcdefgh", 6));
    }

    proptest! {
        #[test]
        fn cleaned_text_is_bounded_and_has_no_control_characters(
            raw in any::<String>(),
            max in 0usize..600,
        ) {
            let out = clean(&raw, max);
            prop_assert!(out.len() <= max);
            prop_assert!(!out.chars().any(is_unsafe));
            prop_assert_eq!(needs_cleaning(&raw, max), out != raw);
        }
    }
}
