//! Huawei Cloud CCE API: wire models (workflows, the diagnostic reads, the project's clusters), versions, timestamps, request signing, credentials, endpoint
//! policy, errors and the HTTP client.

pub mod client;
pub mod clusters;
pub mod credentials;
pub mod diagnostics;
pub mod endpoint;
pub mod error;
pub mod family;
pub mod iam;
mod lenient;
pub mod model;
pub mod sign;
pub mod time;
pub mod version;

pub use client::{CceClient, ClientConfig, Response, Target};
pub use credentials::{Credentials, CredentialsError};
pub use endpoint::EndpointPolicy;
pub use error::{ApiFailure, CceError};
pub use family::ApiFamily;
