//! Bounding work by a deadline on the shard's executor.

use std::time::Instant;

/// Runs `fut` until `deadline`; `None` when the deadline came first.
pub async fn until<T>(deadline: Instant, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await
}
