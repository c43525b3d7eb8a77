//! Error patterns: which errors a rule applies to, matched on kinds, never on `Debug` text.

use std::fmt;
use std::str::FromStr;

use recovery_core::{ErrorKind, SwarmError, UnknownErrorKind};

/// Names accepted in a pattern besides the [`ErrorKind`] names, and the kind each stands for.
///
/// `NetworkTimeout` is the spec's example pattern; a network timeout is reported as a
/// [`SwarmError::CommunicationError`], so it is an alias of `CommunicationError`.
pub const KIND_ALIASES: [(&str, ErrorKind); 1] =
    [("NetworkTimeout", ErrorKind::CommunicationError)];

/// Which errors a [`HealingRule`](crate::HealingRule) applies to.
///
/// A rule's `error_pattern` string is parsed into one of these when the rule is added, so a
/// pattern that names no kind is an error then, never a rule that silently never fires.
///
/// # Syntax
///
/// - `"Kind"`: every error of that kind, for example `"CommunicationError"`. `Kind` is an
///   [`ErrorKind`] name as `ErrorKind`'s `Display` writes it (case-sensitive), or an alias from
///   [`KIND_ALIASES`] (`"NetworkTimeout"` means `CommunicationError`).
/// - `"Kind: text"`: errors of that kind whose [`SwarmError::message`] contains `text`, compared
///   without regard to ASCII case. Spaces around the kind and the text are trimmed; the text
///   may itself contain `:`.
///
/// ```
/// use recovery_core::{ErrorKind, SwarmError};
/// use recovery_healing::ErrorPattern;
///
/// let pattern: ErrorPattern = "CommunicationError: timeout".parse().unwrap();
/// assert_eq!(pattern.kind, ErrorKind::CommunicationError);
/// assert!(pattern.matches(&SwarmError::CommunicationError("read Timeout after 5s".into())));
/// assert!(!pattern.matches(&SwarmError::CommunicationError("connection reset".into())));
/// assert!(!pattern.matches(&SwarmError::CoordinationTimeout("timeout".into())));
///
/// let alias: ErrorPattern = "NetworkTimeout".parse().unwrap();
/// assert_eq!(alias.kind, ErrorKind::CommunicationError);
/// assert!("NetworkTimeOut".parse::<ErrorPattern>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorPattern {
    /// The kind of error matched.
    pub kind: ErrorKind,
    /// If set, the error's message must contain this text (ASCII case ignored).
    pub message_contains: Option<String>,
}

impl ErrorPattern {
    /// A pattern matching every error of `kind`.
    pub fn kind(kind: ErrorKind) -> Self {
        Self {
            kind,
            message_contains: None,
        }
    }

    /// Parse the pattern syntax described on [`ErrorPattern`].
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let (kind_part, text_part) = match pattern.split_once(':') {
            Some((kind, text)) => (kind.trim(), Some(text.trim())),
            None => (pattern.trim(), None),
        };
        if kind_part.is_empty() {
            return Err(PatternError::Empty);
        }
        let kind = match KIND_ALIASES.iter().find(|(alias, _)| *alias == kind_part) {
            Some((_, kind)) => *kind,
            None => kind_part.parse::<ErrorKind>()?,
        };
        let message_contains = match text_part {
            None => None,
            Some("") => return Err(PatternError::EmptyText),
            Some(text) => Some(text.to_owned()),
        };
        Ok(Self {
            kind,
            message_contains,
        })
    }

    /// Whether `error` is of this pattern's kind and, if the pattern has a text, its message
    /// contains that text (ASCII case ignored).
    pub fn matches(&self, error: &SwarmError) -> bool {
        if error.kind() != self.kind {
            return false;
        }
        match &self.message_contains {
            None => true,
            Some(text) => error
                .message()
                .to_ascii_lowercase()
                .contains(&text.to_ascii_lowercase()),
        }
    }
}

impl FromStr for ErrorPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ErrorPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message_contains {
            None => write!(f, "{}", self.kind),
            Some(text) => write!(f, "{}: {}", self.kind, text),
        }
    }
}

/// Why an error pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern names no kind.
    #[error("the pattern is empty; expected an error kind such as `CommunicationError`")]
    Empty,
    /// The kind is not an [`ErrorKind`] name nor an alias.
    #[error("{0} (or the alias NetworkTimeout)")]
    UnknownKind(#[from] UnknownErrorKind),
    /// The pattern has a `:` but no text after it.
    #[error("the text after `:` is empty; write `Kind` alone to match every message")]
    EmptyText,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_parses_and_round_trips() {
        for &kind in ErrorKind::ALL {
            let p = ErrorPattern::parse(kind.as_str()).unwrap();
            assert_eq!(p, ErrorPattern::kind(kind));
            assert_eq!(p.to_string().parse::<ErrorPattern>().unwrap(), p);
        }
        let p = ErrorPattern::parse("  Storage :  disk full: sda ").unwrap();
        assert_eq!(p.message_contains.as_deref(), Some("disk full: sda"));
        assert_eq!(p.to_string().parse::<ErrorPattern>().unwrap(), p);
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert_eq!(ErrorPattern::parse(""), Err(PatternError::Empty));
        assert_eq!(ErrorPattern::parse(" : x"), Err(PatternError::Empty));
        assert_eq!(
            ErrorPattern::parse("Storage:  "),
            Err(PatternError::EmptyText)
        );
        let err = ErrorPattern::parse("communicationerror").unwrap_err();
        assert!(matches!(err, PatternError::UnknownKind(_)));
        assert!(err.to_string().contains("communicationerror"));
        assert!(err.to_string().contains("CommunicationError"));
    }
}
