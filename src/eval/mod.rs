//! Evaluation metrics shared by the tests and `ganfit eval`: landmark NME with yaw bins
//! ([`landmarks`]) and face verification ROC statistics ([`verification`]).

pub mod embedding;
pub mod landmarks;
pub mod shape;
pub mod swd;
pub mod synthetic;
pub mod verification;
