//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//!
//! Images: magic `0x00000803`, then count, rows, cols (big-endian u32), then `u8` pixels.
//! Labels: magic `0x00000801`, then count, then `u8` labels.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Largest IDX payload read (1 GiB).
const MAX_BYTES: u64 = 1 << 30;

/// A stack of 8-bit greyscale images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels of image `i`.
    #[must_use]
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// A labelled data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// The images.
    pub images: Images,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Where it was read from.
    pub origin: String,
}

fn read_all(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    let gz = path.extension().is_some_and(|e| e == "gz");
    let r: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    r.take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_BYTES {
        return Err(format!("{}: larger than {MAX_BYTES} bytes", path.display()));
    }
    Ok(buf)
}

fn be_u32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    usize::try_from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok()
}

/// Parse IDX image bytes.
///
/// # Errors
/// Wrong magic number, or a payload whose length disagrees with the header.
pub fn parse_images(b: &[u8]) -> Result<Images, String> {
    if be_u32(b, 0) != Some(0x0803) {
        return Err("not an IDX image file (magic 0x00000803)".into());
    }
    let (Some(count), Some(rows), Some(cols)) = (be_u32(b, 4), be_u32(b, 8), be_u32(b, 12)) else {
        return Err("IDX image header is truncated".into());
    };
    let want = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or("IDX image header overflows")?;
    if b.len() - 16 != want {
        return Err(format!(
            "IDX images: header says {count} of {rows}x{cols} ({want} bytes) but {} bytes follow",
            b.len() - 16
        ));
    }
    Ok(Images {
        count,
        rows,
        cols,
        pixels: b[16..].to_vec(),
    })
}

/// Parse IDX label bytes.
///
/// # Errors
/// Wrong magic number, or a payload whose length disagrees with the header.
pub fn parse_labels(b: &[u8]) -> Result<Vec<u8>, String> {
    if be_u32(b, 0) != Some(0x0801) {
        return Err("not an IDX label file (magic 0x00000801)".into());
    }
    let count = be_u32(b, 4).ok_or("IDX label header is truncated")?;
    if b.len() - 8 != count {
        return Err(format!(
            "IDX labels: header says {count} but {} bytes follow",
            b.len() - 8
        ));
    }
    Ok(b[8..].to_vec())
}

/// Find `{stem}` or `{stem}.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, String> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{}: no {stem}[.gz]", dir.display()))
}

impl Dataset {
    /// Open split `t10k` or `train` in `dir` (files `{split}-images-idx3-ubyte[.gz]` and
    /// `{split}-labels-idx1-ubyte[.gz]`).
    ///
    /// # Errors
    /// Missing or malformed files, or images and labels of different counts.
    pub fn open(dir: &Path, split: &str) -> Result<Self, String> {
        let images = parse_images(&read_all(&find(
            dir,
            &format!("{split}-images-idx3-ubyte"),
        )?)?)?;
        let labels = parse_labels(&read_all(&find(
            dir,
            &format!("{split}-labels-idx1-ubyte"),
        )?)?)?;
        if images.count != labels.len() {
            return Err(format!(
                "{}: {} images but {} labels",
                dir.display(),
                images.count,
                labels.len()
            ));
        }
        Ok(Self {
            images,
            labels,
            origin: format!("{} ({split})", dir.display()),
        })
    }

    /// Number of examples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Serialise images as IDX bytes (for building subsets).
#[must_use]
pub fn images_to_idx(images: &Images) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    for v in [0x0803, images.count, images.rows, images.cols] {
        out.extend(u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend(&images.pixels);
    out
}

/// Serialise labels as IDX bytes.
#[must_use]
pub fn labels_to_idx(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    for v in [0x0801, labels.len()] {
        out.extend(u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let images = Images {
            count: 2,
            rows: 2,
            cols: 3,
            pixels: (0..12).collect(),
        };
        let bytes = images_to_idx(&images);
        assert_eq!(parse_images(&bytes), Ok(images));
        assert!(parse_images(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_images(&bytes[..10]).is_err());
        let labels = vec![3, 1, 4];
        assert_eq!(parse_labels(&labels_to_idx(&labels)), Ok(labels));
        assert!(parse_labels(&[0, 0, 8, 3, 0, 0, 0, 5, 1]).is_err());
    }
}
