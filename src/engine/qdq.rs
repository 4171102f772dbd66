//! Load-time folding of constant `DequantizeLinear` nodes (the shipped model's int8 weights) into f32
//! initializers, done on the ONNX protobuf before tract sees the graph.
//!
//! tract handles these nodes itself, but through its generic inference solver and an expanded
//! cast/sub/mul subgraph per weight: for the bundled model that is ~0.8 s of a ~0.85 s load natively, and
//! most of the browser's cold start. The arithmetic is one multiply per weight, so it is done here directly;
//! every node this cannot fold exactly (non-constant inputs, blocked quantization, unusual types, external
//! data) is left for tract, so the result is the same graph tract would have built.

use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

/// Fold every foldable constant `DequantizeLinear` in the main graph; returns how many were folded.
pub fn fold_constant_dequantize(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else { return 0 };
    let mut folded = Vec::new();
    let mut keep = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        match dequantize(graph, &node) {
            Some(tensor) => folded.push(tensor),
            None => keep.push(node),
        }
    }
    graph.node = keep;
    let n = folded.len();
    graph.initializer.extend(folded);
    drop_unused_initializers(graph);
    n
}

/// The f32 tensor a `DequantizeLinear` node computes, when all its inputs are initializers we can read.
fn dequantize(graph: &GraphProto, node: &NodeProto) -> Option<TensorProto> {
    if node.op_type != "DequantizeLinear" || !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return None;
    }
    if node.output.len() != 1 || !(2..=3).contains(&node.input.len()) {
        return None;
    }
    let mut axis = 1i64;
    for a in &node.attribute {
        match a.name.as_str() {
            "axis" => axis = a.i,
            "block_size" if a.i != 0 => return None,
            "block_size" => {}
            _ => return None,
        }
    }
    let init = |name: &str| graph.initializer.iter().find(|t| t.name == name);
    let x = init(&node.input[0])?;
    let scale = floats(init(&node.input[1])?)?;
    let zero_point = match node.input.get(2).filter(|s| !s.is_empty()) {
        Some(name) => {
            let zp = init(name)?;
            (zp.data_type == x.data_type).then(|| integers(zp))??
        }
        None => vec![0],
    };
    let values = integers(x)?;
    let dims: Vec<usize> = x.dims.iter().map(|&d| usize::try_from(d).ok()).collect::<Option<_>>()?;
    if Some(values.len()) != dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        return None;
    }
    // per-tensor (one scale) or per-axis (one scale per index along `axis`)
    let (channels, inner) = if scale.len() == 1 && zero_point.len() == 1 {
        (1, values.len())
    } else {
        let axis = if axis < 0 { axis + dims.len() as i64 } else { axis };
        let axis = usize::try_from(axis).ok().filter(|&a| a < dims.len())?;
        (dims[axis], dims[axis + 1..].iter().product::<usize>())
    };
    let fits = |n: usize| n == 1 || n == channels;
    if !fits(scale.len()) || !fits(zero_point.len()) {
        return None;
    }
    fn pick<T: Copy>(v: &[T], c: usize) -> T {
        if v.len() == 1 { v[0] } else { v[c] }
    }
    // one scale and zero point per run of `inner` consecutive values (C order)
    let mut raw = Vec::with_capacity(values.len() * 4);
    for (run, chunk) in values.chunks(inner.max(1)).enumerate() {
        let c = run % channels.max(1);
        let (zp, s) = (pick(&zero_point, c), pick(&scale, c));
        raw.extend(chunk.iter().flat_map(|&q| (((q as i64 - zp as i64) as f32) * s).to_le_bytes()));
    }
    Some(TensorProto {
        name: node.output[0].clone(),
        dims: x.dims.clone(),
        data_type: DataType::Float as i32,
        raw_data: raw,
        ..Default::default()
    })
}

fn inline(t: &TensorProto) -> bool {
    t.external_data.is_empty() && t.data_location.unwrap_or(0) == 0 && t.segment.is_none()
}

/// int8 / uint8 / int32 tensor values (raw little-endian bytes or the int32 field).
fn integers(t: &TensorProto) -> Option<Vec<i32>> {
    if !inline(t) {
        return None;
    }
    let raw = &t.raw_data;
    let dt = DataType::try_from(t.data_type).ok()?;
    if raw.is_empty() {
        return matches!(dt, DataType::Int8 | DataType::Uint8 | DataType::Int32).then(|| t.int32_data.clone());
    }
    match dt {
        DataType::Int8 => Some(raw.iter().map(|&b| b as i8 as i32).collect()),
        DataType::Uint8 => Some(raw.iter().map(|&b| b as i32).collect()),
        DataType::Int32 if raw.len() % 4 == 0 => {
            Some(raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        _ => None,
    }
}

/// f32 tensor values (raw little-endian bytes or the float field).
fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if !inline(t) || t.data_type != DataType::Float as i32 {
        return None;
    }
    if t.raw_data.is_empty() {
        return Some(t.float_data.clone());
    }
    (t.raw_data.len() % 4 == 0)
        .then(|| t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Initializers no node or graph output refers to any more (the folded int8 weights and their scales).
fn drop_unused_initializers(graph: &mut GraphProto) {
    let used: std::collections::HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .chain(graph.node.iter().flat_map(subgraph_inputs))
        .map(str::to_owned)
        .collect();
    graph.initializer.retain(|t| used.contains(&t.name));
}

/// Names read inside a node's subgraphs (If/Loop bodies may capture outer initializers).
fn subgraph_inputs(node: &NodeProto) -> impl Iterator<Item = &str> {
    node.attribute
        .iter()
        .filter_map(|a| a.g.as_ref())
        .flat_map(|g| g.node.iter().flat_map(|n| n.input.iter()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{AttributeProto, ValueInfoProto};

    fn tensor(name: &str, dt: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dt as i32,
            dims: dims.to_vec(),
            raw_data: raw,
            ..Default::default()
        }
    }

    /// A tensor stored in the typed fields (`int32_data` / `float_data`) instead of raw bytes.
    fn fields(name: &str, dt: DataType, dims: &[i64], ints: Vec<i32>, floats: Vec<f32>) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dt as i32,
            dims: dims.to_vec(),
            int32_data: ints,
            float_data: floats,
            ..Default::default()
        }
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, outputs: &[&str]) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                initializer: inits,
                output: outputs.iter().map(|o| ValueInfoProto { name: (*o).into(), ..Default::default() }).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn dq(inputs: &[&str], axis: Option<i64>) -> NodeProto {
        NodeProto {
            op_type: "DequantizeLinear".into(),
            input: inputs.iter().map(|s| (*s).into()).collect(),
            output: vec!["w".into()],
            attribute: axis
                .map(|i| vec![AttributeProto { name: "axis".into(), i, ..Default::default() }])
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn folded_values(m: &ModelProto) -> Vec<f32> {
        let g = m.graph.as_ref().unwrap();
        let w = g.initializer.iter().find(|t| t.name == "w").expect("folded initializer");
        assert_eq!(w.data_type, DataType::Float as i32);
        floats(w).unwrap()
    }

    #[test]
    fn per_axis_int8_weights_fold_to_the_onnx_formula() {
        // x [2, 3] int8, axis 0: row 0 scale 0.5 zp 1, row 1 scale 2 zp -1
        let x = tensor("x", DataType::Int8, &[2, 3], [1i8, 3, -5, 0, 2, -1].iter().map(|&v| v as u8).collect());
        let s = tensor("s", DataType::Float, &[2], f32s(&[0.5, 2.0]));
        let z = tensor("z", DataType::Int8, &[2], vec![1u8, (-1i8) as u8]);
        let mut m = model(vec![dq(&["x", "s", "z"], Some(0))], vec![x, s, z], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 1);
        assert_eq!(folded_values(&m), vec![0.0, 1.0, -3.0, 2.0, 6.0, 0.0]);
        let g = m.graph.as_ref().unwrap();
        assert!(g.node.is_empty());
        assert_eq!(g.initializer.len(), 1, "the int8 tensor, scale and zero point are dropped");
    }

    #[test]
    fn default_axis_is_one_and_a_missing_zero_point_is_zero() {
        // x [2, 2] uint8, per-column scales along the default axis 1
        let x = tensor("x", DataType::Uint8, &[2, 2], vec![10, 20, 30, 40]);
        let s = tensor("s", DataType::Float, &[2], f32s(&[1.0, 0.1]));
        let mut m = model(vec![dq(&["x", "s"], None)], vec![x, s], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 1);
        let v = folded_values(&m);
        assert_eq!(v[0], 10.0);
        assert!((v[1] - 2.0).abs() < 1e-6 && v[2] == 30.0 && (v[3] - 4.0).abs() < 1e-6);
    }

    #[test]
    fn a_scalar_scale_uses_the_int32_field_when_there_are_no_raw_bytes() {
        let x = fields("x", DataType::Int8, &[3], vec![-2, 0, 7], vec![]);
        let s = fields("s", DataType::Float, &[], vec![], vec![0.25]);
        let mut m = model(vec![dq(&["x", "s"], None)], vec![x, s], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 1);
        assert_eq!(folded_values(&m), vec![-0.5, 0.0, 1.75]);
    }

    #[test]
    fn extreme_int32_values_and_absurd_dims_do_not_panic() {
        let x = fields("x", DataType::Int32, &[2], vec![i32::MIN, i32::MAX], vec![]);
        let z = fields("z", DataType::Int32, &[], vec![1], vec![]);
        let s = tensor("s", DataType::Float, &[], f32s(&[1.0]));
        let mut m = model(vec![dq(&["x", "s", "z"], None)], vec![x, s.clone(), z], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 1);
        assert!(folded_values(&m).iter().all(|v| v.is_finite()));
        // dims whose product overflows are not folded (and do not panic)
        let big = tensor("x", DataType::Int8, &[i64::MAX, i64::MAX], vec![1, 2]);
        let mut m = model(vec![dq(&["x", "s"], None)], vec![big, s], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 0);
    }

    #[test]
    fn nodes_it_cannot_fold_are_left_for_tract() {
        let s = tensor("s", DataType::Float, &[], f32s(&[0.5]));
        // input is a graph input, not an initializer
        let mut m = model(vec![dq(&["image", "s"], None)], vec![s.clone()], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 0);
        assert_eq!(m.graph.as_ref().unwrap().node.len(), 1);
        assert_eq!(m.graph.as_ref().unwrap().initializer.len(), 1, "its scale is still used");
        // blocked quantization
        let x = tensor("x", DataType::Int8, &[2], vec![1, 2]);
        let mut node = dq(&["x", "s"], None);
        node.attribute.push(AttributeProto { name: "block_size".into(), i: 2, ..Default::default() });
        let mut m = model(vec![node], vec![x.clone(), s.clone()], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 0);
        // a zero point of another type than the data, and a scale count that fits no axis
        let z = tensor("z", DataType::Uint8, &[], vec![0]);
        let mut m = model(vec![dq(&["x", "s", "z"], None)], vec![x.clone(), s.clone(), z], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 0);
        let s3 = tensor("s", DataType::Float, &[3], f32s(&[1.0, 2.0, 3.0]));
        let mut m = model(vec![dq(&["x", "s"], Some(0))], vec![x, s3], &["w"]);
        assert_eq!(fold_constant_dequantize(&mut m), 0);
    }
}
