//! Launching the hand-written WGSL kernels of `shaders/` through burn's cubecl runtime.
//!
//! A shader file holds one kernel family: a shared prelude (helpers, constants) followed by
//! sections that each start with a `//#kernel NAME` line and declare their own bindings and a
//! `main` entry point. A launch compiles the prelude plus one section, so each pipeline's
//! automatic bind-group layout holds exactly the buffers that kernel uses, in binding order.
//!
//! Every storage binding is declared `read_write`, inputs included: cubecl sub-allocates tensors
//! from shared wgpu buffers, and wgpu rejects a dispatch that uses one buffer both read-only and
//! writable.
//!
//! The runtime compiles these modules without wgpu's bounds checks (cubecl's "trusted" path),
//! so every kernel checks its own indices, and the glue validates shapes and topology before
//! launching.

use burn::backend::wgpu::{CubeTensor, KernelSource, SourceKernel, SourceTemplate};
use burn::tensor::{DType, Shape};
use cubecl::{CubeCount, CubeDim, prelude::KernelId, server::KernelArguments};

/// One `//#kernel` section of a WGSL file of `shaders/`.
#[derive(Debug, Clone, Copy)]
pub struct WgslKernel {
    /// File contents, from `include_str!`.
    pub file: &'static str,
    /// The section's name after `//#kernel`.
    pub name: &'static str,
    /// Workgroup size, substituted for `{{ wg_x }}` and `{{ wg_y }}`.
    pub workgroup: (u32, u32),
}

impl WgslKernel {
    /// The WGSL module for this kernel: prelude + its section.
    pub fn module_source(&self) -> String {
        let mut sections = self.file.split("//#kernel ");
        let prelude = sections.next().unwrap_or_default();
        let body = sections
            .find(|s| s.lines().next().map(str::trim) == Some(self.name))
            .unwrap_or_else(|| panic!("shader section `{}` is missing", self.name));
        // Skip the section's name line.
        let body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or_default();
        format!("{prelude}\n{body}")
    }
}

impl KernelSource for WgslKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(self.module_source())
            .register("wg_x", self.workgroup.0.to_string())
            .register("wg_y", self.workgroup.1.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.name, self.workgroup.0, self.workgroup.1, self.file.len()))
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

/// Buffers for one launch, in binding order, with a trailing `info` array of u32 parameters.
pub struct Launch<'a> {
    kernel: WgslKernel,
    template: &'a CubeTensor,
    buffers: Vec<cubecl::server::BufferBinding>,
}

impl<'a> Launch<'a> {
    /// Starts a launch; `template` provides the client and device.
    pub fn new(kernel: WgslKernel, template: &'a CubeTensor) -> Self {
        Self { kernel, template, buffers: Vec::new() }
    }

    /// Binds the next buffer.
    pub fn arg(mut self, tensor: &CubeTensor) -> Self {
        self.buffers.push(tensor.handle.clone().binding());
        self
    }

    /// Binds the `info` array last and dispatches `groups` workgroups.
    pub fn run(self, info: &[u32], groups: (u32, u32, u32)) {
        let client = &self.template.client;
        let info = client.create_from_slice(bytemuck::cast_slice(info));
        let mut buffers = self.buffers;
        buffers.push(info.binding());
        let cube_dim = CubeDim::new_3d(self.kernel.workgroup.0, self.kernel.workgroup.1, 1);
        client.launch(
            Box::new(SourceKernel::new(self.kernel, cube_dim)),
            CubeCount::Static(groups.0.max(1), groups.1.max(1), groups.2.max(1)),
            KernelArguments::new().with_buffers(buffers),
        );
    }
}

/// A new f32 tensor of `shape` on the template's device, every element set to zero.
pub fn zeros(template: &CubeTensor, shape: Shape) -> CubeTensor {
    let n = shape.num_elements();
    let handle = template
        .client
        .create_from_slice(bytemuck::cast_slice(&vec![0f32; n.max(1)]));
    CubeTensor::new_contiguous(
        template.client.clone(),
        template.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

/// A new u32 scratch buffer of `len` elements, each set to `value`, viewed as an f32 tensor
/// (the kernels reinterpret it; it never escapes the op).
pub fn filled_u32(template: &CubeTensor, len: usize, value: u32) -> CubeTensor {
    let handle = template
        .client
        .create_from_slice(bytemuck::cast_slice(&vec![value; len.max(1)]));
    CubeTensor::new_contiguous(
        template.client.clone(),
        template.device.clone(),
        Shape::new([len.max(1)]),
        handle,
        DType::F32,
    )
}

/// An uninitialised f32 tensor whose every element the kernel writes.
pub fn empty(template: &CubeTensor, shape: Shape) -> CubeTensor {
    let n = shape.num_elements();
    let handle = template.client.empty(n.max(1) * 4);
    CubeTensor::new_contiguous(
        template.client.clone(),
        template.device.clone(),
        shape,
        handle,
        DType::F32,
    )
}

/// Workgroups needed to cover `n` items with groups of `size`.
pub fn groups(n: usize, size: u32) -> u32 {
    (n as u32).div_ceil(size)
}
