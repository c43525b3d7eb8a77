//! Workspace-level integration tests live in `tests/tests/*.rs`; this library is empty on purpose.
