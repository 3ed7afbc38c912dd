//! Turning pictures into network inputs: channel conversion, resizing to the resolution the
//! plan asks for, normalisation by the model's [`InputSpec`].

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage};
use ndarray::{Array4, s};

use crate::model::InputSpec;

/// Largest image file accepted, in pixels.
const MAX_PIXELS: u64 = 1 << 26;

/// Read an image file in any format the `image` crate knows.
///
/// # Errors
/// Unreadable, undecodable or enormous images.
pub fn load_image(path: &Path) -> Result<DynamicImage, String> {
    let reader = image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("{}: not a readable image ({e})", path.display()))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("{}: {w}x{h} is too large", path.display()));
    }
    image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .decode()
        .map_err(|e| format!("{}: not a readable image ({e})", path.display()))
}

/// Convert an image to a `(1, C, H, W)` input at `resolution` (`[height, width]`): greyscale
/// or RGB as the model takes, resized with a triangle (bilinear, antialiased) filter, then
/// normalised.
#[must_use]
pub fn image_to_input(img: &DynamicImage, spec: &InputSpec, resolution: [usize; 2]) -> Array4<f32> {
    let [h, w] = resolution;
    let (w32, h32) = (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    );
    let mut x = Array4::<f32>::zeros((1, spec.channels, h, w));
    if spec.channels == 1 {
        let g = img.to_luma8();
        let g = if g.dimensions() == (w32, h32) {
            g
        } else {
            image::imageops::resize(&g, w32, h32, FilterType::Triangle)
        };
        for (i, v) in g.pixels().enumerate() {
            x[[0, 0, i / w, i % w]] = spec.normalize(0, f32::from(v.0[0]));
        }
    } else {
        let rgb = img.to_rgb8();
        let rgb = if rgb.dimensions() == (w32, h32) {
            rgb
        } else {
            image::imageops::resize(&rgb, w32, h32, FilterType::Triangle)
        };
        for (i, v) in rgb.pixels().enumerate() {
            for c in 0..spec.channels.min(3) {
                x[[0, c, i / w, i % w]] = spec.normalize(c, f32::from(v.0[c]));
            }
        }
    }
    x
}

/// A batch of 8-bit greyscale images (e.g. from an IDX file) as inputs at `resolution`.
#[must_use]
pub fn grey_batch(
    images: &[&[u8]],
    rows: usize,
    cols: usize,
    spec: &InputSpec,
    resolution: [usize; 2],
) -> Array4<f32> {
    let [h, w] = resolution;
    let mut x = Array4::<f32>::zeros((images.len(), spec.channels, h, w));
    for (n, px) in images.iter().enumerate() {
        let img = GrayImage::from_raw(
            u32::try_from(cols).unwrap_or(u32::MAX),
            u32::try_from(rows).unwrap_or(u32::MAX),
            px.to_vec(),
        );
        let Some(img) = img else { continue };
        let one = image_to_input(&DynamicImage::ImageLuma8(img), spec, resolution);
        x.slice_mut(s![n..=n, .., .., ..]).assign(&one);
    }
    x
}
