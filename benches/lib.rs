//! Helpers shared by the benches in `benches/benches/`.

/// A current-thread tokio runtime with time enabled, as the benches drive futures on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}
