//! Identifiers, one type per kind of id, so the type says which id a function wants: our own `ItemRef` (the UUID
//! foreign keys use) is not Plaid's `PlaidItemId` (what URLs and webhooks carry), though both are text.
//!
//! Each is a transparent `String` newtype: serialized as the bare string, described as a string in the API's
//! schema. None derefs to `str`, so one kind of id never passes silently where another is expected; `as_str()`
//! is the explicit way out.

use std::borrow::Borrow;
use std::fmt;

macro_rules! define_ids {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets a map keyed by this id be looked up with a `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        /// A string in the API's schema. A field of a `ToSchema` struct would name it as a component of its own;
        /// `#[schema(value_type = String)]` on the field keeps the document exactly as with a `String`.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <String as utoipa::PartialSchema>::schema()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

define_ids! {
    /// A user (`User::id`).
    UserId;
    /// Our own id of an Item (`Item::id`, a UUID): what foreign keys (`item_ref` columns) hold.
    ItemRef;
    /// Plaid's item_id (`Item::item_id`): what URLs, webhooks and jobs carry.
    PlaidItemId;
    /// Plaid's account_id.
    AccountId;
    /// Plaid's transaction_id.
    TransactionId;
    /// A job of the durable queue (or a balance refresh job).
    JobId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_bare_strings() {
        let id = PlaidItemId::from("item-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"item-1\"");
        assert_eq!(serde_json::from_str::<PlaidItemId>("\"item-1\"").unwrap(), id);
        assert_eq!(id.to_string(), "item-1");
        assert_eq!(id, "item-1");
    }

    /// With `value_type`, an id field is described exactly as the `String` field it replaced.
    #[test]
    fn id_fields_have_the_schema_of_string_fields() {
        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        struct Text {
            /// Doc.
            a: String,
            b: Option<String>,
        }
        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        struct Ids {
            /// Doc.
            #[schema(value_type = String)]
            a: AccountId,
            #[schema(value_type = Option<String>)]
            b: Option<JobId>,
        }
        let schema = |s| serde_json::to_string(&s).unwrap();
        assert_eq!(schema(<Text as utoipa::PartialSchema>::schema()), schema(<Ids as utoipa::PartialSchema>::schema()));
    }
}
