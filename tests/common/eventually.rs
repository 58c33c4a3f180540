//! The one poll-until loop of the tests and the benchmark.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often a probe asks the API server: often enough for a test, light enough on two cores.
pub const KUBE_POLL: Duration = Duration::from_millis(250);
/// How often a probe asks the simulator, which is local and cheap to ask.
pub const SIM_POLL: Duration = Duration::from_millis(50);

/// Asks `probe` every `every` until it answers `Ok`; after `within`, the error names `what`
/// and what the probe saw last (its `Err`), so a timeout says where things stood.
pub async fn within<T, E, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T, String>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(done) => return Ok(done),
            Err(seen) if Instant::now() > deadline => {
                return Err(format!(
                    "{what}: not reached within {}s; last seen: {seen}",
                    within.as_secs_f64()
                ));
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`within`] for a test: a timeout fails it.
pub async fn eventually<T, E, F, Fut>(what: &str, within: Duration, every: Duration, probe: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    self::within(what, within, every, probe)
        .await
        .unwrap_or_else(|timeout| panic!("{timeout}"))
}
