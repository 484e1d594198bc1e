//! Writing images: single PNGs, grids and denoising GIFs, all atomically
//! (temporary file + rename) and never over an existing file unless asked.

use std::io::Cursor;
use std::path::Path;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, GrayImage, ImageFormat, Luma, RgbaImage};

use crate::run::checkpoint::{CheckpointError, write_atomic};

fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// A side×side image from [0, 1] floats.
pub fn gray(pixels: &[f32], side: usize) -> GrayImage {
    GrayImage::from_fn(side as u32, side as u32, |x, y| {
        Luma([to_byte(pixels[y as usize * side + x as usize])])
    })
}

/// Tile images (each side×side, concatenated) into rows of `cols`, with a
/// `pad`-pixel dark border, scaled up by `zoom`.
pub fn grid(images: &[f32], side: usize, cols: usize, pad: usize, zoom: usize) -> GrayImage {
    let n = images.len() / (side * side);
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let cell = side * zoom + pad;
    let (w, h) = ((cols * cell + pad) as u32, (rows * cell + pad) as u32);
    let mut out = GrayImage::from_pixel(w, h, Luma([40]));
    for i in 0..n {
        let (r, c) = (i / cols, i % cols);
        let img = &images[i * side * side..(i + 1) * side * side];
        for y in 0..side * zoom {
            for x in 0..side * zoom {
                let v = to_byte(img[(y / zoom) * side + x / zoom]);
                out.put_pixel(
                    (pad + c * cell + x) as u32,
                    (pad + r * cell + y) as u32,
                    Luma([v]),
                );
            }
        }
    }
    out
}

/// A near-square column count for `n` images.
pub fn square_cols(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}

pub fn png_bytes(img: &GrayImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png)
        .expect("PNG encoding to memory cannot fail");
    buf.into_inner()
}

fn refuse_existing(path: &Path, overwrite: bool) -> Result<(), CheckpointError> {
    if !overwrite && path.exists() {
        return Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            message: "already exists; pass --force to overwrite it or choose another path".into(),
        });
    }
    Ok(())
}

pub fn save_png(img: &GrayImage, path: &Path, overwrite: bool) -> Result<(), CheckpointError> {
    refuse_existing(path, overwrite)?;
    write_atomic(path, &png_bytes(img))
}

/// Encode grayscale frames as an endlessly looping GIF.
pub fn gif_bytes(frames: &[GrayImage], delay_ms: u32, last_hold_ms: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut buf, 10);
        enc.set_repeat(Repeat::Infinite).expect("writing to memory");
        for (i, f) in frames.iter().enumerate() {
            let rgba = RgbaImage::from_fn(f.width(), f.height(), |x, y| {
                let v = f.get_pixel(x, y)[0];
                image::Rgba([v, v, v, 255])
            });
            let ms = if i + 1 == frames.len() {
                last_hold_ms
            } else {
                delay_ms
            };
            enc.encode_frame(Frame::from_parts(
                rgba,
                0,
                0,
                Delay::from_numer_denom_ms(ms, 1),
            ))
            .expect("GIF encoding to memory cannot fail");
        }
    }
    buf
}

pub fn save_gif(
    frames: &[GrayImage],
    delay_ms: u32,
    path: &Path,
    overwrite: bool,
) -> Result<(), CheckpointError> {
    refuse_existing(path, overwrite)?;
    write_atomic(path, &gif_bytes(frames, delay_ms, 1500))
}

/// The default cap on an image's pixel count for `load_gray` (4096×4096):
/// a small compressed PNG can declare a size that needs gigabytes decoded.
pub const MAX_IMAGE_PIXELS: u64 = 4096 * 4096;

/// Load an image file as grayscale [0, 1] floats with its size. Its header
/// is read first: an image over `max_pixels` is refused before decoding.
pub fn load_gray(path: &Path, max_pixels: u64) -> Result<(Vec<f32>, u32, u32), String> {
    let cannot =
        |e: &dyn std::fmt::Display| format!("{}: cannot read the image ({e})", path.display());
    let reader = || -> Result<_, String> {
        image::ImageReader::open(path)
            .map_err(|e| cannot(&e))?
            .with_guessed_format()
            .map_err(|e| cannot(&e))
    };
    let (w, h) = reader()?.into_dimensions().map_err(|e| cannot(&e))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "{}: {w}×{h} is {pixels} pixels, over the cap of {max_pixels}; raise it with \
             --max-pixels if the machine has the memory",
            path.display()
        ));
    }
    let mut limits = image::Limits::default();
    // Decoded RGBA16 at most, plus the luma copy.
    limits.max_alloc = Some(pixels.saturating_mul(12).max(1 << 20));
    let mut reader = reader()?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| cannot(&e))?.to_luma8();
    let (w, h) = img.dimensions();
    Ok((img.pixels().map(|p| p[0] as f32 / 255.0).collect(), w, h))
}
