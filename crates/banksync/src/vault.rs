//! Token vault: placeholder, being written.
