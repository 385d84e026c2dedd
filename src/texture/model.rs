//! The texture model the fitter optimises: GANFit's GAN generator, or the linear PCA model of
//! classic 3DMMs (for ablation). Both map a parameter row to a UV albedo map in [0, 1].

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::pggan::{Generator, Stage};
use crate::error::{Error, Result};

/// Mean + principal components of the corpus textures, each component scaled by its standard
/// deviation, so that unit-variance coefficients are the model's prior.
#[derive(Module, Debug)]
pub struct PcaTexture {
    /// `[1, H·W·3]`, RGB in [0, 1], rows of the UV map first.
    pub mean: Param<Tensor<2>>,
    /// `[k, H·W·3]`.
    pub basis: Param<Tensor<2>>,
    /// Height H; the width W is `aspect` times more.
    #[module(skip)]
    pub resolution: usize,
    #[module(skip)]
    pub aspect: usize,
}

const PCA_KEY: &str = "pca_texture";
/// Bounds on what a PCA file's metadata may declare (the shipped model: 128, 2, 40).
const MAX_PCA_RESOLUTION: usize = 2048;
const MAX_PCA_ASPECT: usize = 8;
const MAX_PCA_COMPONENTS: usize = 1024;

/// What a PCA texture file's metadata records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PcaShape {
    resolution: usize,
    aspect: usize,
    components: usize,
}

impl PcaTexture {
    pub fn new(mean: Tensor<2>, basis: Tensor<2>, resolution: usize, aspect: usize) -> Self {
        Self {
            mean: Param::from_tensor(mean),
            basis: Param::from_tensor(basis),
            resolution,
            aspect,
        }
    }

    /// Loads a PCA texture file (burnpack; metadata `pca_texture` = {resolution, components}).
    pub fn from_bytes(bytes: Vec<u8>, device: &Device, name: &str) -> Result<Self> {
        let json =
            crate::io::burnpack::metadata(&bytes, PCA_KEY, "ganfit PCA texture model", name)?;
        let shape: PcaShape = serde_json::from_str(&json)
            .map_err(|e| Error::model(name, format!("bad {PCA_KEY}: {e}")))?;
        // The metadata sizes what gets allocated: bound it, and refuse a shape whose values
        // (stored as f16 or wider) the file cannot hold.
        if !(1..=MAX_PCA_RESOLUTION).contains(&shape.resolution)
            || !(1..=MAX_PCA_ASPECT).contains(&shape.aspect)
            || !(1..=MAX_PCA_COMPONENTS).contains(&shape.components)
        {
            return Err(Error::model(
                name,
                format!(
                    "{PCA_KEY} {shape:?} is outside resolution 1-{MAX_PCA_RESOLUTION}, aspect \
                     1-{MAX_PCA_ASPECT}, components 1-{MAX_PCA_COMPONENTS}"
                ),
            ));
        }
        let n = shape.resolution * shape.resolution * shape.aspect * 3;
        if (shape.components as u64 + 1) * n as u64 * 2 > bytes.len() as u64 {
            return Err(Error::model(
                name,
                format!(
                    "{PCA_KEY} {shape:?} needs more values than the {}-byte file holds",
                    bytes.len()
                ),
            ));
        }
        let empty = Self::new(
            Tensor::zeros([1, n], device),
            Tensor::zeros([shape.components, n], device),
            shape.resolution,
            shape.aspect,
        );
        Ok(
            crate::io::burnpack::read(empty, bytes, name, "the file does not fit this generator")?
                .no_grad(),
        )
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let shape = serde_json::to_string(&PcaShape {
            resolution: self.resolution,
            aspect: self.aspect,
            components: self.components(),
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        crate::io::burnpack::write(self, true, &[(PCA_KEY, shape)], "pca texture")
    }

    pub fn components(&self) -> usize {
        self.basis.dims()[0]
    }

    pub fn uv_map(&self, coefficients: Tensor<2>) -> Tensor<4> {
        let [s, _] = coefficients.dims();
        let (h, w) = (self.resolution, self.resolution * self.aspect);
        (coefficients.matmul(self.basis.val()) + self.mean.val()).reshape([s, h, w, 3])
    }
}

/// Which texture model a fit uses.
#[derive(Debug)]
pub enum TextureModel {
    Gan(Generator),
    Pca(PcaTexture),
}

impl TextureModel {
    /// Length of a parameter row (latent 512 for the GAN, k coefficients for PCA).
    pub fn parameters(&self) -> usize {
        match self {
            TextureModel::Gan(g) => g.config().latent,
            TextureModel::Pca(p) => p.components(),
        }
    }

    /// UV map height and width.
    pub fn size(&self) -> (usize, usize) {
        match self {
            TextureModel::Gan(g) => (
                g.config().resolution,
                g.config().resolution * g.config().aspect,
            ),
            TextureModel::Pca(p) => (p.resolution, p.resolution * p.aspect),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            TextureModel::Gan(_) => "gan",
            TextureModel::Pca(_) => "pca",
        }
    }

    /// UV albedo maps `[S, H, W, 3]` in [0, 1] (NHWC, the renderer's texture layout) of
    /// parameter rows `[S, P]`. Differentiable in the parameters.
    pub fn uv_map(&self, params: Tensor<2>) -> Result<Tensor<4>> {
        let [_, p] = params.dims();
        if p != self.parameters() {
            return Err(Error::Invalid(format!(
                "texture parameters: {p} per row, the {} model takes {}",
                self.name(),
                self.parameters()
            )));
        }
        Ok(match self {
            TextureModel::Gan(g) => {
                let images = g.forward(params, Stage::full(g.config()));
                ((images.permute([0, 2, 3, 1]) + 1.0) * 0.5).clamp(0.0, 1.0)
            }
            TextureModel::Pca(pca) => pca.uv_map(params).clamp(0.0, 1.0),
        })
    }

    pub fn device(&self) -> Device {
        match self {
            TextureModel::Gan(g) => g.devices()[0].clone(),
            TextureModel::Pca(p) => p.mean.val().device(),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Tensor;

    use super::*;

    /// A tiny PCA model written with `metadata` in place of its own shape.
    fn file_claiming(metadata: &str) -> Vec<u8> {
        let device = crate::device::cpu();
        let n = 2 * 4 * 3;
        let model = PcaTexture::new(
            Tensor::zeros([1, n], &device),
            Tensor::zeros([1, n], &device),
            2,
            2,
        );
        crate::io::burnpack::write(&model, true, &[(PCA_KEY, metadata.to_string())], "pca").unwrap()
    }

    #[test]
    fn pca_metadata_cannot_claim_more_than_the_file_holds() {
        let device = crate::device::cpu();
        let honest = file_claiming(r#"{"resolution":2,"aspect":2,"components":1}"#);
        assert!(PcaTexture::from_bytes(honest, &device, "honest").is_ok());
        for (claim, why) in [
            (
                r#"{"resolution":2048,"aspect":2,"components":40}"#,
                "file holds",
            ),
            (
                r#"{"resolution":100000,"aspect":2,"components":40}"#,
                "outside",
            ),
            (r#"{"resolution":2,"aspect":0,"components":1}"#, "outside"),
            (
                r#"{"resolution":2,"aspect":2,"components":100000000}"#,
                "outside",
            ),
        ] {
            let err = PcaTexture::from_bytes(file_claiming(claim), &device, "t").unwrap_err();
            assert!(
                matches!(err, Error::ModelFile { .. }) && err.to_string().contains(why),
                "{claim}: {err}"
            );
        }
    }
}
