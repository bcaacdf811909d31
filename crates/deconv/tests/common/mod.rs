//! Helpers shared by the deconvolution integration tests.

pub mod validation_pack;
