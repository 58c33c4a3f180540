//! Huawei Cloud CCE API: wire models, timestamps, request signing and the HTTP client.

pub mod model;
pub mod sign;
pub mod time;
