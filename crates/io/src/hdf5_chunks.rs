//! Direct reading of the chunks of big 1-D integer arrays (the 10x `indices`, `data` and `indptr`), the
//! bulk of an HDF5 count matrix.
//!
//! Through the `rust-hdf5` crate's typed reads, each block of elements passes through freshly allocated
//! buffers (the chunk images, the selection's bytes, the elements converted to 64 bits): on a 1M-cell
//! Xenium matrix (258 million non-zeros) the conversions and the page faults of those buffers took more
//! CPU than inflating the chunks. Here each stored chunk is read as it is on disk (HDF5's direct chunk
//! read), inflated and unshuffled into two buffers a worker reuses from chunk to chunk, and its elements
//! are decoded straight into the caller's output.
//!
//! Only the layouts h5py, Cell Ranger, Space Ranger and Xenium Ranger write are taken this way: a 1-D
//! chunked array of whole-byte integers whose filter pipeline holds nothing but deflate (zlib streams)
//! and shuffle (Collet's byte transposition, as in HDF5's `H5Z_SHUFFLE`). Anything else (checksums or
//! other filters, bit fields, floats, a chunk that was never written) is read by the crate; the two paths
//! give the same values (tested on the fixtures' arrays and on every filter combination).

use rust_hdf5::{ByteOrder, DatatypeMessage, H5Dataset};
use std::panic::{catch_unwind, AssertUnwindSafe};
use zlib_rs::{Inflate, InflateFlush, Status};

/// HDF5 filter ids (`H5Zpublic.h`).
const FILTER_DEFLATE: u16 = 1;
const FILTER_SHUFFLE: u16 = 2;

/// The storage of a 1-D chunked integer dataset that can be decoded here.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunked {
    /// Elements per chunk.
    chunk: usize,
    /// Bytes per element (1, 2, 4 or 8).
    size: usize,
    signed: bool,
    big_endian: bool,
    /// The filter pipeline's ids, in the order they were applied when writing.
    filters: Vec<u16>,
}

/// The buffers one worker reuses from chunk to chunk.
#[derive(Default)]
pub(crate) struct Scratch {
    image: Vec<u8>,
    spare: Vec<u8>,
    inflate: Option<Inflate>,
}

/// Why a block could not be decoded here.
#[derive(Debug, PartialEq)]
pub(crate) enum Refused {
    /// A chunk is not stored as a whole (never written, or unreadable raw): the crate reads the block.
    ReadByCrate,
    /// The data are invalid; the message names the element or what is wrong with the chunk.
    Invalid(String),
}

impl Chunked {
    /// The layout of `ds` when it can be decoded here; `None` otherwise (including when the crate fails
    /// on the header, which then reports it on the ordinary path).
    pub(crate) fn of(ds: &H5Dataset) -> Option<Chunked> {
        catch_unwind(AssertUnwindSafe(|| Self::layout(ds))).ok().flatten()
    }

    fn layout(ds: &H5Dataset) -> Option<Chunked> {
        if ds.shape().len() != 1 {
            return None;
        }
        let chunk = match ds.chunk_dims()?.as_slice() {
            [c] if *c > 0 => *c,
            _ => return None,
        };
        let DatatypeMessage::FixedPoint { size, byte_order, signed, bit_offset: 0, bit_precision } =
            ds.datatype().ok()?
        else {
            return None;
        };
        let size = size as usize;
        if !matches!(size, 1 | 2 | 4 | 8) || usize::from(bit_precision) != size * 8 {
            return None;
        }
        let filters: Vec<u16> = ds.filters().ok()?.iter().map(|f| f.id).collect();
        if filters.iter().any(|&f| f != FILTER_DEFLATE && f != FILTER_SHUFFLE) {
            return None;
        }
        Some(Chunked { chunk, size, signed, big_endian: matches!(byte_order, ByteOrder::BigEndian), filters })
    }

    /// Decodes elements `start..start + n` (`start` a multiple of the chunk size), handing each to
    /// `put(element index, value)`. A negative value is refused with its index, before `put` sees it.
    pub(crate) fn read(
        &self,
        ds: &H5Dataset,
        start: usize,
        n: usize,
        scratch: &mut Scratch,
        mut put: impl FnMut(usize, u64) -> Result<(), String>,
    ) -> Result<(), Refused> {
        let mut at = start;
        while at < start + n {
            let take = self.chunk.min(start + n - at);
            let bytes = self.chunk_bytes(ds, at / self.chunk, scratch)?;
            let need = take * self.size;
            if bytes.len() < need {
                return Err(Refused::Invalid(format!(
                    "the chunk holding elements {at}..{} decodes to {} bytes, expected at least {need}",
                    at + take,
                    bytes.len()
                )));
            }
            let bytes = &bytes[..need];
            let be = self.big_endian;
            match (self.size, self.signed) {
                (1, false) => decode::<u8>(bytes, be, at, &mut put),
                (1, true) => decode::<i8>(bytes, be, at, &mut put),
                (2, false) => decode::<u16>(bytes, be, at, &mut put),
                (2, true) => decode::<i16>(bytes, be, at, &mut put),
                (4, false) => decode::<u32>(bytes, be, at, &mut put),
                (4, true) => decode::<i32>(bytes, be, at, &mut put),
                (8, false) => decode::<u64>(bytes, be, at, &mut put),
                _ => decode::<i64>(bytes, be, at, &mut put),
            }
            .map_err(Refused::Invalid)?;
            at += take;
        }
        Ok(())
    }

    /// The unfiltered bytes of chunk number `index`, in `scratch.image`.
    fn chunk_bytes<'s>(&self, ds: &H5Dataset, index: usize, scratch: &'s mut Scratch) -> Result<&'s [u8], Refused> {
        let raw = catch_unwind(AssertUnwindSafe(|| ds.read_chunk_raw_at(&[index])));
        let Ok(Ok((raw, mask))) = raw else {
            return Err(Refused::ReadByCrate);
        };
        let full = self.chunk * self.size;
        let Scratch { image, spare, inflate } = scratch;
        image.clear();
        image.extend_from_slice(&raw);
        // Undo the filters in the reverse of the order they were applied; bit `i` of the chunk's mask
        // says filter `i` was skipped for this chunk.
        for (i, &f) in self.filters.iter().enumerate().rev() {
            if i < 32 && mask & (1 << i) != 0 {
                continue;
            }
            if f == FILTER_DEFLATE {
                let z = inflate.get_or_insert_with(|| Inflate::new(true, 15));
                inflate_into(z, image, spare, full).map_err(Refused::Invalid)?;
            } else {
                unshuffle(image, spare, self.size);
            }
            std::mem::swap(image, spare);
        }
        Ok(image)
    }
}

/// Inflates the zlib stream `input` into `out` (resized to what it holds), which must not exceed `limit`
/// bytes (a chunk's size: more comes from a corrupt stream).
fn inflate_into(z: &mut Inflate, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), String> {
    z.reset(true);
    // One byte of room past the limit, so a stream that goes on past it is caught rather than cut.
    out.resize(limit + 1, 0);
    let mut filled = 0;
    loop {
        let (read, made) = (z.total_in() as usize, z.total_out());
        let status = z
            .decompress(&input[read.min(input.len())..], &mut out[filled..], InflateFlush::NoFlush)
            .map_err(|e| format!("a chunk's deflate stream is corrupt ({})", e.as_str()))?;
        filled += (z.total_out() - made) as usize;
        if filled > limit {
            return Err(format!("a chunk inflates to more than its {limit} bytes"));
        }
        if status == Status::StreamEnd {
            out.truncate(filled);
            return Ok(());
        }
        if z.total_in() as usize == read && z.total_out() == made {
            return Err("a chunk's deflate stream ends early (truncated file?)".into());
        }
    }
}

/// Reverses HDF5's shuffle filter: the bytes of `input` are `size` planes (every element's first byte,
/// then every element's second byte...), followed by any bytes left over, which were not shuffled.
fn unshuffle(input: &[u8], out: &mut Vec<u8>, size: usize) {
    out.clear();
    out.resize(input.len(), 0);
    let n = input.len() / size;
    if size > 1 && n > 1 {
        for (b, plane) in input[..n * size].chunks_exact(n).enumerate() {
            for (dst, &x) in out[b..].iter_mut().step_by(size).zip(plane) {
                *dst = x;
            }
        }
    } else {
        out[..n * size].copy_from_slice(&input[..n * size]);
    }
    out[n * size..].copy_from_slice(&input[n * size..]);
}

/// A whole-byte integer type as stored in HDF5.
trait Stored: Copy {
    const SIZE: usize;
    fn decode(bytes: &[u8], big_endian: bool) -> Self;
    /// The value, or the negative value as `Err`.
    fn non_negative(self) -> Result<u64, i64>;
}

macro_rules! stored {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn decode(bytes: &[u8], big_endian: bool) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                if big_endian { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }
            }
            #[inline]
            #[allow(unused_comparisons, clippy::cast_lossless)]
            fn non_negative(self) -> Result<u64, i64> {
                if self >= 0 { Ok(self as u64) } else { Err(self as i64) }
            }
        }
    )*};
}
stored!(u8, i8, u16, i16, u32, i32, u64, i64);

/// Decodes the elements in `bytes` (element `base` first) into `put`.
fn decode<T: Stored>(
    bytes: &[u8],
    big_endian: bool,
    base: usize,
    put: &mut impl FnMut(usize, u64) -> Result<(), String>,
) -> Result<(), String> {
    for (i, b) in bytes.chunks_exact(T::SIZE).enumerate() {
        match T::decode(b, big_endian).non_negative() {
            Ok(v) => put(base + i, v)?,
            Err(v) => return Err(format!("expected non-negative integers, found {v} at element {}", base + i)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_hdf5::H5File;

    fn read_all(ds: &H5Dataset, c: &Chunked, len: usize) -> Result<Vec<u64>, Refused> {
        let mut out = vec![0; len];
        let mut s = Scratch::default();
        // Two blocks of whole chunks, as the caller hands them.
        let half = (len / 2 / c.chunk) * c.chunk;
        for (start, n) in [(0, half), (half, len - half)] {
            c.read(ds, start, n, &mut s, |i, v| {
                out[i] = v;
                Ok(())
            })?;
        }
        Ok(out)
    }

    #[test]
    fn every_filter_combination_decodes_as_the_crate_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.h5");
        let len = 10_007;
        let values: Vec<i32> = (0..len as i32).map(|i| (i * 7919) % 5003).collect();
        let wide: Vec<u64> = values.iter().map(|&v| v as u64 * 1_000_003).collect();
        let f = H5File::create(&path).unwrap();
        // Each filter combination on a chunk size that does not divide the length (a partial last chunk).
        let i32s = |chunk: usize| f.new_dataset::<i32>().shape([len]).chunk(&[chunk]);
        i32s(1000).create("plain").unwrap().write_raw(&values).unwrap();
        i32s(1000).deflate(4).create("deflate").unwrap().write_raw(&values).unwrap();
        i32s(1000).shuffle().create("shuffle").unwrap().write_raw(&values).unwrap();
        let both = f.new_dataset::<u64>().shape([len]).chunk(&[999]).shuffle_deflate(6).create("both").unwrap();
        both.write_raw(&wide).unwrap();
        f.close().unwrap();
        let f = H5File::open(&path).unwrap();
        for name in ["plain", "deflate", "shuffle", "both"] {
            let ds = f.dataset(name).unwrap();
            let c = Chunked::of(&ds).unwrap_or_else(|| panic!("{name} should be decodable here"));
            let expected = ds.read_numeric_as::<u64>().unwrap();
            assert_eq!(read_all(&ds, &c, len).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn negative_values_are_refused_with_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("neg.h5");
        let mut values: Vec<i64> = (0..5000).collect();
        values[4321] = -5;
        let f = H5File::create(&path).unwrap();
        f.new_dataset::<i64>()
            .shape([5000])
            .chunk(&[512])
            .shuffle_deflate(1)
            .create("x")
            .unwrap()
            .write_raw(&values)
            .unwrap();
        f.close().unwrap();
        let f = H5File::open(&path).unwrap();
        let ds = f.dataset("x").unwrap();
        let c = Chunked::of(&ds).unwrap();
        let e = read_all(&ds, &c, 5000).unwrap_err();
        assert_eq!(e, Refused::Invalid("expected non-negative integers, found -5 at element 4321".into()));
    }

    #[test]
    fn floats_and_contiguous_arrays_are_left_to_the_crate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.h5");
        let f = H5File::create(&path).unwrap();
        f.new_dataset::<f64>().shape([100]).chunk(&[10]).create("float").unwrap().write_raw(&[1.0; 100]).unwrap();
        f.new_dataset::<u32>().shape([100]).create("contiguous").unwrap().write_raw(&[1u32; 100]).unwrap();
        f.close().unwrap();
        let f = H5File::open(&path).unwrap();
        assert!(Chunked::of(&f.dataset("float").unwrap()).is_none());
        assert!(Chunked::of(&f.dataset("contiguous").unwrap()).is_none());
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let mut z = Inflate::new(true, 15);
        let mut out = Vec::new();
        assert!(inflate_into(&mut z, b"not a zlib stream", &mut out, 100).is_err());
        // A valid stream of 64 bytes, against a limit of 10, then cut short.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &[7u8; 64]).unwrap();
        let stream = enc.finish().unwrap();
        assert!(inflate_into(&mut z, &stream, &mut out, 10).unwrap_err().contains("more than"));
        assert!(inflate_into(&mut z, &stream[..stream.len() - 3], &mut out, 100).is_err());
        inflate_into(&mut z, &stream, &mut out, 64).unwrap();
        assert_eq!(out, vec![7u8; 64]);
    }

    #[test]
    fn unshuffle_restores_elements_and_keeps_the_tail() {
        // Three 4-byte elements shuffled into planes, then two bytes left over.
        let elems: [[u8; 4]; 3] = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]];
        let mut shuffled: Vec<u8> = (0..4).flat_map(|b| elems.iter().map(move |e| e[b])).collect();
        shuffled.extend([99, 98]);
        let mut out = Vec::new();
        unshuffle(&shuffled, &mut out, 4);
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99, 98]);
    }
}
