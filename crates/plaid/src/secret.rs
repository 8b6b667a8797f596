//! Secret newtypes: tokens that must never reach a log line.
//!
//! Each type wraps a [`secrecy::SecretString`] (zeroized on drop) and prints as
//! `AccessToken(<redacted>)` in `Debug`. There is deliberately no `Display`: the only way to
//! read the value is [`expose_secret`](AccessToken::expose_secret), which makes every use
//! visible in review. `Serialize` writes the real value because request bodies need it; it
//! exists for that purpose only, so do not serialize these types anywhere else.

use secrecy::{ExposeSecret, SecretString};

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a token value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The token itself. Call this only where the value is put on the wire or into
            /// encrypted storage.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<SecretString> for $name {
            fn from(value: SecretString) -> Self {
                Self(value)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.expose_secret())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_newtype! {
    /// A long-lived Item access token (`access-…`). Grants read access to a user's bank data
    /// until `/item/remove`; store it encrypted and never send it to a browser.
    AccessToken
}

secret_newtype! {
    /// A one-time public token (`public-…`) from Link, valid for 30 minutes. Short-lived, but
    /// whoever exchanges it first gets the access token, so it is treated as a secret too.
    PublicToken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serialize_is_not() {
        let token = AccessToken::new("access-sandbox-123");
        assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
        assert_eq!(token.expose_secret(), "access-sandbox-123");
        assert_eq!(serde_json::to_string(&token).unwrap(), "\"access-sandbox-123\"");
        let back: PublicToken = serde_json::from_str("\"public-sandbox-9\"").unwrap();
        assert_eq!(format!("{back:?}"), "PublicToken(<redacted>)");
        assert_eq!(back.expose_secret(), "public-sandbox-9");
    }
}
