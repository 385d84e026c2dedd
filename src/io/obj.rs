//! Wavefront OBJ: a reader for the polygon meshes the face model is built from, and the
//! OBJ + MTL writer of [`MeshData`].

use std::fmt::Write as _;

use super::mesh::{METRES_PER_MM, MeshData};
use crate::error::{Error, Result};

/// One polygon corner: position index and, when the file gives one, texture coordinate index
/// (both 0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corner {
    pub position: u32,
    pub uv: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub corners: Vec<Corner>,
    /// Index into [`ObjMesh::materials`] of the `usemtl` in force, if any.
    pub material: Option<u32>,
}

/// What an OBJ file holds, as far as the face model needs it (`v`, `vt`, `f`, `usemtl`);
/// other statements (`vn`, `g`, `s`, `mtllib`, ...) are skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjMesh {
    pub positions: Vec<[f64; 3]>,
    pub uvs: Vec<[f64; 2]>,
    pub polygons: Vec<Polygon>,
    /// Material names in order of first use.
    pub materials: Vec<String>,
}

/// Which statements to read: morph targets need only their positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Positions,
    Everything,
}

fn numbers<const N: usize>(
    fields: &mut std::str::SplitAsciiWhitespace,
    what: &str,
) -> std::result::Result<[f64; N], String> {
    let mut out = [0.0; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let field = fields
            .next()
            .ok_or_else(|| format!("`{what}` needs {N} numbers, found {i}"))?;
        *slot = field
            .parse::<f64>()
            .map_err(|_| format!("`{what}`: {field:?} is not a number"))?;
        if !slot.is_finite() {
            return Err(format!("`{what}`: {field:?} is not finite"));
        }
    }
    Ok(out)
}

/// OBJ indices are 1-based, or negative counting back from the last element defined so far.
fn index(field: &str, defined: usize, what: &str) -> std::result::Result<u32, String> {
    let i: i64 = field
        .parse()
        .map_err(|_| format!("face corner: {what} index {field:?} is not an integer"))?;
    let resolved = match i {
        0 => return Err(format!("face corner: {what} index 0 (OBJ counts from 1)")),
        i if i > 0 => i - 1,
        i => defined as i64 + i,
    };
    u32::try_from(resolved)
        .map_err(|_| format!("face corner: {what} index {i} refers before the first one"))
}

fn corner(field: &str, positions: usize, uvs: usize) -> std::result::Result<Corner, String> {
    let mut parts = field.split('/');
    let position = index(parts.next().unwrap_or(""), positions, "vertex")?;
    let uv = match parts.next() {
        None | Some("") => None,
        Some(t) => Some(index(t, uvs, "texture coordinate")?),
    };
    Ok(Corner { position, uv })
}

/// Parses OBJ text; `name` labels errors, which give the line number and what is wrong.
pub fn parse(bytes: &[u8], name: &str, read: Read) -> Result<ObjMesh> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::model(
            name,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let mut mesh = ObjMesh::default();
    let mut material = None;
    for (line_number, line) in text.lines().enumerate() {
        let at = |reason: String| Error::model(name, format!("line {}: {reason}", line_number + 1));
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("v") => mesh
                .positions
                .push(numbers::<3>(&mut fields, "v").map_err(at)?),
            Some("vt") if read == Read::Everything => {
                mesh.uvs.push(numbers::<2>(&mut fields, "vt").map_err(at)?)
            }
            Some("usemtl") if read == Read::Everything => {
                let m = fields
                    .next()
                    .ok_or_else(|| at("`usemtl` without a name".into()))?;
                let i = mesh
                    .materials
                    .iter()
                    .position(|x| x == m)
                    .unwrap_or_else(|| {
                        mesh.materials.push(m.to_string());
                        mesh.materials.len() - 1
                    });
                material = Some(i as u32);
            }
            Some("f") if read == Read::Everything => {
                let corners = fields
                    .map(|f| corner(f, mesh.positions.len(), mesh.uvs.len()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(at)?;
                if corners.len() < 3 {
                    return Err(at(format!(
                        "a face needs at least 3 corners, found {}",
                        corners.len()
                    )));
                }
                mesh.polygons.push(Polygon { corners, material });
            }
            _ => {}
        }
    }
    let (np, nt) = (mesh.positions.len(), mesh.uvs.len());
    for (p, polygon) in mesh.polygons.iter().enumerate() {
        for c in &polygon.corners {
            if c.position as usize >= np || c.uv.is_some_and(|t| t as usize >= nt) {
                return Err(Error::model(
                    name,
                    format!(
                        "face {p} refers to vertex {} / texture coordinate {:?}, but the file has {np} vertices and {nt} texture coordinates",
                        c.position + 1,
                        c.uv.map(|t| t + 1)
                    ),
                ));
            }
        }
    }
    Ok(mesh)
}

/// The text of an OBJ file and of the MTL file it names.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjFiles {
    pub obj: String,
    pub mtl: String,
}

/// Writes `mesh` as OBJ (positions in metres, shared between seam copies) with an MTL whose
/// one material maps `texture_file` (e.g. `face.png`, next to the OBJ) as diffuse colour.
/// OBJ's texture v runs up the image, so v = 1 − t.
pub fn write(mesh: &MeshData, name: &str, texture_file: Option<&str>) -> Result<ObjFiles> {
    mesh.check()?;
    let mut obj = String::with_capacity(64 * mesh.uvs.len());
    let _ = writeln!(
        obj,
        "# ganfit face mesh, positions in metres\nmtllib {name}.mtl\no {name}"
    );
    for p in &mesh.positions {
        let [x, y, z] = p.map(|c| c * METRES_PER_MM);
        let _ = writeln!(obj, "v {x} {y} {z}");
    }
    for [s, t] in &mesh.uvs {
        let _ = writeln!(obj, "vt {s} {}", 1.0 - t);
    }
    for [x, y, z] in &mesh.normals {
        let _ = writeln!(obj, "vn {x} {y} {z}");
    }
    let _ = writeln!(obj, "usemtl {name}\ns 1");
    for tri in &mesh.triangles {
        obj.push('f');
        for &r in tri {
            let p = mesh.position_of[r as usize] + 1;
            let _ = write!(obj, " {p}/{}/{p}", r + 1);
        }
        obj.push('\n');
    }
    let mut mtl = format!(
        "# ganfit face material\nnewmtl {name}\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
    );
    if let Some(file) = texture_file {
        let _ = writeln!(mtl, "map_Kd {file}");
    }
    Ok(ObjFiles { obj, mtl })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mesh::tests::split_square;

    const QUAD: &str = "# a quad and a triangle\nmtllib x.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0.5\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl A\nf 1/1 2/2 3/3 4/4\nusemtl B\nf -4/1 -2/3 -1/4\n";

    #[test]
    fn reads_polygons_materials_and_relative_indices() {
        let m = parse(QUAD.as_bytes(), "quad.obj", Read::Everything).unwrap();
        assert_eq!(m.positions.len(), 4);
        assert_eq!(m.positions[3], [0.0, 1.0, 0.5]);
        assert_eq!(m.uvs.len(), 4);
        assert_eq!(m.materials, vec!["A", "B"]);
        assert_eq!(m.polygons.len(), 2);
        assert_eq!(m.polygons[0].corners.len(), 4);
        assert_eq!(m.polygons[1].material, Some(1));
        let c: Vec<u32> = m.polygons[1].corners.iter().map(|c| c.position).collect();
        assert_eq!(c, vec![0, 2, 3]);
        let only = parse(QUAD.as_bytes(), "quad.obj", Read::Positions).unwrap();
        assert_eq!(only.positions, m.positions);
        assert!(only.polygons.is_empty());
    }

    fn reason(text: &str) -> String {
        match parse(text.as_bytes(), "bad.obj", Read::Everything) {
            Err(Error::ModelFile { path, reason }) => {
                assert_eq!(path, "bad.obj");
                reason
            }
            other => panic!("{text:?} should fail, got {other:?}"),
        }
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        assert_eq!(reason("v 1 2\n"), "line 1: `v` needs 3 numbers, found 2");
        assert!(reason("v 0 0 0\nv 1 x 0\n").starts_with("line 2: `v`: \"x\" is not a number"));
        assert!(reason("v 0 0 0\nv nan 0 0\n").contains("not finite"));
        assert!(reason("v 0 0 0\nv 1 0 0\nf 1 2\n").contains("at least 3 corners"));
        assert!(reason("v 0 0 0\nf 1 0 1\n").contains("index 0"));
        assert!(reason("v 0 0 0\nf 1 -3 1\n").contains("before the first"));
        assert!(reason("v 0 0 0\nf 1 2 3\n").contains("the file has 1 vertices"));
        assert!(reason("v 0 0 0\nf 1/a 1 1\n").contains("not an integer"));
        assert!(reason("usemtl\n").contains("without a name"));
        match parse(&[b'v', b' ', 0xff, b'\n'], "bin.obj", Read::Positions) {
            Err(Error::ModelFile { reason, .. }) => assert!(reason.contains("not UTF-8")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn written_obj_reads_back_with_flipped_v_and_metres() {
        let mesh = split_square();
        let files = write(&mesh, "face", Some("face.png")).unwrap();
        assert!(files.mtl.contains("map_Kd face.png"));
        assert!(files.obj.contains("mtllib face.mtl"));
        let back = parse(files.obj.as_bytes(), "face.obj", Read::Everything).unwrap();
        assert_eq!(back.positions.len(), 4);
        assert!((back.positions[2][0] - 0.01).abs() < 1e-9);
        for (i, uv) in back.uvs.iter().enumerate() {
            assert!((uv[1] - (1.0 - mesh.uvs[i][1] as f64)).abs() < 1e-9);
        }
        let corners: Vec<(u32, Option<u32>)> = back
            .polygons
            .iter()
            .flat_map(|p| p.corners.iter().map(|c| (c.position, c.uv)))
            .collect();
        assert_eq!(
            corners,
            vec![
                (0, Some(0)),
                (1, Some(1)),
                (2, Some(2)),
                (0, Some(3)),
                (2, Some(4)),
                (3, Some(5))
            ]
        );
    }
}
