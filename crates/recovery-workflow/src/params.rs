//! Reading a step's parameters, with errors that name the parameter.

use std::time::Duration;

/// A step's parameters (the keys of its TOML table other than `name`, `action`,
/// `on_failure` and `required`), checked against the keys an action takes: what a step
/// constructor of a [`StepRegistry`](crate::StepRegistry) uses to refuse a misspelt parameter
/// and read the others with errors that name them.
///
/// ```
/// use recovery_workflow::Params;
///
/// let table: toml::Table = toml::from_str("component = \"agent_protocol\"\nattempts = 3").unwrap();
/// let p = Params::new(&table, &["component", "attempts", "force"]).unwrap();
/// assert_eq!(p.required_str("component").unwrap(), "agent_protocol");
/// assert_eq!(p.optional_u32("attempts").unwrap(), Some(3));
/// assert_eq!(p.optional_bool("force").unwrap(), None);
///
/// let typo: toml::Table = toml::from_str("componnet = \"agent_protocol\"").unwrap();
/// assert_eq!(Params::new(&typo, &["component"]).unwrap_err(),
///            "unknown parameter `componnet` (expected: component)");
/// let empty = toml::Table::new();
/// let p = Params::new(&empty, &["component"]).unwrap();
/// assert_eq!(p.required_str("component").unwrap_err(), "missing parameter `component`");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    table: &'a toml::Table,
}

impl<'a> Params<'a> {
    /// Check that `table` has no key outside `expected`.
    ///
    /// # Errors
    ///
    /// ``unknown parameter `x` (expected: a, b)`` for the first other key, in key order.
    pub fn new(table: &'a toml::Table, expected: &[&str]) -> Result<Self, String> {
        match table.keys().find(|k| !expected.contains(&k.as_str())) {
            None => Ok(Self { table }),
            Some(unknown) if expected.is_empty() => Err(format!(
                "unknown parameter `{unknown}` (this action takes no parameters)"
            )),
            Some(unknown) => Err(format!(
                "unknown parameter `{unknown}` (expected: {})",
                expected.join(", ")
            )),
        }
    }

    /// The raw value of `key`, if present.
    pub fn value(&self, key: &str) -> Option<&'a toml::Value> {
        self.table.get(key)
    }

    /// The string `key`, which must be present.
    pub fn required_str(&self, key: &str) -> Result<&'a str, String> {
        self.optional_str(key)?
            .ok_or_else(|| format!("missing parameter `{key}`"))
    }

    /// The string `key`, if present.
    pub fn optional_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// The boolean `key`, if present.
    pub fn optional_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "a boolean", other)),
        }
    }

    /// The integer `key`, if present.
    pub fn optional_i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(other) => Err(wrong_type(key, "an integer", other)),
        }
    }

    /// The non-negative integer `key` (at most `u32::MAX`), if present.
    pub fn optional_u32(&self, key: &str) -> Result<Option<u32>, String> {
        match self.optional_i64(key)? {
            None => Ok(None),
            Some(i) => u32::try_from(i)
                .map(Some)
                .map_err(|_| format!("parameter `{key}` must be in 0..={}, not {i}", u32::MAX)),
        }
    }

    /// The number `key` (an integer or a float, finite), if present.
    pub fn optional_f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(toml::Value::Float(f)) if f.is_finite() => Ok(Some(*f)),
            Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
            Some(other) => Err(wrong_type(key, "a finite number", other)),
        }
    }

    /// The duration `key`, written as humantime does (`"500ms"`, `"2s"`, `"1m 30s"`), if
    /// present.
    pub fn optional_duration(&self, key: &str) -> Result<Option<Duration>, String> {
        match self.value(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => humantime::parse_duration(s)
                .map(Some)
                .map_err(|e| format!("parameter `{key}`: `{s}` is not a duration: {e}")),
            Some(other) => Err(wrong_type(key, "a duration such as \"2s\"", other)),
        }
    }
}

fn wrong_type(key: &str, expected: &str, got: &toml::Value) -> String {
    format!(
        "parameter `{key}` must be {expected}, not {} `{got}`",
        got.type_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn wrong_types_are_named() {
        let t = table("a = 1\nb = \"x\"\nc = -1\nd = \"soon\"");
        let p = Params::new(&t, &["a", "b", "c", "d"]).unwrap();
        assert_eq!(
            p.optional_str("a").unwrap_err(),
            "parameter `a` must be a string, not integer `1`"
        );
        assert!(
            p.optional_u32("b")
                .unwrap_err()
                .contains("must be an integer")
        );
        assert!(p.optional_u32("c").unwrap_err().contains("not -1"));
        assert!(
            p.optional_duration("d")
                .unwrap_err()
                .contains("`soon` is not a duration")
        );
    }

    #[test]
    fn a_table_for_an_action_without_parameters_is_refused() {
        let t = table("x = 1");
        assert_eq!(
            Params::new(&t, &[]).unwrap_err(),
            "unknown parameter `x` (this action takes no parameters)"
        );
        assert!(Params::new(&toml::Table::new(), &[]).is_ok());
    }

    #[test]
    fn durations_and_numbers_parse() {
        let t = table("i = \"1m 30s\"\nf = 0.5\nn = 2\nb = true");
        let p = Params::new(&t, &["i", "f", "n", "b"]).unwrap();
        assert_eq!(
            p.optional_duration("i").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(p.optional_f64("f").unwrap(), Some(0.5));
        assert_eq!(p.optional_f64("n").unwrap(), Some(2.0));
        assert_eq!(p.optional_i64("n").unwrap(), Some(2));
        assert_eq!(p.optional_bool("b").unwrap(), Some(true));
    }
}
