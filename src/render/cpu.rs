//! Moving Flex (CPU backend) tensors in and out of plain slices for the CPU references.
//!
//! Flex computes eagerly, so its `into_data` futures are ready on the first poll; nothing here
//! runs on wasm, where the renderer uses the WGSL kernels.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::{Shape, TensorData};

fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(value) => value,
        // Flex never defers work; a pending future would mean a backend change.
        Poll::Pending => unreachable!("the Flex backend returned a pending read"),
    }
}

pub fn floats(tensor: FloatTensor<Flex>) -> (Vec<f32>, Vec<usize>) {
    let data = ready(Flex::float_into_data(tensor)).expect("reading a CPU tensor cannot fail");
    let dims = data.shape().to_vec();
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32");
    (values, dims)
}

pub fn ints(tensor: IntTensor<Flex>) -> Vec<i64> {
    let data = ready(Flex::int_into_data(tensor)).expect("reading a CPU tensor cannot fail");
    data.convert::<i64>()
        .try_into_vec::<i64>()
        .expect("converted to i64")
}

pub fn triangles(tensor: IntTensor<Flex>) -> Vec<[u32; 3]> {
    ints(tensor)
        .chunks(3)
        .map(|c| [c[0] as u32, c[1] as u32, c[2] as u32])
        .collect()
}

pub fn wings(tensor: IntTensor<Flex>) -> Vec<[i32; 3]> {
    ints(tensor)
        .chunks(3)
        .map(|c| [c[0] as i32, c[1] as i32, c[2] as i32])
        .collect()
}

pub fn tensor(values: Vec<f32>, dims: &[usize], like: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let device = like.device();
    Flex::float_from_data(TensorData::new(values, Shape::from(dims.to_vec())), &device)
}

/// [`tensor`] when the gradient is needed, else an empty tensor (shape `[0]`), as the kernels
/// return for a gradient nobody asked for.
pub fn tensor_if(
    needed: bool,
    values: Vec<f32>,
    dims: &[usize],
    like: &FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    if needed {
        tensor(values, dims, like)
    } else {
        tensor(Vec::new(), &[0], like)
    }
}
