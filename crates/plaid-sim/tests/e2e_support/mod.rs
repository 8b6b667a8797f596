//! Support for `client_e2e.rs`: a simulator on loopback with a `PlaidClient` pointed at it
//! ([`harness`]), the reference sync loop ([`sync_loop`]), an attempt-recording
//! [`observer`], a loopback webhook [`receiver`] and JWT [`forgery`] for negative cases.

pub mod forgery;
pub mod harness;
pub mod observer;
pub mod receiver;
pub mod sync_loop;
