//! Photo bytes to RGB8: JPEG, PNG, WebP, BMP and PNM, EXIF orientation applied, grayscale
//! expanded, 16-bit reduced, transparency composited over white (how a page shows it).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::{Error, Result};

/// Largest side accepted: beyond it a photo cannot be shown or processed sensibly.
pub const MAX_SIDE: u32 = 16384;
/// Largest decoded size (the decoder's own buffer, before conversion to RGB8).
pub const MAX_DECODED_BYTES: u64 = 768 * 1024 * 1024;
/// Largest encoded photo accepted, checked before decoding (a 50-megapixel JPEG is about 25 MB).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Most pixels one photo may decode to (an 8K × 6K photo is 48 million), checked from the
/// header before decoding: the decoder's buffer, the RGB copy and the crops stay bounded.
pub const MAX_PIXELS: u64 = 50_000_000;
/// Most pixels the photos of one call (one fit) may hold together.
pub const MAX_PIXELS_PER_CALL: u64 = 200_000_000;

/// The decoded pixels of one call so far, against [`MAX_PIXELS_PER_CALL`].
#[derive(Debug, Default)]
pub struct PixelBudget {
    used: u64,
}

impl PixelBudget {
    /// Counts `image` in; an error once the call's photos hold too many pixels together.
    pub fn take(&mut self, image: &RgbImage) -> Result<()> {
        self.used += image.width() as u64 * image.height() as u64;
        if self.used > MAX_PIXELS_PER_CALL {
            return Err(Error::Image(format!(
                "the photos hold {:.0} million pixels together; one fit takes at most {}",
                self.used as f64 / 1e6,
                MAX_PIXELS_PER_CALL / 1_000_000
            )));
        }
        Ok(())
    }
}

/// Decodes a photo; [`Error::Image`] says why when it cannot.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(Error::Image("the file is empty".into()));
    }
    check_file_size(bytes.len())?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::Image(
            "unrecognised format (expected JPEG, PNG, WebP, BMP or PNM)".into(),
        ));
    }
    // The JPEG decoder fills a truncated scan with grey and reports success: refuse the file
    // instead of fitting a face to grey.
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(Error::Image(
            "the JPEG ends before its end-of-image marker (a truncated file?)".into(),
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Error::Image(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(Error::Image(format!(
            "{width}×{height} is {:.0} million pixels; at most {} are accepted",
            (width as u64 * height as u64) as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        )));
    }
    // A broken EXIF block must not cost the photo: treat it as upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| Error::Image(e.to_string()))?;
    image.apply_orientation(orientation);
    if image.width() == 0 || image.height() == 0 {
        return Err(Error::Image("the image has no pixels".into()));
    }
    Ok(to_rgb(image))
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan (FF DA). Inside
/// entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so neither
/// sequence can occur there by chance; embedded thumbnails come before the main image's scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xff, 0xda]);
    last_scan.is_some_and(|start| bytes[start..].windows(2).any(|w| w == [0xff, 0xd9]))
}

/// Refuses an encoded photo of more than [`MAX_FILE_BYTES`] (callers holding the bytes outside
/// wasm memory check before copying them in).
pub fn check_file_size(bytes: usize) -> Result<()> {
    if bytes <= MAX_FILE_BYTES {
        return Ok(());
    }
    Err(Error::Image(format!(
        "the file is {:.0} MB; photos of at most {} MB are accepted",
        bytes as f64 / 1e6,
        MAX_FILE_BYTES / 1_000_000
    )))
}

fn to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// Image files of a folder (and of its `images/` subfolder) by extension, sorted; an error when
/// there are none.
#[cfg(not(target_arch = "wasm32"))]
pub fn photo_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for d in [dir.to_path_buf(), dir.join("images")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .unwrap_or_default();
            if ["jpg", "jpeg", "png", "webp", "bmp", "ppm", "pnm"].contains(&ext.as_str()) {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: no photos", dir.display())));
    }
    Ok(files)
}

/// Reads and decodes a photo file.
#[cfg(not(target_arch = "wasm32"))]
pub fn read(path: impl AsRef<std::path::Path>) -> Result<RgbImage> {
    use std::io::Read;
    // Bounded: a device file or a huge file must not be read whole before it is refused.
    let mut bytes = Vec::new();
    std::fs::File::open(path.as_ref())
        .and_then(|file| file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path.as_ref(), e))?;
    // At most one byte over the limit was read: `decode` refuses it by size.
    decode(&bytes).map_err(|e| match e {
        Error::Image(reason) => Error::Image(format!("{}: {reason}", path.as_ref().display())),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, codecs};

    fn test_image() -> RgbImage {
        // 3×2, every pixel distinct, so rotations are recognisable.
        RgbImage::from_fn(3, 2, |x, y| {
            image::Rgb([(x * 80) as u8, (y * 200) as u8, 7])
        })
    }

    fn png(image: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    /// A JPEG with an APP1 EXIF segment holding only the orientation tag.
    fn jpeg_with_orientation(image: &RgbImage, orientation: u16) -> Vec<u8> {
        let mut jpeg = Vec::new();
        codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend([0, 1]); // one IFD entry
        tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT, count 1
        tiff.extend(orientation.to_be_bytes());
        tiff.extend([0, 0, 0, 0, 0, 0]); // value padding, next IFD = 0
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xff, 0xe1]);
        out.extend(((app1.len() + 2) as u16).to_be_bytes());
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        let image = test_image();
        let upright = decode(&jpeg_with_orientation(&image, 1)).unwrap();
        assert_eq!(upright.dimensions(), (3, 2));
        // 6: the camera was rotated; the upright photo is the stored one turned 90° clockwise.
        let rotated = decode(&jpeg_with_orientation(&image, 6)).unwrap();
        assert_eq!(rotated.dimensions(), (2, 3));
        // Stored top-left (0, 0) ends at the top-right after a clockwise quarter turn.
        let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12);
        assert!(
            close(rotated.get_pixel(1, 0).0, upright.get_pixel(0, 0).0),
            "{:?} vs {:?}",
            rotated.get_pixel(1, 0),
            upright.get_pixel(0, 0)
        );
        assert!(close(rotated.get_pixel(0, 2).0, upright.get_pixel(2, 1).0));
    }

    #[test]
    fn grayscale_alpha_and_16_bit_become_rgb8() {
        let gray = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 4, image::Luma([90])));
        assert_eq!(decode(&png(&gray)).unwrap().get_pixel(1, 1).0, [90, 90, 90]);
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            4,
            4,
            image::Rgba([0, 0, 0, 0]),
        ));
        assert_eq!(
            decode(&png(&rgba)).unwrap().get_pixel(0, 0).0,
            [255, 255, 255],
            "transparent shows the white page"
        );
        let half = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            4,
            4,
            image::Rgba([0, 0, 0, 128]),
        ));
        assert_eq!(
            decode(&png(&half)).unwrap().get_pixel(0, 0).0,
            [127, 127, 127]
        );
        let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
            4,
            4,
            image::Rgb([65535u16, 0, 32896]),
        ));
        assert_eq!(
            decode(&png(&deep)).unwrap().get_pixel(3, 3).0,
            [255, 0, 128]
        );
    }

    #[test]
    fn garbage_is_a_clear_image_error() {
        for bytes in [
            &b""[..],
            b"not an image at all",
            &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0],
        ] {
            match decode(bytes) {
                Err(Error::Image(reason)) => assert!(!reason.is_empty()),
                other => panic!("expected Error::Image, got {other:?}"),
            }
        }
        let mut truncated = png(&DynamicImage::ImageRgb8(test_image()));
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(decode(&truncated), Err(Error::Image(_))));
    }

    #[test]
    fn oversized_photos_are_refused_before_decoding() {
        // A 9000 × 6000 grey PNG compresses to a few hundred kilobytes but would decode to 54
        // million pixels.
        let image = image::GrayImage::new(9000, 6000);
        let mut png = Vec::new();
        codecs::png::PngEncoder::new(&mut png)
            .write_image(image.as_raw(), 9000, 6000, image::ExtendedColorType::L8)
            .unwrap();
        let err = decode(&png).unwrap_err().to_string();
        assert!(
            err.contains("9000×6000") && err.contains("million pixels"),
            "{err}"
        );
        let err = decode(&vec![0u8; MAX_FILE_BYTES + 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("MB are accepted"), "{err}");
    }

    #[test]
    fn a_call_has_a_pixel_budget() {
        let photo = RgbImage::new(7000, 7000);
        let mut budget = PixelBudget::default();
        for _ in 0..4 {
            budget.take(&photo).unwrap();
        }
        assert!(
            budget
                .take(&photo)
                .unwrap_err()
                .to_string()
                .contains("one fit takes at most")
        );
    }

    #[test]
    fn a_truncated_jpeg_is_refused_not_filled_with_grey() {
        let jpeg = jpeg_with_orientation(&test_image(), 1);
        assert!(decode(&jpeg).is_ok());
        let err = decode(&jpeg[..jpeg.len() - 2]).unwrap_err().to_string();
        assert!(err.contains("end-of-image"), "{err}");
        let half = &jpeg[..jpeg.len() / 2];
        assert!(decode(half).is_err());
    }
}
