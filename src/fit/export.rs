//! The files a fit produces, as bytes: one definition for the CLI (which writes them into a
//! folder) and the web binding (which hands them to the page for download).

use crate::error::{Error, Result};
use crate::face_model::FaceModel;
use crate::fit::{FitResult, LossValues};
use crate::io::obj::ObjFiles;
use crate::io::{MeshData, glb, obj, png_bytes};

/// Base name of the mesh files (`face.obj`, `face.mtl`, `face.glb`).
pub const MESH_NAME: &str = "face";
/// The texture's file name, as the MTL file refers to it.
pub const TEXTURE_FILE: &str = "texture.png";

/// Every export of one fit.
pub struct FitExports {
    /// The reconstruction (seam-split for texture coordinates), millimetres.
    pub mesh: MeshData,
    /// Binary glTF with the texture embedded.
    pub glb: Vec<u8>,
    /// OBJ and the MTL naming [`TEXTURE_FILE`].
    pub obj: ObjFiles,
    /// The UV texture as PNG.
    pub texture_png: Option<Vec<u8>>,
    /// The serialised [`FitResult`] (`params.json`).
    pub params_json: String,
    /// The loss log as tab-separated values (`losses.tsv`).
    pub losses_tsv: String,
}

/// Builds every export of `result`, fitted with `face`.
pub fn exports(face: &FaceModel, result: &FitResult) -> Result<FitExports> {
    let mesh = face.mesh_data(result.shape.clone())?;
    let texture = result.texture.as_ref();
    let obj = obj::write(&mesh, MESH_NAME, texture.map(|_| TEXTURE_FILE))?;
    let glb = glb::write(&mesh, texture, MESH_NAME)?;
    let texture_png = texture.map(png_bytes).transpose()?;
    let params_json =
        serde_json::to_string_pretty(result).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(FitExports {
        mesh,
        glb,
        obj,
        texture_png,
        params_json,
        losses_tsv: losses_tsv(result),
    })
}

/// The fit as an animatable head: the GLB of the fitted identity with expression zeroed, the
/// model's 53 expression blendshapes as morph targets named by their ARKit names (see
/// [`crate::face_model::arkit_name`]), the fitted expression as their default weights, and
/// the texture. Built from photo 0's identity and expression.
pub async fn blendshape_glb(face: &FaceModel, result: &FitResult) -> Result<Vec<u8>> {
    let params = &result
        .photos
        .first()
        .ok_or_else(|| Error::Invalid("the fit holds no photo".into()))?
        .params;
    let rig = face.blendshapes(&params.identity).await?;
    let mesh = face.mesh_data(rig.neutral)?;
    let morphs = glb::MorphTargets {
        names: rig.names,
        deltas: rig.deltas,
        weights: params.expression.clone(),
    };
    glb::write_with_morphs(&mesh, result.texture.as_ref(), MESH_NAME, Some(&morphs))
}

fn losses_tsv(result: &FitResult) -> String {
    let names = LossValues::default().named().map(|(name, _)| name);
    let mut log = format!("stage\titeration\t{}\n", names.join("\t"));
    for e in &result.log {
        let values = e.losses.named().map(|(_, value)| value.to_string());
        log.push_str(&format!(
            "{:?}\t{}\t{}\n",
            e.stage,
            e.iteration,
            values.join("\t")
        ));
    }
    log
}
