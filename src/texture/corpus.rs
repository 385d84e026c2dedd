//! The UV texture corpus on disk: `index.json` plus, per entry, `<id>.png` (the unwrapped,
//! shading-removed, mirror-filled texture; `.jpg` in copies packed before masked training) and
//! `<id>_mask.png` (per-texel confidence, 0 where nothing was seen; required). Written by
//! `ganfit texture unwrap`, read by training and evaluation.
//!
//! A fixed tenth of the entries is held out for evaluation, chosen by a hash of the person's
//! identity where the photo set names one (CelebA's `identities.tsv`), else of the source file
//! (UTKFace has one photo per file and no identities): no person is on both sides.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::rng::SplitMix64;

/// One corpus entry as listed in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// Source photo, relative to the photo folder given to the unwrapper.
    pub source: String,
    /// Fraction of the face-region texels seen directly (before mirroring).
    pub coverage: f32,
    /// Landmark fit error of the geometry stage, in pixels of the photo crop.
    pub landmark_error: f32,
    /// Estimated yaw in degrees.
    pub yaw: f32,
    /// The person, where the photo set names one (`<set>:<id>`); the split keeps a person's
    /// photos together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

impl Entry {
    /// Whether this entry belongs to the held-out tenth.
    pub fn is_held_out(&self) -> bool {
        is_held_out(self.identity.as_deref().unwrap_or(&self.source))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    /// Texture height; the width is `aspect` times more.
    pub resolution: usize,
    #[serde(default = "one")]
    pub aspect: usize,
    pub entries: Vec<Entry>,
    /// Photos that were skipped, with the reason.
    #[serde(default)]
    pub rejected: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
    All,
}

impl Split {
    fn keeps(self, entry: &Entry) -> bool {
        match self {
            Split::All => true,
            Split::Test => entry.is_held_out(),
            Split::Train => !entry.is_held_out(),
        }
    }
}

fn one() -> usize {
    1
}

/// Whether a key (identity or source file) belongs to the held-out tenth (FNV-1a hash, stable
/// across platforms).
pub fn is_held_out(id: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.is_multiple_of(10)
}

/// Textures and masks held in memory as RGB8 / L8, row-major.
pub struct Corpus {
    dir: PathBuf,
    resolution: usize,
    aspect: usize,
    pub entries: Vec<Entry>,
    textures: Vec<Vec<u8>>,
    masks: Vec<Vec<u8>>,
}

pub fn read_index(dir: &Path) -> Result<Index> {
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::model(path.display().to_string(), e.to_string()))
}

impl Corpus {
    /// Loads the entries of `split`; fails if the corpus is empty or a file is unreadable.
    pub fn open(dir: &Path, split: Split) -> Result<Self> {
        Self::open_at(dir, split, None)
    }

    /// [`Corpus::open`], box-filtering each texture and mask down to `resolution` texels high
    /// as it is read (a power of two at most the corpus's), so that a fine corpus can be
    /// evaluated against a coarse model without holding it at full size.
    pub fn open_at(dir: &Path, split: Split, resolution: Option<usize>) -> Result<Self> {
        let index = read_index(dir)?;
        let (h, w) = (index.resolution, index.resolution * index.aspect);
        let factor = reduction(dir, &index, resolution)?;
        let mut corpus = Corpus {
            dir: dir.to_path_buf(),
            resolution: h / factor,
            aspect: index.aspect,
            entries: Vec::new(),
            textures: Vec::new(),
            masks: Vec::new(),
        };
        for entry in index.entries {
            if !split.keeps(&entry) {
                continue;
            }
            let (texture, mask) = read_entry(dir, &entry, w, h, factor)?;
            corpus.textures.push(texture);
            corpus.masks.push(mask);
            corpus.entries.push(entry);
        }
        if corpus.entries.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no textures in this split of the corpus",
                dir.display()
            )));
        }
        Ok(corpus)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Texture height.
    pub fn resolution(&self) -> usize {
        self.resolution
    }

    /// Width ÷ height.
    pub fn aspect(&self) -> usize {
        self.aspect
    }

    pub fn width(&self) -> usize {
        self.resolution * self.aspect
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the first `count` entries as a corpus of their own in `out` (PNG textures and
    /// masks at this corpus's resolution, and their index).
    pub fn write(&self, out: &Path, count: usize) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let (w, h) = (self.width() as u32, self.resolution as u32);
        let count = count.min(self.len());
        for i in 0..count {
            let id = &self.entries[i].id;
            let texture = image::RgbImage::from_raw(w, h, self.textures[i].clone());
            let mask = image::GrayImage::from_raw(w, h, self.masks[i].clone());
            let (Some(texture), Some(mask)) = (texture, mask) else {
                return Err(Error::Invalid(format!("{id}: texture of the wrong size")));
            };
            let save_error = |path: PathBuf| {
                move |e: image::ImageError| Error::Image(format!("{}: {e}", path.display()))
            };
            let path = out.join(format!("{id}.png"));
            texture.save(&path).map_err(save_error(path))?;
            let path = out.join(format!("{id}_mask.png"));
            mask.save(&path).map_err(save_error(path))?;
        }
        let index = Index {
            resolution: self.resolution,
            aspect: self.aspect,
            entries: self.entries[..count].to_vec(),
            rejected: Vec::new(),
        };
        let json = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::io::write_atomic(&out.join("index.json"), &json)
    }

    /// Texture `i` as f32 RGB in [0, 1], HWC.
    pub fn texture(&self, i: usize) -> Vec<f32> {
        self.textures[i].iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// Mask `i` as f32 in [0, 1], HW.
    pub fn mask(&self, i: usize) -> Vec<f32> {
        self.masks[i].iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// A random batch on `device`: see [`Corpus::stack`].
    pub fn batch(
        &self,
        size: usize,
        rng: &mut SplitMix64,
        device: &Device,
    ) -> Result<(Tensor<4>, Tensor<4>)> {
        let indices: Vec<usize> = (0..size).map(|_| rng.below(self.len())).collect();
        Ok(self.stack(&indices, device))
    }

    /// Entries `indices`: textures `[B, 3, H, W]` in [-1, 1] and masks `[B, 1, H, W]` in [0, 1].
    pub fn stack(&self, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<4>) {
        let (h, w) = (self.resolution, self.width());
        let mut values = Vec::with_capacity(indices.len() * 3 * h * w);
        let mut masks = Vec::with_capacity(indices.len() * h * w);
        for &i in indices {
            let t = &self.textures[i];
            for ch in 0..3 {
                values.extend((0..h * w).map(|p| t[p * 3 + ch] as f32 / 127.5 - 1.0));
            }
            masks.extend(self.masks[i].iter().map(|&m| m as f32 / 255.0));
        }
        let b = indices.len();
        (
            Tensor::from_data(TensorData::new(values, [b, 3, h, w]), device),
            Tensor::from_data(TensorData::new(masks, [b, 1, h, w]), device),
        )
    }
}

/// How many times smaller than the corpus's textures `resolution` is (1 when `None`).
fn reduction(dir: &Path, index: &Index, resolution: Option<usize>) -> Result<usize> {
    let (h, w) = (index.resolution, index.resolution * index.aspect);
    let target = resolution.unwrap_or(h);
    if !(target.is_power_of_two() && target <= h && h.is_multiple_of(target)) {
        return Err(Error::Invalid(format!(
            "{}: cannot read the corpus's {w}x{h} textures at {target} texels high (a power of \
             two at most {h})",
            dir.display()
        )));
    }
    Ok(h / target)
}

/// One entry's texture (RGB8) and mask (L8), box-filtered by `factor`.
fn read_entry(
    dir: &Path,
    entry: &Entry,
    w: usize,
    h: usize,
    factor: usize,
) -> Result<(Vec<u8>, Vec<u8>)> {
    // PNG as the unwrapper writes it, or JPEG in a copy packed before masked training.
    let png = dir.join(format!("{}.png", entry.id));
    let texture_path = if png.exists() {
        png
    } else {
        dir.join(format!("{}.jpg", entry.id))
    };
    let texture = load(&texture_path, w, h, false)?;
    // Training, PCA and evaluation all weigh texels by what the photo saw.
    let mask = load(&dir.join(format!("{}_mask.png", entry.id)), w, h, true)?;
    Ok((
        box_filter(&texture, w, h, 3, factor),
        box_filter(&mask, w, h, 1, factor),
    ))
}

/// The confidence-weighted mean texture of a split, RGB in [0, 1], HWC at `resolution` texels
/// high (the corpus's when `None`), read one entry at a time; texels no photo saw take the
/// plain mean. Also returns how many entries it averaged.
pub fn masked_mean(
    dir: &Path,
    split: Split,
    resolution: Option<usize>,
) -> Result<(Vec<f32>, usize)> {
    let index = read_index(dir)?;
    let (h, w) = (index.resolution, index.resolution * index.aspect);
    let factor = reduction(dir, &index, resolution)?;
    let texels = (h / factor) * (w / factor);
    let mut weighted = vec![0.0f64; texels * 3];
    let mut plain = vec![0.0f64; texels * 3];
    let mut weights = vec![0.0f64; texels];
    let mut count = 0;
    for entry in index.entries.iter().filter(|e| split.keeps(e)) {
        let (texture, mask) = read_entry(dir, entry, w, h, factor)?;
        for t in 0..texels {
            let m = mask[t] as f64 / 255.0;
            weights[t] += m;
            for c in 0..3 {
                let v = texture[t * 3 + c] as f64 / 255.0;
                weighted[t * 3 + c] += m * v;
                plain[t * 3 + c] += v;
            }
        }
        count += 1;
    }
    if count == 0 {
        return Err(Error::Invalid(format!(
            "{}: no textures in this split of the corpus",
            dir.display()
        )));
    }
    let mean = (0..texels * 3)
        .map(|k| {
            let m = weights[k / 3];
            (if m > 1e-3 {
                weighted[k] / m
            } else {
                plain[k] / count as f64
            }) as f32
        })
        .collect();
    Ok((mean, count))
}

/// The mean of each `factor`² block of a `w`×`h` image with `channels` interleaved channels.
fn box_filter(pixels: &[u8], w: usize, h: usize, channels: usize, factor: usize) -> Vec<u8> {
    if factor == 1 {
        return pixels.to_vec();
    }
    let (ow, oh) = (w / factor, h / factor);
    let mut out = Vec::with_capacity(ow * oh * channels);
    for y in 0..oh {
        for x in 0..ow {
            for c in 0..channels {
                let mut sum = 0u32;
                for dy in 0..factor {
                    let row = (y * factor + dy) * w;
                    for dx in 0..factor {
                        sum += pixels[(row + x * factor + dx) * channels + c] as u32;
                    }
                }
                let n = (factor * factor) as u32;
                out.push(((sum + n / 2) / n) as u8);
            }
        }
    }
    out
}

fn load(path: &Path, width: usize, height: usize, gray: bool) -> Result<Vec<u8>> {
    let img = image::open(path).map_err(|e| Error::Image(format!("{}: {e}", path.display())))?;
    if img.width() as usize != width || img.height() as usize != height {
        return Err(Error::Image(format!(
            "{}: {}x{} where the corpus index says {width}x{height}",
            path.display(),
            img.width(),
            img.height()
        )));
    }
    Ok(if gray {
        img.to_luma8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, source: &str, identity: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            source: source.into(),
            coverage: 0.5,
            landmark_error: 0.0,
            yaw: 0.0,
            identity: identity.map(String::from),
        }
    }

    #[test]
    fn a_person_is_never_on_both_sides_of_the_split() {
        // 200 people with 3 photos each: every person's photos fall on one side, and about a
        // tenth of the people are held out.
        let mut held_out_people = 0;
        for person in 0..200 {
            let sides: Vec<bool> = (0..3)
                .map(|k| {
                    let e = entry(
                        &format!("{:06}", person * 3 + k),
                        &format!("celeba/{person}_{k}.jpg"),
                        Some(&format!("celeba:{person}")),
                    );
                    e.is_held_out()
                })
                .collect();
            assert!(sides.iter().all(|&s| s == sides[0]), "person {person}");
            held_out_people += usize::from(sides[0]);
        }
        assert!((8..=40).contains(&held_out_people), "{held_out_people}");
        // Without an identity the source file decides, whatever the id.
        let a = entry("000001", "utkface/x.jpg", None);
        let b = entry("000999", "utkface/x.jpg", None);
        assert_eq!(a.is_held_out(), b.is_held_out());
    }

    #[test]
    fn a_corpus_reads_downsampled_and_averages_by_confidence() {
        let dir = std::env::temp_dir().join(format!("ganfit-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Two 8×4 textures: one red seen everywhere, one blue seen nowhere.
        for (id, colour, seen) in [("a", [255, 0, 0], 255), ("b", [0, 0, 255], 0)] {
            image::RgbImage::from_pixel(8, 4, image::Rgb(colour))
                .save(dir.join(format!("{id}.png")))
                .unwrap();
            image::GrayImage::from_pixel(8, 4, image::Luma([seen]))
                .save(dir.join(format!("{id}_mask.png")))
                .unwrap();
        }
        let index = Index {
            resolution: 4,
            aspect: 2,
            entries: vec![entry("a", "s/a", None), entry("b", "s/b", None)],
            rejected: vec![],
        };
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        let corpus = Corpus::open_at(&dir, Split::All, Some(2)).unwrap();
        assert_eq!((corpus.resolution(), corpus.width()), (2, 4));
        assert_eq!(corpus.texture(0).len(), 2 * 4 * 3);
        assert!(Corpus::open_at(&dir, Split::All, Some(3)).is_err());
        let (mean, count) = masked_mean(&dir, Split::All, None).unwrap();
        assert_eq!(count, 2);
        assert_eq!(&mean[..3], &[1.0, 0.0, 0.0]);
        // A copy keeps masks, and a missing mask is an error naming its file.
        let copy = dir.join("copy");
        corpus.write(&copy, 1).unwrap();
        assert_eq!(Corpus::open(&copy, Split::All).unwrap().len(), 1);
        std::fs::remove_file(copy.join("a_mask.png")).unwrap();
        let err = Corpus::open(&copy, Split::All).err().unwrap().to_string();
        assert!(err.contains("a_mask.png"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
