//! The UV texture corpus on disk: `index.json` plus, per entry, `<id>.png` (the unwrapped,
//! shading-removed, mirror-filled texture) and `<id>_mask.png` (per-texel confidence, 0 where
//! nothing was seen). Written by `ganfit texture unwrap`, read by training and evaluation.
//!
//! A fixed tenth of the entries (by a hash of the id) is held out for evaluation.

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

fn one() -> usize {
    1
}

/// Whether an id belongs to the held-out tenth (FNV-1a hash, stable across platforms).
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
        let index = read_index(dir)?;
        let (h, w) = (index.resolution, index.resolution * index.aspect);
        let mut corpus = Corpus {
            dir: dir.to_path_buf(),
            resolution: h,
            aspect: index.aspect,
            entries: Vec::new(),
            textures: Vec::new(),
            masks: Vec::new(),
        };
        for entry in index.entries {
            let keep = match split {
                Split::All => true,
                Split::Test => is_held_out(&entry.id),
                Split::Train => !is_held_out(&entry.id),
            };
            if !keep {
                continue;
            }
            // PNG as the unwrapper writes it, or JPEG in a compressed copy for transfer.
            let png = dir.join(format!("{}.png", entry.id));
            let texture_path = if png.exists() {
                png
            } else {
                dir.join(format!("{}.jpg", entry.id))
            };
            let texture = load(&texture_path, w, h, false)?;
            // Masks matter to evaluation and PCA; a training-only copy may leave them out.
            let mask_path = dir.join(format!("{}_mask.png", entry.id));
            let mask = if mask_path.exists() {
                load(&mask_path, w, h, true)?
            } else {
                vec![0; w * h]
            };
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

    /// Texture `i` as f32 RGB in [0, 1], HWC.
    pub fn texture(&self, i: usize) -> Vec<f32> {
        self.textures[i].iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// Mask `i` as f32 in [0, 1], HW.
    pub fn mask(&self, i: usize) -> Vec<f32> {
        self.masks[i].iter().map(|&v| v as f32 / 255.0).collect()
    }

    /// A random batch as NCHW in [-1, 1] on `device`.
    pub fn batch(&self, size: usize, rng: &mut SplitMix64, device: &Device) -> Result<Tensor<4>> {
        let indices: Vec<usize> = (0..size).map(|_| rng.below(self.len())).collect();
        Ok(self.stack(&indices, device))
    }

    /// Entries `indices` as NCHW in [-1, 1].
    pub fn stack(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let (h, w) = (self.resolution, self.width());
        let mut values = Vec::with_capacity(indices.len() * 3 * h * w);
        for &i in indices {
            let t = &self.textures[i];
            for ch in 0..3 {
                values.extend((0..h * w).map(|p| t[p * 3 + ch] as f32 / 127.5 - 1.0));
            }
        }
        Tensor::from_data(TensorData::new(values, [indices.len(), 3, h, w]), device)
    }
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
