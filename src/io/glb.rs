//! Binary glTF 2.0 (`.glb`) of a [`MeshData`], with its texture embedded as PNG: one mesh, one
//! node, one material (base colour texture), positions in metres; optionally with morph targets
//! (blendshapes), named in `mesh.extras.targetNames` as three.js and Blender read them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gltf::json;
use json::validation::Checked::Valid;
use json::validation::USize64;

use super::mesh::{METRES_PER_MM, MeshData, png_bytes};
use crate::error::{Error, Result};

/// Appends `bytes` to the binary chunk, 4-byte aligned, and adds a view of them.
fn push_view(
    root: &mut json::Root,
    bin: &mut Vec<u8>,
    bytes: &[u8],
    target: Option<json::buffer::Target>,
) -> json::Index<json::buffer::View> {
    bin.resize(bin.len().next_multiple_of(4), 0);
    let offset = bin.len();
    bin.extend_from_slice(bytes);
    root.push(json::buffer::View {
        buffer: json::Index::new(0),
        byte_length: USize64::from(bytes.len()),
        byte_offset: Some(USize64::from(offset)),
        byte_stride: None,
        extensions: None,
        extras: Default::default(),
        name: None,
        target: target.map(Valid),
    })
}

fn push_accessor(
    root: &mut json::Root,
    view: json::Index<json::buffer::View>,
    count: usize,
    component: json::accessor::ComponentType,
    type_: json::accessor::Type,
    bounds: Option<(Vec<f32>, Vec<f32>)>,
) -> json::Index<json::Accessor> {
    let (min, max) = bounds.map_or((None, None), |(lo, hi)| {
        (Some(json::Value::from(lo)), Some(json::Value::from(hi)))
    });
    root.push(json::Accessor {
        buffer_view: Some(view),
        byte_offset: None,
        count: USize64::from(count),
        component_type: Valid(json::accessor::GenericComponentType(component)),
        extensions: None,
        extras: Default::default(),
        type_: Valid(type_),
        min,
        max,
        name: None,
        normalized: false,
        sparse: None,
    })
}

fn bounds<const N: usize>(values: &[[f32; N]]) -> (Vec<f32>, Vec<f32>) {
    let mut lo = vec![f32::INFINITY; N];
    let mut hi = vec![f32::NEG_INFINITY; N];
    for v in values {
        for c in 0..N {
            lo[c] = lo[c].min(v[c]);
            hi[c] = hi[c].max(v[c]);
        }
    }
    (lo, hi)
}

/// Morph targets of a mesh: each one a displacement of every geometric vertex.
#[derive(Debug, Clone)]
pub struct MorphTargets {
    /// One name per target (`mesh.extras.targetNames`).
    pub names: Vec<String>,
    /// `[targets][V]` displacements, mm, per geometric vertex of the [`MeshData`].
    pub deltas: Vec<Vec<[f32; 3]>>,
    /// The default weight of each target (`mesh.weights`).
    pub weights: Vec<f32>,
    /// Store the displacements as normalised 16-bit integers of metres (`KHR_mesh_quantization`,
    /// then listed as required): steps of 1/32767 m ≈ 30.5 µm, half the bytes of f32. three.js,
    /// Babylon.js, Blender (2.90+) and Unity's glTFast read it; a reader without the extension
    /// refuses the file, so f32 stays available.
    pub quantized: bool,
}

/// The quantised-delta extension's name.
pub const MESH_QUANTIZATION: &str = "KHR_mesh_quantization";

/// Displacements below this (mm) are left out of a target's f32 sparse accessor (quantised
/// ones leave out what rounds to zero, under 15 µm): 10 µm on a head
/// some 200 mm across is far below what a render shows, and ICT's shapes spread such tails
/// over much of the head (its f16 rounding alone leaves specks of ~0.02 mm on vertices a
/// shape does not move).
pub const MORPH_EPSILON_MM: f32 = 1e-2;

/// The GLB bytes of `mesh`, textured with `texture` when given.
pub fn write(mesh: &MeshData, texture: Option<&image::RgbImage>, name: &str) -> Result<Vec<u8>> {
    write_with_morphs(mesh, texture, name, None)
}

/// A performance of the head (glTF `animations`): the morph-target weights and the node's
/// rotation, one key per frame, linear between keys.
#[derive(Debug, Clone, PartialEq)]
pub struct RigAnimation {
    pub name: String,
    /// Seconds, ascending.
    pub times: Vec<f32>,
    /// Per key, one weight per morph target.
    pub weights: Vec<Vec<f32>>,
    /// Per key, the head's rotation as a unit quaternion (x, y, z, w).
    pub rotations: Vec<[f32; 4]>,
}

/// [`write`] with morph targets: each a sparse accessor over the render vertices it moves.
pub fn write_with_morphs(
    mesh: &MeshData,
    texture: Option<&image::RgbImage>,
    name: &str,
    morphs: Option<&MorphTargets>,
) -> Result<Vec<u8>> {
    write_animated(mesh, texture, name, morphs, None)
}

/// [`write_with_morphs`] with an animation of the targets' weights and the head's rotation.
pub fn write_animated(
    mesh: &MeshData,
    texture: Option<&image::RgbImage>,
    name: &str,
    morphs: Option<&MorphTargets>,
    animation: Option<&RigAnimation>,
) -> Result<Vec<u8>> {
    use json::accessor::{ComponentType, Type};
    use json::buffer::Target;
    mesh.check()?;
    if let Some(m) = morphs {
        let v = mesh.positions.len();
        if m.names.len() != m.deltas.len()
            || m.weights.len() != m.deltas.len()
            || m.deltas.iter().any(|d| d.len() != v)
        {
            return Err(Error::Invalid(format!(
                "morph targets: {} names, {} weights and {} targets for a mesh of {v} vertices",
                m.names.len(),
                m.weights.len(),
                m.deltas.len()
            )));
        }
    }
    if let Some(a) = animation {
        let targets = morphs.map_or(0, |m| m.deltas.len());
        let keys = a.times.len();
        if keys == 0
            || a.weights.len() != keys
            || a.rotations.len() != keys
            || a.weights.iter().any(|w| w.len() != targets)
            || a.times.windows(2).any(|t| t[0] >= t[1])
            || a.times.iter().any(|t| !t.is_finite())
        {
            return Err(Error::Invalid(format!(
                "animation: {keys} ascending times, as many weight rows of {targets} and rotations \
                 expected ({} weight rows, {} rotations)",
                a.weights.len(),
                a.rotations.len()
            )));
        }
    }
    let positions = mesh.render_positions_m();
    let normals = mesh.render_normals();
    let mut root = json::Root {
        asset: json::Asset {
            generator: Some(format!("ganfit {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut bin = Vec::new();
    let float_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();

    let view = push_view(
        &mut root,
        &mut bin,
        &float_bytes(positions.as_flattened()),
        Some(Target::ArrayBuffer),
    );
    let position_accessor = push_accessor(
        &mut root,
        view,
        positions.len(),
        ComponentType::F32,
        Type::Vec3,
        Some(bounds(&positions)),
    );
    let view = push_view(
        &mut root,
        &mut bin,
        &float_bytes(normals.as_flattened()),
        Some(Target::ArrayBuffer),
    );
    let normal_accessor = push_accessor(
        &mut root,
        view,
        normals.len(),
        ComponentType::F32,
        Type::Vec3,
        None,
    );
    let view = push_view(
        &mut root,
        &mut bin,
        &float_bytes(mesh.uvs.as_flattened()),
        Some(Target::ArrayBuffer),
    );
    let uv_accessor = push_accessor(
        &mut root,
        view,
        mesh.uvs.len(),
        ComponentType::F32,
        Type::Vec2,
        None,
    );
    let indices: Vec<u8> = mesh
        .triangles
        .as_flattened()
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let view = push_view(
        &mut root,
        &mut bin,
        &indices,
        Some(Target::ElementArrayBuffer),
    );
    let index_accessor = push_accessor(
        &mut root,
        view,
        mesh.triangles.len() * 3,
        ComponentType::U32,
        Type::Scalar,
        None,
    );

    let base_color_texture = match texture {
        None => None,
        Some(image) => {
            let png = png_bytes(image)?;
            let view = push_view(&mut root, &mut bin, &png, None);
            let source = root.push(json::Image {
                buffer_view: Some(view),
                mime_type: Some(json::image::MimeType("image/png".into())),
                name: Some(format!("{name} texture")),
                uri: None,
                extensions: None,
                extras: Default::default(),
            });
            // Clamped: the face model's uv layout has islands up to the texture's border.
            let sampler = root.push(json::texture::Sampler {
                mag_filter: Some(Valid(json::texture::MagFilter::Linear)),
                min_filter: Some(Valid(json::texture::MinFilter::LinearMipmapLinear)),
                wrap_s: Valid(json::texture::WrappingMode::ClampToEdge),
                wrap_t: Valid(json::texture::WrappingMode::ClampToEdge),
                ..Default::default()
            });
            let index = root.push(json::Texture {
                name: None,
                sampler: Some(sampler),
                source,
                extensions: None,
                extras: Default::default(),
            });
            Some(json::texture::Info {
                index,
                tex_coord: 0,
                extensions: None,
                extras: Default::default(),
            })
        }
    };
    let material = root.push(json::Material {
        name: Some(name.to_string()),
        pbr_metallic_roughness: json::material::PbrMetallicRoughness {
            base_color_texture,
            metallic_factor: json::material::StrengthFactor(0.0),
            roughness_factor: json::material::StrengthFactor(0.8),
            ..Default::default()
        },
        ..Default::default()
    });
    let targets = morphs.map(|m| {
        m.deltas
            .iter()
            .map(|deltas| json::mesh::MorphTarget {
                positions: Some(push_morph(&mut root, &mut bin, mesh, deltas, m.quantized)),
                normals: None,
                tangents: None,
            })
            .collect::<Vec<_>>()
    });
    if morphs.is_some_and(|m| m.quantized) {
        root.extensions_used.push(MESH_QUANTIZATION.to_string());
        root.extensions_required.push(MESH_QUANTIZATION.to_string());
    }
    let primitive = json::mesh::Primitive {
        attributes: BTreeMap::from([
            (Valid(json::mesh::Semantic::Positions), position_accessor),
            (Valid(json::mesh::Semantic::Normals), normal_accessor),
            (Valid(json::mesh::Semantic::TexCoords(0)), uv_accessor),
        ]),
        extensions: None,
        extras: Default::default(),
        indices: Some(index_accessor),
        material: Some(material),
        mode: Valid(json::mesh::Mode::Triangles),
        targets,
    };
    let extras = match morphs {
        None => None,
        Some(m) => Some(
            serde_json::value::to_raw_value(&serde_json::json!({ "targetNames": m.names }))
                .map_err(|e| Error::Invalid(format!("glTF extras: {e}")))?,
        ),
    };
    let mesh_index = root.push(json::Mesh {
        extensions: None,
        extras,
        name: Some(name.to_string()),
        primitives: vec![primitive],
        weights: morphs.map(|m| m.weights.clone()),
    });
    let node = root.push(json::Node {
        mesh: Some(mesh_index),
        name: Some(name.to_string()),
        ..Default::default()
    });
    if let Some(a) = animation {
        push_animation(&mut root, &mut bin, node, a);
    }
    let scene = root.push(json::Scene {
        extensions: None,
        extras: Default::default(),
        name: None,
        nodes: vec![node],
    });
    root.scene = Some(scene);
    bin.resize(bin.len().next_multiple_of(4), 0);
    root.push(json::Buffer {
        byte_length: USize64::from(bin.len()),
        extensions: None,
        extras: Default::default(),
        name: None,
        uri: None,
    });

    let json_text =
        json::serialize::to_vec(&root).map_err(|e| Error::Invalid(format!("glTF JSON: {e}")))?;
    let glb = gltf::binary::Glb {
        header: gltf::binary::Header {
            magic: *b"glTF",
            version: 2,
            length: 0,
        },
        json: Cow::Owned(json_text),
        bin: Some(Cow::Owned(bin)),
    };
    glb.to_vec()
        .map_err(|e| Error::Invalid(format!("GLB container: {e}")))
}

/// `animation` as two channels of `node`: its morph weights and its rotation.
fn push_animation(
    root: &mut json::Root,
    bin: &mut Vec<u8>,
    node: json::Index<json::Node>,
    animation: &RigAnimation,
) {
    use json::accessor::{ComponentType, Type};
    use json::animation::{Channel, Interpolation, Property, Sampler, Target};
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let keys = animation.times.len();
    let view = push_view(root, bin, &floats(&animation.times), None);
    let first = animation.times[0];
    let last = animation.times[keys - 1];
    let times = push_accessor(
        root,
        view,
        keys,
        ComponentType::F32,
        Type::Scalar,
        Some((vec![first], vec![last])),
    );
    let weights: Vec<f32> = animation.weights.concat();
    let view = push_view(root, bin, &floats(&weights), None);
    let weights = push_accessor(
        root,
        view,
        weights.len(),
        ComponentType::F32,
        Type::Scalar,
        None,
    );
    let view = push_view(root, bin, &floats(animation.rotations.as_flattened()), None);
    let rotations = push_accessor(root, view, keys, ComponentType::F32, Type::Vec4, None);
    let channel = |sampler: u32, path: Property| Channel {
        sampler: json::Index::new(sampler),
        target: Target {
            extensions: None,
            extras: Default::default(),
            node,
            path: Valid(path),
        },
        extensions: None,
        extras: Default::default(),
    };
    let sampler = |output| Sampler {
        extensions: None,
        extras: Default::default(),
        input: times,
        interpolation: Valid(Interpolation::Linear),
        output,
    };
    root.push(json::Animation {
        extensions: None,
        extras: Default::default(),
        channels: vec![
            channel(0, Property::MorphTargetWeights),
            channel(1, Property::Rotation),
        ],
        name: Some(animation.name.clone()),
        samplers: vec![sampler(weights), sampler(rotations)],
    });
}

/// A morph target's POSITION accessor: zeros, with a sparse part holding the render vertices
/// that move (ascending, as glTF requires), metres: f32, or normalised i16 when `quantized`.
fn push_morph(
    root: &mut json::Root,
    bin: &mut Vec<u8>,
    mesh: &MeshData,
    deltas: &[[f32; 3]],
    quantized: bool,
) -> json::Index<json::Accessor> {
    use json::accessor::{ComponentType, IndexComponentType, Type, sparse};
    /// What a normalised i16 holds at full scale: the glTF rule is `max(q / 32767, -1)`.
    const I16_FULL: f32 = 32767.0;
    // As stored: metres, or the integers q of metres ≈ q / 32767.
    let stored = |d: [f32; 3]| -> [f32; 3] {
        let metres = d.map(|c| c * METRES_PER_MM);
        if quantized {
            metres.map(|c| (c * I16_FULL).round().clamp(-I16_FULL, I16_FULL))
        } else {
            metres
        }
    };
    let moved: Vec<(u32, [f32; 3])> = mesh
        .position_of
        .iter()
        .enumerate()
        .map(|(r, &v)| (r as u32, deltas[v as usize]))
        .filter(|(_, d)| quantized || d.iter().any(|c| c.abs() >= MORPH_EPSILON_MM))
        .map(|(r, d)| (r, stored(d)))
        .filter(|(_, d)| d.iter().any(|&c| c != 0.0))
        .collect();
    // min and max over every vertex, the unmoved (zero) ones included, of the values as stored
    // (for integers, glTF wants the integers themselves).
    let mut lo = [0f32; 3];
    let mut hi = [0f32; 3];
    for (_, d) in &moved {
        for c in 0..3 {
            lo[c] = lo[c].min(d[c]);
            hi[c] = hi[c].max(d[c]);
        }
    }
    let bound = |v: [f32; 3]| -> json::Value {
        if quantized {
            json::Value::from(v.map(|c| c as i64).to_vec())
        } else {
            json::Value::from(v.to_vec())
        }
    };
    // A target that moves nothing still gets one (zero) sparse entry: glTF allows an accessor
    // with neither, but some readers (the gltf crate among them) require one of the two.
    let moved = if moved.is_empty() {
        vec![(0, [0.0; 3])]
    } else {
        moved
    };
    // 16-bit indices where every render vertex fits (the model's head has ~12k).
    let narrow = mesh.position_of.len() <= usize::from(u16::MAX);
    let indices: Vec<u8> = if narrow {
        moved
            .iter()
            .flat_map(|&(r, _)| (r as u16).to_le_bytes())
            .collect()
    } else {
        moved.iter().flat_map(|(r, _)| r.to_le_bytes()).collect()
    };
    let index_type = if narrow {
        ComponentType::U16
    } else {
        ComponentType::U32
    };
    let values: Vec<u8> = moved
        .iter()
        .flat_map(|(_, d)| d.to_vec())
        .flat_map(|c| {
            if quantized {
                (c as i16).to_le_bytes().to_vec()
            } else {
                c.to_le_bytes().to_vec()
            }
        })
        .collect();
    let indices = push_view(root, bin, &indices, None);
    let values = push_view(root, bin, &values, None);
    let sparse = sparse::Sparse {
        count: USize64::from(moved.len()),
        indices: sparse::Indices {
            buffer_view: indices,
            byte_offset: USize64(0),
            component_type: Valid(IndexComponentType(index_type)),
            extensions: None,
            extras: Default::default(),
        },
        values: sparse::Values {
            buffer_view: values,
            byte_offset: USize64(0),
            extensions: None,
            extras: Default::default(),
        },
        extensions: None,
        extras: Default::default(),
    };
    root.push(json::Accessor {
        buffer_view: None,
        byte_offset: None,
        count: USize64::from(mesh.position_of.len()),
        component_type: Valid(json::accessor::GenericComponentType(if quantized {
            ComponentType::I16
        } else {
            ComponentType::F32
        })),
        extensions: None,
        extras: Default::default(),
        type_: Valid(Type::Vec3),
        min: Some(bound(lo)),
        max: Some(bound(hi)),
        name: None,
        normalized: quantized,
        sparse: Some(sparse),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mesh::tests::split_square;

    #[test]
    fn glb_reads_back_with_the_gltf_crate() {
        let mesh = split_square();
        let texture =
            image::RgbImage::from_fn(4, 2, |x, y| image::Rgb([60 * x as u8, 100 * y as u8, 9]));
        let bytes = write(&mesh, Some(&texture), "square").unwrap();
        let (doc, buffers, images) = gltf::import_slice(&bytes).unwrap();
        let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
        let reader = prim.reader(|b| Some(&buffers[b.index()]));
        let positions: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
        assert_eq!(positions.len(), 6);
        assert!((positions[2][0] - 0.01).abs() < 1e-7, "metres");
        let uvs: Vec<[f32; 2]> = reader.read_tex_coords(0).unwrap().into_f32().collect();
        assert_eq!(uvs, mesh.uvs);
        let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
        assert_eq!(indices, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(images.len(), 1);
        assert_eq!((images[0].width, images[0].height), (4, 2));
        assert_eq!(&images[0].pixels[..3], &[0, 0, 9]);
    }

    #[test]
    fn morph_targets_read_back_sparse_and_named() {
        for quantized in [false, true] {
            morph_targets_read_back(quantized);
        }
    }

    /// Each morph target's displacements per render vertex, metres, read from the sparse
    /// accessors by hand: the `gltf` crate refuses `KHR_mesh_quantization`.
    fn read_morphs(bytes: &[u8]) -> (gltf::Gltf, Vec<Vec<[f32; 3]>>) {
        let doc = gltf::Gltf::from_slice_without_validation(bytes).unwrap();
        let blob = doc.blob.clone().unwrap();
        let view = |v: gltf::buffer::View| &blob[v.offset()..v.offset() + v.length()];
        let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
        let targets = prim
            .morph_targets()
            .map(|t| {
                let accessor = t.positions().unwrap();
                let sparse = accessor.sparse().unwrap();
                let mut out = vec![[0f32; 3]; accessor.count()];
                let indices = view(sparse.indices().view());
                let values = view(sparse.values().view());
                for k in 0..sparse.count() {
                    let r = u16::from_le_bytes([indices[2 * k], indices[2 * k + 1]]) as usize;
                    out[r] = std::array::from_fn(|c| match accessor.data_type() {
                        gltf::accessor::DataType::I16 => {
                            let at = 6 * k + 2 * c;
                            assert!(accessor.normalized());
                            f32::from(i16::from_le_bytes([values[at], values[at + 1]])) / 32767.0
                        }
                        _ => {
                            let at = 12 * k + 4 * c;
                            f32::from_le_bytes(values[at..at + 4].try_into().unwrap())
                        }
                    });
                }
                out
            })
            .collect();
        (doc, targets)
    }

    fn morph_targets_read_back(quantized: bool) {
        let mesh = split_square();
        let mut lift = vec![[0.0; 3]; mesh.positions.len()];
        lift[1] = [0.0, 0.0, 2.0];
        let morphs = MorphTargets {
            names: vec!["lift".into(), "still".into()],
            deltas: vec![lift, vec![[0.0; 3]; mesh.positions.len()]],
            weights: vec![0.25, 0.0],
            quantized,
        };
        let bytes = write_with_morphs(&mesh, None, "square", Some(&morphs)).unwrap();
        let (doc, targets) = read_morphs(&bytes);
        let gmesh = doc.meshes().next().unwrap();
        assert_eq!(gmesh.weights(), Some(&[0.25, 0.0][..]));
        let extras = gmesh.extras().as_ref().unwrap().get();
        assert!(
            extras.contains(r#""targetNames":["lift","still"]"#),
            "{extras}"
        );
        assert_eq!(targets.len(), 2);
        // A quantised delta is within half a step (1/65534 m) of the true one.
        let tolerance = if quantized { 0.5 / 32767.0 } else { 1e-9 };
        for (r, &v) in mesh.position_of.iter().enumerate() {
            let expected = if v == 1 { 0.002 } else { 0.0 };
            assert!(
                (targets[0][r][2] - expected).abs() <= tolerance,
                "vertex {r}: {} (quantized {quantized})",
                targets[0][r][2]
            );
        }
        assert!(targets[1].iter().flatten().all(|&c| c == 0.0));
        assert_eq!(
            doc.extensions_required().any(|e| e == MESH_QUANTIZATION),
            quantized
        );
        if !quantized {
            // What any reader sees: the gltf crate's own morph reader agrees.
            let (doc, buffers, _) = gltf::import_slice(&bytes).unwrap();
            let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
            let reader = prim.reader(|b| Some(&buffers[b.index()]));
            let read: Vec<Vec<[f32; 3]>> = reader
                .read_morph_targets()
                .map(|(positions, _, _)| positions.unwrap().collect())
                .collect();
            assert_eq!(read, targets);
        }
        let wrong = MorphTargets {
            weights: vec![0.0],
            ..morphs
        };
        assert!(write_with_morphs(&mesh, None, "square", Some(&wrong)).is_err());
    }
}
