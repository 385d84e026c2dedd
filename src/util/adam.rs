//! Adam over a handful of named parameter tensors, kept entirely on the device (no reads), so a
//! fit step never waits for the GPU.

use burn::tensor::Tensor;

/// One optimised tensor with its learning rate and Adam moments.
#[derive(Debug, Clone)]
pub struct Slot {
    pub value: Tensor<2>,
    pub lr: f32,
    m: Tensor<2>,
    v: Tensor<2>,
}

#[derive(Debug, Clone)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    step: i32,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
        }
    }
}

impl Slot {
    pub fn new(value: Tensor<2>, lr: f32) -> Self {
        let zeros = value.zeros_like();
        Self {
            value: value.detach(),
            lr,
            m: zeros.clone(),
            v: zeros,
        }
    }

    /// The value as a fresh leaf that records gradients for this step.
    pub fn leaf(&self) -> Tensor<2> {
        self.value.clone().detach().require_grad()
    }
}

impl Adam {
    /// Starts a step; call [`Adam::update`] for each slot afterwards.
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    pub fn steps(&self) -> i32 {
        self.step
    }

    /// Applies one Adam update with `grad` (same shape as the slot), then `project` (e.g. a
    /// clamp to the valid range).
    pub fn update(
        &self,
        slot: &mut Slot,
        grad: Tensor<2>,
        project: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) {
        let grad = grad.detach();
        slot.m = slot.m.clone() * self.beta1 + grad.clone() * (1.0 - self.beta1);
        slot.v = slot.v.clone() * self.beta2 + grad.powi_scalar(2) * (1.0 - self.beta2);
        let correction1 = 1.0 - self.beta1.powi(self.step);
        let correction2 = 1.0 - self.beta2.powi(self.step);
        let m_hat = slot.m.clone() / correction1;
        let v_hat = slot.v.clone() / correction2;
        let next = slot.value.clone() - m_hat / (v_hat.sqrt() + self.eps) * slot.lr;
        slot.value = project(next).detach();
    }
}
