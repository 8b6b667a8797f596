//! A small macro for Plaid's string enums.
//!
//! Plaid treats new enum values as a non-breaking change, so every string enum in this crate is
//! open: the values we know get a variant and anything else is kept verbatim in `Other(String)`.
//! When Plaid's own value is literally `"other"` (account type, payment channel), it is
//! represented as `Other("other")` rather than as a separate variant, so that parsing stays a
//! function: the same string always produces the same value.

/// Declares an open string enum with `as_str`, `Display`, `From<&str>`, `From<String>`,
/// `Serialize` and `Deserialize`. Unknown strings become `Other(String)`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the crate does not know, kept exactly as received.
            Other(String),
        }

        impl $name {
            /// The value exactly as Plaid spells it on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )*
                    Self::Other(other) => other.as_str(),
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $( $wire => Self::$variant, )*
                    _ => Self::Other(value),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

pub(crate) use string_enum;

#[cfg(test)]
mod tests {
    string_enum! {
        enum Colour {
            Red => "red",
            LightBlue => "light blue",
        }
    }

    #[test]
    fn known_values_round_trip() {
        let c: Colour = serde_json::from_str("\"light blue\"").unwrap();
        assert_eq!(c, Colour::LightBlue);
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"light blue\"");
        assert_eq!(Colour::Red.to_string(), "red");
    }

    #[test]
    fn unknown_values_are_kept_verbatim() {
        let c: Colour = serde_json::from_str("\"ultraviolet\"").unwrap();
        assert_eq!(c, Colour::Other("ultraviolet".into()));
        assert_eq!(c.as_str(), "ultraviolet");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"ultraviolet\"");
        assert_eq!(Colour::from(String::from("red")), Colour::Red);
    }
}
