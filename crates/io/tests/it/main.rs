//! Reader tests on the real fixtures in `test_data/`. One test binary keeps link time down.

mod conformance;
mod hdf5_formats;
mod text_formats;
