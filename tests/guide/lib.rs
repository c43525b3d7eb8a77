//! The user guide, `docs/guide/*.md`, as doctests: one module per page, whose doc is the page.
//!
//! `cargo test -p guide-tests --doc` compiles and runs every Rust snippet of the guide, so a
//! snippet that no longer matches the code fails the build instead of misleading a reader.
//! Blocks that are not Rust are tagged with their language (`toml`, `text`, `sh`) and are not
//! run.

#[doc = include_str!("../../docs/guide/README.md")]
pub mod readme {}

#[doc = include_str!("../../docs/guide/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../../docs/guide/backoff.md")]
pub mod backoff {}

#[doc = include_str!("../../docs/guide/checkpoint.md")]
pub mod checkpoint {}

#[doc = include_str!("../../docs/guide/degradation.md")]
pub mod degradation {}

#[doc = include_str!("../../docs/guide/healing.md")]
pub mod healing {}

#[doc = include_str!("../../docs/guide/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../../docs/guide/observability.md")]
pub mod observability {}

#[doc = include_str!("../../docs/guide/custom-strategy.md")]
pub mod custom_strategy {}

#[doc = include_str!("../../docs/guide/operations.md")]
pub mod operations {}

#[doc = include_str!("../../docs/guide/simulation.md")]
pub mod simulation {}

#[doc = include_str!("../../docs/guide/several-instances.md")]
pub mod several_instances {}

#[doc = include_str!("../../docs/guide/the-spec.md")]
pub mod the_spec {}

#[doc = include_str!("../../docs/guide/breakers.md")]
pub mod breakers {}

#[doc = include_str!("../../docs/guide/learned-order.md")]
pub mod learned_order {}

#[doc = include_str!("../../docs/guide/workflows.md")]
pub mod workflows {}
