//! `StepRegistry`: turns a step's action kind and parameters into a step.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::StepProblem;
use crate::params::Params;
use crate::step::StepAction;
use crate::steps::{Condition, Verify};

/// Makes a step of one kind from its parameters; `Err` says which parameter is unknown,
/// missing or bad (use [`Params`] to refuse unknown ones and read the others).
pub type StepConstructor<T> =
    dyn Fn(&toml::Table) -> Result<Arc<dyn StepAction<T>>, String> + Send + Sync;

enum Constructor<T: ?Sized> {
    /// The built-in `verify`, which looks its condition up in the registry.
    Verify,
    Custom(Arc<StepConstructor<T>>),
}

/// The step kinds a [`WorkflowSpec`](crate::WorkflowSpec) may name, each with the constructor
/// that turns a step's parameters into a step, and the named conditions `verify` steps check.
///
/// Built in: `verify`, with parameters `condition` (the name of a condition registered with
/// [`condition`](Self::condition)), and optionally `attempts` (at least 1, default 1) and
/// `interval` (a duration such as `"500ms"`, default 0) to check again until it holds (see
/// [`Verify`]).
///
/// ```
/// use std::sync::Arc;
/// use recovery_workflow::{Params, StepAction, StepRegistry, from_fn, StepDone};
/// use recovery_core::{RecoveryContext, SwarmError};
///
/// struct Target { idle: bool }
///
/// let mut registry = StepRegistry::<Target>::new();
/// registry
///     .condition("agents_idle", |t: &Target| if t.idle { Ok("idle".into()) } else { Err("busy".into()) })
///     .register("restart", |params: &toml::Table| {
///         let p = Params::new(params, &["component"])?;
///         let component = p.required_str("component")?.to_owned();
///         let step = from_fn("restart", move |_ctx: RecoveryContext<Target>, _e: SwarmError| {
///             let component = component.clone();
///             async move { Ok(StepDone::new(format!("restarted {component}"))) }
///         });
///         Ok(Arc::new(step) as Arc<dyn StepAction<Target>>)
///     });
/// assert_eq!(registry.kinds(), ["restart", "verify"]);
/// assert_eq!(registry.conditions(), ["agents_idle"]);
/// ```
pub struct StepRegistry<T: ?Sized> {
    constructors: BTreeMap<String, Constructor<T>>,
    conditions: BTreeMap<String, Arc<Condition<T>>>,
}

impl<T: ?Sized + Send + Sync + 'static> Default for StepRegistry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized + Send + Sync + 'static> StepRegistry<T> {
    /// A registry with the built-in `verify` kind and no conditions.
    pub fn new() -> Self {
        let mut constructors = BTreeMap::new();
        constructors.insert("verify".to_owned(), Constructor::Verify);
        Self {
            constructors,
            conditions: BTreeMap::new(),
        }
    }

    /// Make steps of kind `kind` with `constructor`, replacing any constructor of that kind
    /// (also the built-in `verify`).
    pub fn register(
        &mut self,
        kind: impl Into<String>,
        constructor: impl Fn(&toml::Table) -> Result<Arc<dyn StepAction<T>>, String>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.constructors
            .insert(kind.into(), Constructor::Custom(Arc::new(constructor)));
        self
    }

    /// Register the condition `name` for `verify` steps (`condition = "name"`), replacing any
    /// of that name.
    pub fn condition(
        &mut self,
        name: impl Into<String>,
        condition: impl Fn(&T) -> Result<String, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.conditions.insert(name.into(), Arc::new(condition));
        self
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        self.constructors.keys().map(String::as_str).collect()
    }

    /// The registered conditions, sorted.
    pub fn conditions(&self) -> Vec<&str> {
        self.conditions.keys().map(String::as_str).collect()
    }

    /// Make a step of kind `kind` from `params`.
    ///
    /// # Errors
    ///
    /// [`StepProblem::UnknownAction`] for a kind not registered (naming those that are),
    /// [`StepProblem::BadParameters`] with the constructor's message.
    pub fn build_step(
        &self,
        kind: &str,
        params: &toml::Table,
    ) -> Result<Arc<dyn StepAction<T>>, StepProblem> {
        let constructor =
            self.constructors
                .get(kind)
                .ok_or_else(|| StepProblem::UnknownAction {
                    action: kind.to_owned(),
                    known: self.kinds().join(", "),
                })?;
        match constructor {
            Constructor::Verify => self.verify(params),
            Constructor::Custom(make) => make(params),
        }
        .map_err(StepProblem::BadParameters)
    }

    fn verify(&self, params: &toml::Table) -> Result<Arc<dyn StepAction<T>>, String> {
        let p = Params::new(params, &["condition", "attempts", "interval"])?;
        let name = p.required_str("condition")?;
        let attempts = p.optional_u32("attempts")?.unwrap_or(1);
        let interval = p.optional_duration("interval")?.unwrap_or_default();
        if attempts == 0 {
            return Err("parameter `attempts` must be at least 1".to_owned());
        }
        let condition = self.conditions.get(name).ok_or_else(|| {
            if self.conditions.is_empty() {
                format!("unknown condition `{name}` (no conditions are registered)")
            } else {
                format!(
                    "unknown condition `{name}` (known: {})",
                    self.conditions().join(", ")
                )
            }
        })?;
        Ok(Arc::new(
            Verify::from_arc(name, Arc::clone(condition)).with_attempts(attempts, interval),
        ))
    }
}

impl<T: ?Sized + Send + Sync + 'static> fmt::Debug for StepRegistry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepRegistry")
            .field("kinds", &self.kinds())
            .field("conditions", &self.conditions())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn verify_needs_a_known_condition_and_no_other_parameter() {
        let mut registry = StepRegistry::<u8>::new();
        let err = |r: &StepRegistry<u8>, text: &str| match r.build_step("verify", &params(text)) {
            Err(StepProblem::BadParameters(m)) => m,
            other => panic!("expected bad parameters, got {:?}", other.map(|_| ())),
        };
        assert_eq!(
            err(&registry, "condition = \"zero\""),
            "unknown condition `zero` (no conditions are registered)"
        );
        registry.condition("zero", |v: &u8| {
            if *v == 0 {
                Ok("zero".into())
            } else {
                Err(v.to_string())
            }
        });
        registry.condition("any", |_: &u8| Ok("any".into()));
        assert_eq!(
            err(&registry, "condition = \"zer\""),
            "unknown condition `zer` (known: any, zero)"
        );
        assert_eq!(err(&registry, ""), "missing parameter `condition`");
        assert_eq!(
            err(&registry, "condition = \"zero\"\ncondtion = 1"),
            "unknown parameter `condtion` (expected: condition, attempts, interval)"
        );
        assert_eq!(
            err(&registry, "condition = \"zero\"\nattempts = 0"),
            "parameter `attempts` must be at least 1"
        );
        let step = registry
            .build_step(
                "verify",
                &params("condition = \"zero\"\nattempts = 2\ninterval = \"1s\""),
            )
            .unwrap();
        assert_eq!(step.kind(), "verify");
    }

    #[test]
    fn unknown_kinds_name_the_known_ones() {
        let mut registry = StepRegistry::<()>::new();
        registry.register("restart", |_| Err("unused".into()));
        match registry.build_step("restartt", &toml::Table::new()) {
            Err(StepProblem::UnknownAction { action, known }) => {
                assert_eq!(action, "restartt");
                assert_eq!(known, "restart, verify");
            }
            other => panic!("expected unknown action, got {:?}", other.map(|_| ())),
        }
    }
}
