//! Evaluation metrics shared by the tests and `ganfit eval`: landmark NME with yaw bins
//! ([`landmarks`]), face verification ROC statistics ([`verification`]) and texture models'
//! reconstruction, completion and SWD ([`texture`]).

pub mod embedding;
pub mod landmarks;
pub mod shape;
pub mod swd;
pub mod synthetic;
#[cfg(not(target_arch = "wasm32"))]
pub mod texture;
pub mod verification;
