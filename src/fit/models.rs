//! The model files a fit needs, by name: the same names in `models/` natively and under the web
//! app's `modelsUrl`.

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::face_model::{FaceModel, RegionSelection};
use crate::nets::{FaceNets, ModelBytes};
use crate::texture::model::{PcaTexture, TextureModel};

pub const FACE_MODEL: &str = crate::face_model::DEFAULT_FILE_NAME;
pub const TEXTURE_GAN: &str = "texture_gan.bpk";
pub const TEXTURE_PCA: &str = "texture_pca.bpk";

/// Which texture model a fit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum TextureChoice {
    Gan,
    Pca,
}

impl TextureChoice {
    pub fn file_name(self) -> &'static str {
        match self {
            TextureChoice::Gan => TEXTURE_GAN,
            TextureChoice::Pca => TEXTURE_PCA,
        }
    }

    /// The texture model a fit uses when none is named, given the models folder `dir`: PCA when
    /// its file is there (the shipped GAN, a short CPU run, does not reach PCA's numbers; see the
    /// README), else the GAN. `ganfit model texture-default` prints it for `scripts/models.sh`,
    /// which writes it into the web app's manifest.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn preferred_in(dir: &std::path::Path) -> Self {
        if dir.join(TEXTURE_PCA).exists() {
            TextureChoice::Pca
        } else {
            TextureChoice::Gan
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TextureChoice::Gan => "gan",
            TextureChoice::Pca => "pca",
        }
    }
}

/// The models a fit uses, all on one autodiff-capable device.
pub struct Models {
    pub face: FaceModel,
    pub nets: FaceNets,
    pub texture: TextureModel,
}

/// Every model file's bytes.
pub struct ModelFiles {
    pub face_model: Vec<u8>,
    pub nets: ModelBytes,
    pub texture: Vec<u8>,
    pub texture_choice: TextureChoice,
}

impl Models {
    pub fn from_files(files: ModelFiles, device: &Device) -> Result<Self> {
        let face = FaceModel::from_bytes(
            &files.face_model,
            FACE_MODEL,
            device,
            RegionSelection::default(),
        )?;
        let nets = FaceNets::from_bytes(files.nets, device)?;
        let name = files.texture_choice.file_name();
        let texture = match files.texture_choice {
            TextureChoice::Gan => TextureModel::Gan(crate::texture::weights::load_generator(
                files.texture,
                device,
                name,
            )?),
            TextureChoice::Pca => {
                TextureModel::Pca(PcaTexture::from_bytes(files.texture, device, name)?)
            }
        };
        check_texture_matches(&face, &texture, name)?;
        Ok(Self {
            face,
            nets,
            texture,
        })
    }

    /// Reads the files from a folder (`models/` by default).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path, device: &Device, texture: TextureChoice) -> Result<Self> {
        let read = |name: &str| crate::io::read_model_file(dir, name);
        let read_optional = |name: &str| {
            if dir.join(name).exists() {
                read(name).map(Some)
            } else {
                Ok(None)
            }
        };
        Self::from_files(
            ModelFiles {
                face_model: read(FACE_MODEL)?,
                nets: ModelBytes {
                    detector: read_optional(crate::nets::Network::Detector.file_name())?,
                    landmarks68: read_optional(crate::nets::Network::Landmarks68.file_name())?,
                    // The evaluation's judge; the fit never uses it.
                    resnet: read_optional(crate::nets::Network::ResNet.file_name())?,
                    // The identity terms' network (a fit that switches them on needs it).
                    faceres: read_optional(crate::nets::Network::FaceRes.file_name())?,
                    // The fit's eyes when present (else face-api's detector and 68 points).
                    blazeface: read_optional(crate::nets::Network::BlazeFace.file_name())?,
                    facemesh: read_optional(crate::nets::Network::FaceMesh.file_name())?,
                },
                texture: read(texture.file_name())?,
                texture_choice: texture,
            },
            device,
        )
    }
}

/// Refuses a texture model made for another face model: its maps must have one square tile
/// per tile of the face model's UV atlas (ICT: the face and the back of the head side by side),
/// or the fit would paint the wrong texels without a word.
pub fn check_texture_matches(face: &FaceModel, texture: &TextureModel, name: &str) -> Result<()> {
    let (height, width) = texture.size();
    let tiles = face.uv_atlas().aspect();
    if width != height * tiles {
        return Err(Error::model(
            name,
            format!(
                "the {} texture model makes {width}x{height} maps ({}:1), but the face model's UV atlas has {tiles} tiles side by side: a texture model made for another face model",
                texture.name(),
                width / height.max(1)
            ),
        ));
    }
    Ok(())
}

/// The models folder: `$GANFIT_MODELS`, else `models/` in the current directory.
#[cfg(not(target_arch = "wasm32"))]
pub fn default_dir() -> std::path::PathBuf {
    std::env::var_os("GANFIT_MODELS")
        .map(Into::into)
        .unwrap_or_else(|| "models".into())
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;

    use super::*;
    use crate::face_model::format::{ModelContents, Precision, encode};

    #[test]
    fn a_texture_model_for_another_uv_atlas_is_refused() {
        let device = crate::device::cpu();
        let bytes = encode(&ModelContents::tiny(), Precision::F32).unwrap();
        let face =
            FaceModel::from_bytes(&bytes, "tiny.gfm", &device, RegionSelection::default()).unwrap();
        let tiles = face.uv_atlas().aspect();
        let pca = |aspect: usize| {
            let n = 4 * 4 * aspect * 3;
            TextureModel::Pca(PcaTexture::new(
                Tensor::zeros([1, n], &device),
                Tensor::zeros([2, n], &device),
                4,
                aspect,
            ))
        };
        assert!(check_texture_matches(&face, &pca(tiles), "fits.bpk").is_ok());
        let err = check_texture_matches(&face, &pca(tiles + 1), "other.bpk").unwrap_err();
        assert!(
            err.to_string().contains("other.bpk") && err.to_string().contains("another face model"),
            "{err}"
        );
    }
}
