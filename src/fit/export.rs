//! The files a fit produces, as bytes: one definition for the CLI (which writes them into a
//! folder) and the web binding (which hands them to the page for download).

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};
use crate::face_model::{FaceModel, RegionSelection, UvAtlas};
use crate::fit::track::FrameTrack;
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
/// the texture. Built from photo 0's identity and expression. `quantized`: the displacements as
/// 16-bit integers (`KHR_mesh_quantization`, about half the file; see
/// [`glb::MorphTargets::quantized`]) rather than f32.
pub async fn blendshape_glb(
    face: &FaceModel,
    result: &FitResult,
    quantized: bool,
) -> Result<Vec<u8>> {
    rig_glb(
        face,
        result.texture.as_ref(),
        &RigParams::of(result)?,
        quantized,
        None,
    )
    .await
}

/// The animatable head of [`blendshape_glb`] with the eyeballs, the eye sockets and the mouth
/// interior (gums, tongue, teeth) that the face model file keeps, so that the head is not
/// hollow when the mouth opens or the eyes close. A fit uses only the face and the head, so
/// these regions are loaded for this export from `face_file` (the face model file's bytes) onto
/// the fit's device. The texture holds the fit's tiles (`texture`, laid out as `fitted`'s atlas) and
/// painted ones for the regions no photo shows: pink gums and tongue, ivory teeth, the eyes'
/// whites with a brown iris and a black pupil.
pub async fn avatar_glb(
    fitted: &FaceModel,
    face_file: &[u8],
    rig: &RigParams<'_>,
    texture: Option<&RgbImage>,
    quantized: bool,
) -> Result<Vec<u8>> {
    let whole = FaceModel::from_bytes(
        face_file,
        crate::face_model::DEFAULT_FILE_NAME,
        fitted.device(),
        RegionSelection::all(),
    )?;
    let texture = texture
        .map(|t| interior_atlas(t, fitted.uv_atlas(), whole.uv_atlas()))
        .transpose()?;
    rig_glb(&whole, texture.as_ref(), rig, quantized, None).await
}

/// What an animatable head is built from: one photo's identity and expression.
pub struct RigParams<'a> {
    pub identity: &'a [f32],
    /// The default weights.
    pub expression: &'a [f32],
}

impl<'a> RigParams<'a> {
    /// Photo 0's.
    pub fn of(result: &'a FitResult) -> Result<Self> {
        let params = &result
            .photos
            .first()
            .ok_or_else(|| Error::Invalid("the fit holds no photo".into()))?
            .params;
        Ok(Self {
            identity: &params.identity,
            expression: &params.expression,
        })
    }
}

/// Tracked frames as a performance of the person's head (`ganfit track`'s `track.glb`): the
/// rig of [`blendshape_glb`] for `identity` (16-bit displacements), with one animation keying
/// its blendshape weights and the head's rotation at each frame, `fps` frames a second. Frames
/// without a face hold the last pose, as the tracker reports them.
pub async fn tracked_glb(
    face: &FaceModel,
    identity: &[f32],
    texture: Option<&RgbImage>,
    frames: &[FrameTrack],
    fps: f32,
) -> Result<Vec<u8>> {
    let first = frames
        .first()
        .ok_or_else(|| Error::Invalid("no tracked frames to animate".into()))?;
    if !(fps.is_finite() && fps > 0.0) {
        return Err(Error::Invalid(format!(
            "fps: {fps}; a positive number is expected"
        )));
    }
    let animation = glb::RigAnimation {
        name: "track".into(),
        times: (0..frames.len()).map(|i| i as f32 / fps).collect(),
        weights: frames.iter().map(|f| f.expression.clone()).collect(),
        rotations: frames.iter().map(|f| quaternion(f.angles)).collect(),
    };
    let rig = RigParams {
        identity,
        expression: &first.expression,
    };
    rig_glb(face, texture, &rig, true, Some(&animation)).await
}

/// The unit quaternion (x, y, z, w) of R = Rz(roll) · Ry(yaw) · Rx(pitch), the fit's rotation.
pub fn quaternion(angles: [f32; 3]) -> [f32; 4] {
    let half = angles.map(|a| 0.5 * a);
    let axis = |i: usize| {
        let mut q = [0.0, 0.0, 0.0, half[i].cos()];
        q[i] = half[i].sin();
        q
    };
    let mul = |a: [f32; 4], b: [f32; 4]| {
        [
            a[3] * b[0] + a[0] * b[3] + a[1] * b[2] - a[2] * b[1],
            a[3] * b[1] - a[0] * b[2] + a[1] * b[3] + a[2] * b[0],
            a[3] * b[2] + a[0] * b[1] - a[1] * b[0] + a[2] * b[3],
            a[3] * b[3] - a[0] * b[0] - a[1] * b[1] - a[2] * b[2],
        ]
    };
    mul(mul(axis(2), axis(1)), axis(0))
}

/// `rig`'s identity as `face`'s rig, with its expression as the default weights.
async fn rig_glb(
    face: &FaceModel,
    texture: Option<&RgbImage>,
    rig: &RigParams<'_>,
    quantized: bool,
    animation: Option<&glb::RigAnimation>,
) -> Result<Vec<u8>> {
    let shapes = face.blendshapes(rig.identity).await?;
    if rig.expression.len() != shapes.deltas.len() {
        return Err(Error::Invalid(format!(
            "expression: {} weights, the face model has {} blendshapes",
            rig.expression.len(),
            shapes.deltas.len()
        )));
    }
    let mesh = face.mesh_data(shapes.neutral)?;
    let morphs = glb::MorphTargets {
        names: shapes.names,
        deltas: shapes.deltas,
        weights: rig.expression.to_vec(),
        quantized,
    };
    glb::write_animated(&mesh, texture, MESH_NAME, Some(&morphs), animation)
}

/// `fitted` (laid out as `fitted_atlas`) as a texture for `atlas`: each slot of the fit is
/// copied, every other one painted (see [`painted_texel`]).
fn interior_atlas(fitted: &RgbImage, fitted_atlas: &UvAtlas, atlas: &UvAtlas) -> Result<RgbImage> {
    let side = fitted.height();
    if side == 0 || fitted.width() != side * fitted_atlas.aspect() as u32 {
        return Err(Error::Invalid(format!(
            "texture: {} × {} is not {} square tiles",
            fitted.width(),
            fitted.height(),
            fitted_atlas.aspect()
        )));
    }
    let mut out = RgbImage::new(side * atlas.aspect() as u32, side);
    for (slot, material) in atlas.slots.iter().enumerate() {
        let source = fitted_atlas
            .slots
            .iter()
            .position(|s| s.material == material.material);
        for y in 0..side {
            for x in 0..side {
                let texel = match source {
                    Some(i) => *fitted.get_pixel(i as u32 * side + x, y),
                    None => painted_texel(&material.material, x, y, side),
                };
                out.put_pixel(slot as u32 * side + x, y, texel);
            }
        }
    }
    Ok(out)
}

/// A plausible colour for a texel of a region no photo shows, by ICT material. ICT maps the
/// eyeball's outer surface (`M_Sclera`) radially about the cornea's centre, the tile's centre
/// (measured on the mesh: 6.5 mm from the centre at r = 0.12 of a tile), so the visible iris
/// (6 mm) and pupil are painted there; `M_Iris`, the iris disc behind the cornea, is brown.
fn painted_texel(material: &str, x: u32, y: u32, side: u32) -> Rgb<u8> {
    let at = |c: u32| (c as f32 + 0.5) / side as f32 - 0.5;
    let (u, v) = (at(x), at(y));
    let r = u.hypot(v);
    let mix = |a: [f32; 3], b: [f32; 3], t: f32| {
        let t = t.clamp(0.0, 1.0);
        Rgb([0, 1, 2].map(|i| (a[i] + (b[i] - a[i]) * t).round() as u8))
    };
    let iris = |t: f32| {
        // Brown with faint radial streaks, darker towards its edge.
        let streak = 0.12 * (40.0 * v.atan2(u)).sin();
        mix([124.0, 84.0, 48.0], [72.0, 46.0, 28.0], t + streak)
    };
    match material {
        // Darker towards the throat.
        "M_GumsTongue" => mix([196.0, 104.0, 108.0], [120.0, 52.0, 60.0], v + 0.5),
        "M_Teeth" => mix([236.0, 230.0, 212.0], [206.0, 196.0, 170.0], v + 0.5),
        "M_Sclera" => match r {
            r if r < 0.045 => Rgb([12, 10, 10]),
            r if r < 0.105 => iris((r - 0.045) / 0.06),
            r if r < 0.12 => mix(
                [60.0, 40.0, 28.0],
                [226.0, 220.0, 212.0],
                (r - 0.105) / 0.015,
            ),
            // The white, a little redder towards the back of the eye.
            r => mix(
                [238.0, 234.0, 228.0],
                [216.0, 190.0, 186.0],
                (r - 0.12) / 0.5,
            ),
        },
        "M_Iris" => iris(0.5),
        _ => Rgb([128, 128, 128]),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::pose_init::euler_matrix;

    #[test]
    fn the_quaternion_is_the_fits_rotation() {
        for angles in [[0.3, -0.5, 0.2], [0.0, 1.2, 0.0], [-0.7, 0.1, 2.5]] {
            let [x, y, z, w] = quaternion(angles);
            assert!(((x * x + y * y + z * z + w * w) - 1.0).abs() < 1e-6);
            // The rotation matrix of the quaternion, row by row.
            let from_q = [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - z * w),
                    2.0 * (x * z + y * w),
                ],
                [
                    2.0 * (x * y + z * w),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - x * w),
                ],
                [
                    2.0 * (x * z - y * w),
                    2.0 * (y * z + x * w),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ];
            let r = euler_matrix(angles);
            for i in 0..3 {
                for j in 0..3 {
                    assert!(
                        (from_q[i][j] - r[i][j]).abs() < 1e-5,
                        "{angles:?}: {from_q:?} vs {r:?}"
                    );
                }
            }
        }
    }
}
