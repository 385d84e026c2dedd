//! Getting data in: photos from bytes.

pub mod image;
