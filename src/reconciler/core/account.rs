//! An account's next status from what its one credential check found and how many watches
//! name it: Ready says whether the credentials were obtained, Synced whether the check
//! could finish. A check that could not finish (IAM unreachable, say) leaves Ready as it
//! was, so one outage does not flip every account's readiness.

use jiff::Timestamp;

use crate::crd::AccountStatus;
use crate::failure::Failure;
use crate::reconciler::core::conditions::{ConditionType, Conditions, Reason};

/// The status after a check: `None` when it is the same as `old`.
pub fn next_account_status(
    old: &AccountStatus,
    generation: Option<i64>,
    watches: u32,
    check: &Result<(), Failure>,
    now: Timestamp,
) -> Option<AccountStatus> {
    let mut conditions = Conditions::new(old.conditions.clone(), generation, now);
    match check {
        Ok(()) => {
            conditions.set(
                ConditionType::Ready,
                true,
                Reason::CredentialsReady,
                "the account's credentials were obtained",
            );
            conditions.set(ConditionType::Synced, true, Reason::Synced, "checked");
        }
        Err(failure) if failure.permanent => {
            let reason = Reason::Failure(failure.category);
            conditions.set(ConditionType::Ready, false, reason, &failure.message);
            conditions.set(ConditionType::Synced, true, Reason::Synced, "checked");
        }
        Err(failure) => {
            let reason = Reason::Failure(failure.category);
            conditions.set(ConditionType::Synced, false, reason, &failure.message);
        }
    }
    let next = AccountStatus {
        observed_generation: generation,
        watches: Some(watches),
        conditions: conditions.into_list(),
    };
    (next != *old).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Category;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("time")
    }

    fn condition<'a>(status: &'a AccountStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_working_account_is_ready_and_counts_its_watches_and_an_unchanged_one_is_not_written() {
        let first = next_account_status(&AccountStatus::default(), Some(1), 3, &Ok(()), at(10))
            .expect("first status");
        assert_eq!(condition(&first, "Ready"), ("True", "CredentialsReady"));
        assert_eq!(condition(&first, "Synced"), ("True", "Synced"));
        assert_eq!(first.watches, Some(3));
        assert_eq!(
            next_account_status(&first, Some(1), 3, &Ok(()), at(20)),
            None
        );
        let more = next_account_status(&first, Some(1), 4, &Ok(()), at(20)).expect("count");
        assert_eq!(more.watches, Some(4));
        assert_eq!(more.conditions, first.conditions);
    }

    #[test]
    fn a_refusal_makes_it_unready_and_an_outage_keeps_the_last_readiness() {
        let ready = next_account_status(&AccountStatus::default(), Some(1), 1, &Ok(()), at(10))
            .expect("ready");
        let outage = Err(Failure::transient(Category::IamUnavailable, "IAM: 503"));
        let during = next_account_status(&ready, Some(1), 1, &outage, at(20)).expect("outage");
        assert_eq!(condition(&during, "Ready"), ("True", "CredentialsReady"));
        assert_eq!(condition(&during, "Synced"), ("False", "IamUnavailable"));
        let refused = Err(Failure::permanent(
            Category::TokenRequestNotGranted,
            "no Role",
        ));
        let after = next_account_status(&during, Some(1), 1, &refused, at(30)).expect("refused");
        assert_eq!(
            condition(&after, "Ready"),
            ("False", "TokenRequestNotGranted")
        );
        assert_eq!(condition(&after, "Synced"), ("True", "Synced"));
    }
}
