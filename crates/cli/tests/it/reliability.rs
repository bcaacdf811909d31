//! End-to-end tests of the reliability stage(s).
