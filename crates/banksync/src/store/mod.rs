//! Persistence: placeholder, being written.
