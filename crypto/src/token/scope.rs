//! Scopes: which part of an instance a token covers, and when one scope
//! contains another.
//!
//! Containment is mostly syntactic; the one exception — an artifact inside a
//! collection — depends on the node's database, which this crate cannot see,
//! so it is asked through [`ScopeResolver`].

use std::fmt;
use std::str::FromStr;

use crate::error::{TokenError, clip};

/// Longest record uid.
pub const MAX_UID_LEN: usize = 64;
/// Longest registry name.
pub const MAX_REGISTRY_LEN: usize = 32;

/// A record uid: 1..=64 base62 characters (`[0-9A-Za-z]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(String);

impl Uid {
    /// Validates `uid`.
    pub fn new(uid: impl Into<String>) -> Result<Uid, TokenError> {
        let uid = uid.into();
        check_uid(&uid).map_err(|reason| TokenError::ParseScope {
            input: clip(&uid),
            reason: reason.into(),
        })?;
        Ok(Uid(uid))
    }

    /// The uid text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registry (table) name: 1..=32 of `[a-z_]`, e.g. `artifact`, `ulabel`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryName(String);

impl RegistryName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<RegistryName, TokenError> {
        let name = name.into();
        check_registry(&name).map_err(|reason| TokenError::ParseScope {
            input: clip(&name),
            reason: reason.into(),
        })?;
        Ok(RegistryName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegistryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn check_uid(uid: &str) -> Result<(), &'static str> {
    if uid.is_empty() || uid.len() > MAX_UID_LEN {
        return Err("a uid is 1 to 64 characters");
    }
    if !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("a uid is base62: only 0-9, A-Z, a-z");
    }
    Ok(())
}

pub(crate) fn check_registry(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_REGISTRY_LEN {
        return Err("a registry name is 1 to 32 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err("a registry name has only a-z and _");
    }
    Ok(())
}

/// What a token covers. Containment ([`Scope::covers`]) is a partial
/// order that may need the database, so `Scope` deliberately has no `Ord`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole instance.
    Instance,
    /// One collection (and, through the resolver, its artifacts).
    Collection(Uid),
    /// One artifact.
    Artifact(Uid),
    /// One registry (table); `artifact` and `collection` cover every record in them.
    Registry(RegistryName),
}

/// Scope kind bytes of the binary form.
pub(crate) mod kind {
    pub const INSTANCE: u8 = 1;
    pub const COLLECTION: u8 = 2;
    pub const ARTIFACT: u8 = 3;
    pub const REGISTRY: u8 = 4;
}

const KINDS_HELP: &str =
    "valid scopes are `instance`, `collection:<uid>`, `artifact:<uid>`, `registry:<name>`";

impl Scope {
    /// Shorthand for `Scope::Collection(Uid::new(uid)?)`.
    pub fn collection(uid: &str) -> Result<Scope, TokenError> {
        Ok(Scope::Collection(Uid::new(uid)?))
    }

    /// Shorthand for `Scope::Artifact(Uid::new(uid)?)`.
    pub fn artifact(uid: &str) -> Result<Scope, TokenError> {
        Ok(Scope::Artifact(Uid::new(uid)?))
    }

    /// Shorthand for `Scope::Registry(RegistryName::new(name)?)`.
    pub fn registry(name: &str) -> Result<Scope, TokenError> {
        Ok(Scope::Registry(RegistryName::new(name)?))
    }

    /// Whether a token scoped to `self` may act on `other`.
    ///
    /// `Instance` covers everything; `registry:artifact` covers every
    /// artifact and `registry:collection` every collection; a collection
    /// covers itself and the artifacts `resolver` says it contains; any other
    /// scope covers only itself.
    pub fn covers(&self, other: &Scope, resolver: &dyn ScopeResolver) -> bool {
        match (self, other) {
            (Scope::Instance, _) => true,
            (Scope::Registry(r), Scope::Artifact(_)) if r.as_str() == "artifact" => true,
            (Scope::Registry(r), Scope::Collection(_)) if r.as_str() == "collection" => true,
            (Scope::Registry(a), Scope::Registry(b)) => a == b,
            (Scope::Collection(c), Scope::Collection(d)) => c == d,
            (Scope::Collection(c), Scope::Artifact(a)) => resolver.collection_contains(c, a),
            (Scope::Artifact(a), Scope::Artifact(b)) => a == b,
            _ => false,
        }
    }

    /// Whether a delegation from `self` to `child` is a syntactic narrowing.
    ///
    /// As [`Scope::covers`], except that a collection may be narrowed to any
    /// artifact: membership is unknown offline and is checked against the
    /// node's resolver when the token is verified.
    pub fn may_delegate_to(&self, child: &Scope) -> bool {
        self.covers(child, &AnyMembership)
    }

    /// Kind byte of the binary form.
    pub(crate) fn kind_byte(&self) -> u8 {
        match self {
            Scope::Instance => kind::INSTANCE,
            Scope::Collection(_) => kind::COLLECTION,
            Scope::Artifact(_) => kind::ARTIFACT,
            Scope::Registry(_) => kind::REGISTRY,
        }
    }

    /// Argument text of the binary form (empty for `Instance`).
    pub(crate) fn argument(&self) -> &str {
        match self {
            Scope::Instance => "",
            Scope::Collection(u) | Scope::Artifact(u) => u.as_str(),
            Scope::Registry(r) => r.as_str(),
        }
    }

    /// Builds a scope from the binary form's kind byte and argument.
    /// `Err(None)`: unknown kind; `Err(Some(reason))`: bad argument.
    pub(crate) fn from_parts(kind_byte: u8, arg: &str) -> Result<Scope, Option<&'static str>> {
        match kind_byte {
            kind::INSTANCE if arg.is_empty() => Ok(Scope::Instance),
            kind::INSTANCE => Err(Some("`instance` takes no argument")),
            kind::COLLECTION => check_uid(arg)
                .map(|()| Scope::Collection(Uid(arg.to_owned())))
                .map_err(Some),
            kind::ARTIFACT => check_uid(arg)
                .map(|()| Scope::Artifact(Uid(arg.to_owned())))
                .map_err(Some),
            kind::REGISTRY => check_registry(arg)
                .map(|()| Scope::Registry(RegistryName(arg.to_owned())))
                .map_err(Some),
            _ => Err(None),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Instance => f.write_str("instance"),
            Scope::Collection(u) => write!(f, "collection:{u}"),
            Scope::Artifact(u) => write!(f, "artifact:{u}"),
            Scope::Registry(r) => write!(f, "registry:{r}"),
        }
    }
}

impl FromStr for Scope {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| TokenError::ParseScope {
            input: clip(s),
            reason,
        };
        let (kind_name, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let kind_byte = match kind_name {
            "instance" => kind::INSTANCE,
            "collection" => kind::COLLECTION,
            "artifact" => kind::ARTIFACT,
            "registry" => kind::REGISTRY,
            _ => return Err(err(format!("unknown scope kind; {KINDS_HELP}"))),
        };
        match (kind_byte, arg) {
            (kind::INSTANCE, Some(_)) => Err(err("`instance` takes no argument".into())),
            (kind::INSTANCE, None) => Ok(Scope::Instance),
            (_, None) => Err(err(format!("missing argument: write `{kind_name}:<…>`"))),
            (_, Some(arg)) => Scope::from_parts(kind_byte, arg)
                .map_err(|reason| err(reason.unwrap_or(KINDS_HELP).into())),
        }
    }
}

/// Answers the one containment question that needs the database: does
/// collection `collection` contain artifact `artifact`? The node implements
/// it over its collection–artifact link table.
pub trait ScopeResolver {
    /// Whether `artifact` is a member of `collection`.
    fn collection_contains(&self, collection: &Uid, artifact: &Uid) -> bool;
}

/// A resolver that knows no memberships, for offline checks: a collection
/// then covers only itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMembership;

impl ScopeResolver for NoMembership {
    fn collection_contains(&self, _: &Uid, _: &Uid) -> bool {
        false
    }
}

/// Assumes every artifact is in every collection: the syntactic check at
/// delegation time, and offline checks away from the root.
pub(crate) struct AnyMembership;

impl ScopeResolver for AnyMembership {
    fn collection_contains(&self, _: &Uid, _: &Uid) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Members;
    impl ScopeResolver for Members {
        fn collection_contains(&self, c: &Uid, a: &Uid) -> bool {
            c.as_str() == "C1" && a.as_str() == "A1"
        }
    }

    fn s(text: &str) -> Scope {
        text.parse().unwrap()
    }

    #[test]
    fn text_round_trip() {
        for text in [
            "instance",
            "collection:abc123XYZ",
            "artifact:0",
            "registry:ulabel",
            "registry:run_input",
        ] {
            assert_eq!(s(text).to_string(), text);
        }
    }

    #[test]
    fn bad_scopes_say_why() {
        let cases = [
            (
                "project:x",
                "unknown scope kind; valid scopes are `instance`",
            ),
            ("instance:x", "takes no argument"),
            ("collection", "missing argument"),
            ("collection:", "1 to 64"),
            ("artifact:ab-c", "base62"),
            ("registry:Artifact", "a-z and _"),
            ("registry:abcdefghijklmnopqrstuvwxyzabcdefg", "1 to 32"),
        ];
        for (input, expected) in cases {
            let err = input.parse::<Scope>().unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
        assert!(Scope::artifact(&"a".repeat(64)).is_ok());
        assert!(Scope::artifact(&"a".repeat(65)).is_err());
    }

    #[test]
    fn containment() {
        let r = &Members;
        assert!(s("instance").covers(&s("artifact:A9"), r));
        assert!(s("instance").covers(&s("instance"), r));
        assert!(s("registry:artifact").covers(&s("artifact:A9"), r));
        assert!(!s("registry:artifact").covers(&s("collection:C1"), r));
        assert!(s("registry:collection").covers(&s("collection:C1"), r));
        assert!(s("registry:ulabel").covers(&s("registry:ulabel"), r));
        assert!(!s("registry:ulabel").covers(&s("registry:artifact"), r));
        assert!(s("collection:C1").covers(&s("collection:C1"), r));
        assert!(s("collection:C1").covers(&s("artifact:A1"), r));
        assert!(!s("collection:C1").covers(&s("artifact:A2"), r));
        assert!(!s("collection:C1").covers(&s("artifact:A1"), &NoMembership));
        assert!(!s("collection:C1").covers(&s("instance"), r));
        assert!(s("artifact:A1").covers(&s("artifact:A1"), r));
        assert!(!s("artifact:A1").covers(&s("collection:C1"), r));
        assert!(!s("artifact:A1").covers(&s("instance"), r));
        // Delegation is syntactic: any artifact may come from a collection.
        assert!(s("collection:C1").may_delegate_to(&s("artifact:A2")));
        assert!(!s("artifact:A1").may_delegate_to(&s("collection:C1")));
    }
}
