//! Reading TensorFlow.js weights: the `weights_manifest.json` of a layers/"weights" model (an
//! array of groups) or the `weightsManifest` of a graph model, plus the binary shards it names.
//!
//! Pure: everything takes bytes, so the same code runs in the converter and in the browser.
//! Dequantisation follows `tf.io.decodeWeights` exactly: `q * scale + min` evaluated in double
//! precision and rounded once to f32 (what tfjs stores in its `Float32Array`), `float16` widened,
//! `int32` weights quantised to uint8/uint16 rounded to the nearest integer.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

#[derive(Debug, Clone, Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<f64>,
    min: Option<f64>,
}

/// One decoded weight: its tfjs shape (TensorFlow layout, e.g. conv filters `[kh, kw, in, out]`)
/// and values as f32 (int32 weights are exact in f32 for the small constants these models hold).
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// How a convolution node of a graph model was fused by the tfjs converter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvNode {
    pub name: String,
    pub op: String,
    pub strides: [usize; 2],
    pub padding: String,
    pub fused_ops: Vec<String>,
    /// The node's inputs: the tensor it convolves, the filter, then the fused ops' operands
    /// (bias, PReLU slopes).
    pub inputs: Vec<String>,
}

/// The parsed manifest and its shards: weights by name, plus (for graph models) the conv nodes
/// keyed by the name of their filter weight, so an architecture can check what it assumes.
#[derive(Debug, Clone, Default)]
pub struct TfjsWeights {
    /// Where the weights came from, for error messages.
    pub origin: String,
    weights: BTreeMap<String, Weight>,
    conv_nodes: BTreeMap<String, ConvNode>,
    /// Integer constants of the exported graph (shapes, axes): never network parameters.
    integers: BTreeSet<String>,
    taken: BTreeSet<String>,
}

fn bad(origin: &str, reason: impl Into<String>) -> Error {
    Error::model(origin, reason)
}

/// The shard file names a manifest refers to, in order (what the caller must read or fetch).
pub fn shard_paths(manifest_json: &[u8], origin: &str) -> Result<Vec<String>> {
    let (groups, _) = parse_manifest(manifest_json, origin)?;
    Ok(groups.into_iter().flat_map(|g| g.paths).collect())
}

fn parse_manifest(
    manifest_json: &[u8],
    origin: &str,
) -> Result<(Vec<Group>, Option<serde_json::Value>)> {
    let value: serde_json::Value =
        serde_json::from_slice(manifest_json).map_err(|e| bad(origin, format!("not JSON: {e}")))?;
    // A weights manifest is the bare array of groups; a graph model wraps it with the topology.
    let (groups, topology) = match value {
        serde_json::Value::Array(_) => (value, None),
        serde_json::Value::Object(mut map) => {
            let groups = map.remove("weightsManifest").ok_or_else(|| {
                bad(
                    origin,
                    "neither a weights manifest nor a model.json with weightsManifest",
                )
            })?;
            (groups, map.remove("modelTopology"))
        }
        _ => return Err(bad(origin, "unexpected JSON type")),
    };
    let groups: Vec<Group> =
        serde_json::from_value(groups).map_err(|e| bad(origin, format!("bad manifest: {e}")))?;
    Ok((groups, topology))
}

fn element_bytes(entry: &Entry, origin: &str) -> Result<usize> {
    if let Some(q) = &entry.quantization {
        return match q.dtype.as_str() {
            "uint8" => Ok(1),
            "uint16" | "float16" => Ok(2),
            other => Err(bad(
                origin,
                format!("{}: unsupported quantization dtype {other}", entry.name),
            )),
        };
    }
    match entry.dtype.as_str() {
        "float32" | "int32" => Ok(4),
        "bool" => Ok(1),
        other => Err(bad(
            origin,
            format!("{}: unsupported dtype {other}", entry.name),
        )),
    }
}

fn decode(entry: &Entry, bytes: &[u8], origin: &str) -> Result<Vec<f32>> {
    let is_int = entry.dtype == "int32";
    let round = |v: f64| if is_int { v.round() } else { v };
    let values = match &entry.quantization {
        Some(q) if q.dtype == "uint8" || q.dtype == "uint16" => {
            let (scale, min) = match (q.scale, q.min) {
                (Some(s), Some(m)) => (s, m),
                _ => {
                    return Err(bad(
                        origin,
                        format!("{}: quantization without scale/min", entry.name),
                    ));
                }
            };
            if q.dtype == "uint8" {
                bytes
                    .iter()
                    .map(|&b| round(b as f64 * scale + min) as f32)
                    .collect()
            } else {
                bytes
                    .chunks_exact(2)
                    .map(|c| round(u16::from_le_bytes([c[0], c[1]]) as f64 * scale + min) as f32)
                    .collect()
            }
        }
        Some(_) => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        None => match entry.dtype.as_str() {
            "float32" => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            "int32" => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            _ => bytes.iter().map(|&b| (b != 0) as u8 as f32).collect(),
        },
    };
    Ok(values)
}

fn attr_string(attr: &serde_json::Value, key: &str) -> Option<String> {
    attr.get(key)?
        .get("s")
        .and_then(|s| s.as_str())
        .and_then(base64_decode)
}

fn attr_strings(attr: &serde_json::Value, key: &str) -> Vec<String> {
    attr.get(key)
        .and_then(|v| v.get("list"))
        .and_then(|l| l.get("s"))
        .and_then(|s| s.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().and_then(base64_decode))
                .collect()
        })
        .unwrap_or_default()
}

fn attr_ints(attr: &serde_json::Value, key: &str) -> Vec<usize> {
    attr.get(key)
        .and_then(|v| v.get("list"))
        .and_then(|l| l.get("i"))
        .and_then(|s| s.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    i.as_str()
                        .and_then(|s| s.parse().ok())
                        .or_else(|| i.as_u64().map(|v| v as usize))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Graph-model attributes hold strings as standard base64.
fn base64_decode(text: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn conv_nodes(topology: &serde_json::Value) -> BTreeMap<String, ConvNode> {
    let mut nodes = BTreeMap::new();
    let Some(list) = topology.get("node").and_then(|n| n.as_array()) else {
        return nodes;
    };
    for node in list {
        let op = node.get("op").and_then(|o| o.as_str()).unwrap_or_default();
        if !matches!(
            op,
            "_FusedConv2D" | "FusedDepthwiseConv2dNative" | "Conv2D" | "DepthwiseConv2dNative"
        ) {
            continue;
        }
        let inputs: Vec<&str> = node
            .get("input")
            .and_then(|i| i.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let (Some(filter), Some(name)) = (inputs.get(1), node.get("name").and_then(|n| n.as_str()))
        else {
            continue;
        };
        let attr = node.get("attr").cloned().unwrap_or_default();
        let strides = attr_ints(&attr, "strides");
        nodes.insert(
            filter.to_string(),
            ConvNode {
                name: name.to_string(),
                op: op.to_string(),
                strides: [
                    strides.get(1).copied().unwrap_or(1),
                    strides.get(2).copied().unwrap_or(1),
                ],
                padding: attr_string(&attr, "padding").unwrap_or_default(),
                fused_ops: attr_strings(&attr, "fused_ops"),
                inputs: inputs.iter().map(|s| s.to_string()).collect(),
            },
        );
    }
    nodes
}

impl TfjsWeights {
    /// Parses a manifest (`*-weights_manifest.json` or a graph `model.json`) and its shards,
    /// given in the order [`shard_paths`] lists them.
    pub fn parse(manifest_json: &[u8], shards: &[&[u8]], origin: &str) -> Result<Self> {
        let (groups, topology) = parse_manifest(manifest_json, origin)?;
        let expected: usize = groups.iter().map(|g| g.paths.len()).sum();
        if expected != shards.len() {
            return Err(bad(
                origin,
                format!(
                    "the manifest names {expected} shard files, {} were given",
                    shards.len()
                ),
            ));
        }
        let mut shards = shards.iter();
        let mut weights = BTreeMap::new();
        let mut integers = BTreeSet::new();
        for group in groups {
            // A group's weights are laid out back to back across its shards.
            let data: Vec<u8> = shards
                .by_ref()
                .take(group.paths.len())
                .flat_map(|s| s.iter().copied())
                .collect();
            let mut offset = 0usize;
            for entry in group.weights {
                let count: usize = entry.shape.iter().product();
                let size = count * element_bytes(&entry, origin)?;
                let bytes = data.get(offset..offset + size).ok_or_else(|| {
                    bad(
                        origin,
                        format!(
                            "{}: shard data ends at byte {} but the weight needs {}..{}",
                            entry.name,
                            data.len(),
                            offset,
                            offset + size
                        ),
                    )
                })?;
                offset += size;
                let values = decode(&entry, bytes, origin)?;
                if entry.dtype != "float32" {
                    integers.insert(entry.name.clone());
                }
                weights.insert(
                    entry.name.clone(),
                    Weight {
                        shape: entry.shape,
                        values,
                    },
                );
            }
            if offset != data.len() {
                return Err(bad(
                    origin,
                    format!(
                        "shards hold {} bytes, the manifest describes {offset}",
                        data.len()
                    ),
                ));
            }
        }
        let conv_nodes = topology.as_ref().map(conv_nodes).unwrap_or_default();
        Ok(Self {
            origin: origin.to_string(),
            weights,
            conv_nodes,
            integers,
            taken: BTreeSet::new(),
        })
    }

    /// The weight `name`, checked against the expected tfjs shape, marked as used.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Weight> {
        let weight = self
            .weights
            .get(name)
            .ok_or_else(|| bad(&self.origin, format!("weight {name} is missing")))?;
        if weight.shape != shape {
            return Err(bad(
                &self.origin,
                format!(
                    "weight {name}: shape {:?}, the architecture expects {shape:?}",
                    weight.shape
                ),
            ));
        }
        self.taken.insert(name.to_string());
        Ok(weight.clone())
    }

    /// The graph node that convolves with filter `weight_name`, when the source is a graph model.
    pub fn conv_node(&self, weight_name: &str) -> Option<&ConvNode> {
        self.conv_nodes.get(weight_name)
    }

    /// The convolution node called `node_name`, for graphs whose weights carry no meaningful
    /// names (BlazeFace's are `unknown_N`): the architecture finds its filter and bias by node.
    pub fn conv_node_named(&self, node_name: &str) -> Result<&ConvNode> {
        self.conv_nodes
            .values()
            .find(|node| node.name == node_name)
            .ok_or_else(|| bad(&self.origin, format!("no convolution node {node_name}")))
    }

    /// Whether the source carries a graph topology (then every conv must be found in it).
    pub fn has_graph(&self) -> bool {
        !self.conv_nodes.is_empty()
    }

    /// Float tensors the architecture never asked for (integer constants and scalars, which
    /// the exported graphs carry for their own reshapes and preprocessing, excluded).
    pub fn unused(&self) -> Vec<String> {
        self.weights
            .iter()
            .filter(|(name, w)| {
                !self.taken.contains(*name) && !self.integers.contains(*name) && !w.shape.is_empty()
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(weights: &str) -> Vec<u8> {
        format!(r#"[{{"paths": ["a.bin"], "weights": [{weights}]}}]"#).into_bytes()
    }

    #[test]
    fn dequantises_uint8_like_tfjs() {
        // tfjs: Float32Array(q * scale + min) with the product in double precision.
        let m = manifest(
            r#"{"name": "w", "shape": [2, 2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.1, "min": -1.3}}"#,
        );
        let mut w = TfjsWeights::parse(&m, &[&[0, 1, 13, 255]], "test").unwrap();
        let values = w.take("w", &[2, 2]).unwrap().values;
        let expected: Vec<f32> = [0u8, 1, 13, 255]
            .iter()
            .map(|&q| (q as f64 * 0.1 - 1.3) as f32)
            .collect();
        assert_eq!(values, expected);
        assert!(
            (values[2] - 0.0).abs() < 1e-6,
            "13 * 0.1 - 1.3 should be ~0, got {}",
            values[2]
        );
    }

    #[test]
    fn reads_float32_float16_uint16_and_int32_in_order() {
        let m = manifest(
            r#"{"name": "f", "shape": [2], "dtype": "float32"},
               {"name": "h", "shape": [1], "dtype": "float32", "quantization": {"dtype": "float16"}},
               {"name": "u", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.5, "min": 1.0}},
               {"name": "i", "shape": [], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 1, "min": 5118}}"#,
        );
        let mut bytes = Vec::new();
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2.25f32).to_le_bytes());
        bytes.extend(half::f16::from_f32(0.333).to_le_bytes());
        bytes.extend(7u16.to_le_bytes());
        bytes.push(0);
        let mut w = TfjsWeights::parse(&m, &[&bytes], "test").unwrap();
        assert_eq!(w.take("f", &[2]).unwrap().values, vec![1.5, -2.25]);
        assert_eq!(
            w.take("h", &[1]).unwrap().values,
            vec![half::f16::from_f32(0.333).to_f32()]
        );
        assert_eq!(w.take("u", &[1]).unwrap().values, vec![4.5]);
        assert_eq!(w.take("i", &[]).unwrap().values, vec![5118.0]);
    }

    #[test]
    fn rejects_short_shards_wrong_shapes_and_missing_names() {
        let m = manifest(r#"{"name": "w", "shape": [3], "dtype": "float32"}"#);
        assert!(matches!(
            TfjsWeights::parse(&m, &[&[0u8; 8]], "t"),
            Err(Error::ModelFile { .. })
        ));
        assert!(matches!(
            TfjsWeights::parse(&m, &[&[0u8; 16]], "t"),
            Err(Error::ModelFile { .. })
        ));
        assert!(matches!(
            TfjsWeights::parse(b"{]", &[], "t"),
            Err(Error::ModelFile { .. })
        ));
        let mut w = TfjsWeights::parse(&m, &[&[0u8; 12]], "t").unwrap();
        assert!(w.take("w", &[1, 3]).is_err());
        assert!(w.take("v", &[3]).is_err());
        assert_eq!(w.unused(), vec!["w".to_string()]);
        w.take("w", &[3]).unwrap();
        assert!(w.unused().is_empty());
    }

    #[test]
    fn reads_graph_conv_attributes() {
        let json = r#"{"modelTopology": {"node": [
            {"name": "c", "op": "_FusedConv2D", "input": ["x", "c/w", "c/b"],
             "attr": {"strides": {"list": {"i": ["1", "2", "2", "1"]}}, "padding": {"s": "U0FNRQ=="},
                      "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdQ=="]}}}}]},
            "weightsManifest": [{"paths": ["m.bin"], "weights": [{"name": "c/w", "shape": [1], "dtype": "float32"}]}]}"#;
        let w = TfjsWeights::parse(json.as_bytes(), &[&[0u8; 4]], "g").unwrap();
        let node = w.conv_node("c/w").unwrap();
        assert_eq!(node.strides, [2, 2]);
        assert_eq!(node.padding, "SAME");
        assert_eq!(
            node.fused_ops,
            vec!["BiasAdd".to_string(), "Relu".to_string()]
        );
        assert_eq!(
            shard_paths(json.as_bytes(), "g").unwrap(),
            vec!["m.bin".to_string()]
        );
    }
}
