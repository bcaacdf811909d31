//! End-to-end tests of the `tmescope` binary: each runs the real binary on files in a temporary folder.
//! One test binary (this one) keeps link time down on small machines.

mod common;
mod deconvolve;
mod demo;
mod ingest;
mod inspect;
mod niche;
mod reliability;
mod report;
mod run;
mod simulate;
mod spatial;
