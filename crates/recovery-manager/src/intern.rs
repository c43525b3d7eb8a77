//! Strategy ids, interned for the life of the process, so that labelling a metric or recording
//! an attempt copies a pointer and touches no reference count.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

static IDS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The interned copy of `id`: allocated once per distinct id and never freed (a few bytes per
/// strategy id; registering the same id again reuses it).
pub(crate) fn intern(id: &str) -> &'static str {
    let mut ids = IDS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(interned) = ids.get(id) {
        return interned;
    }
    let interned: &'static str = Box::leak(Box::from(id));
    ids.insert(interned);
    interned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_distinct_id() {
        let a = intern("intern-test-a");
        let b = intern(&String::from("intern-test-a"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(intern("intern-test-b"), "intern-test-b");
    }
}
