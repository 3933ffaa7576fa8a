//! `wgpu-loss` in a browser: its kernels on WebGPU behind `wasm-bindgen` exports, the CPU
//! twins compiled to wasm beside them, and a digits classifier trained in the page.
//!
//! Every export that can fail throws a JavaScript `Error` whose message is the
//! [`wgpu_loss::Error`]'s `Display`, so the page sees exactly the `Err` a native caller
//! would. GPU exports are async (a browser cannot block) and return promises; the CPU twins
//! are plain synchronous functions.

mod digits;
mod train;

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wgpu_loss::{CrossEntropyOptions, Error, Gpu, Reduction, cpu};

pub use train::{Evaluation, Trainer};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Routes Rust panics to `console.error` (a panic in wasm otherwise shows only as
/// "unreachable executed").
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| console_error(&format!("panic in wgpu-loss-web: {info}"))));
}

/// A JavaScript `Error` carrying the crate's message; its `name` is `WgpuLossError`.
pub(crate) fn js_error(error: Error) -> js_sys::Error {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("WgpuLossError");
    js
}

/// A loss and its gradient, as returned by the `*WithGrad` exports.
#[wasm_bindgen(getter_with_clone)]
pub struct LossAndGrad {
    /// `rows` values for reduction `"none"`, else one.
    pub loss: Vec<f32>,
    /// `rows × classes` values, the gradient with respect to the logits.
    pub grad: Vec<f32>,
}

impl From<(Vec<f32>, Vec<f32>)> for LossAndGrad {
    fn from((loss, grad): (Vec<f32>, Vec<f32>)) -> Self {
        Self { loss, grad }
    }
}

/// The loss and gradients of the fused linear + cross-entropy op, for JavaScript.
#[wasm_bindgen(getter_with_clone)]
pub struct LinearGrads {
    /// `tokens` values for reduction `"none"`, else one.
    pub loss: Vec<f32>,
    /// `tokens × hidden_size`.
    #[wasm_bindgen(js_name = gradHidden)]
    pub grad_hidden: Vec<f32>,
    /// `vocab × hidden_size`, as the weight.
    #[wasm_bindgen(js_name = gradWeight)]
    pub grad_weight: Vec<f32>,
}

impl From<wgpu_loss::LinearCrossEntropyGrads> for LinearGrads {
    fn from(g: wgpu_loss::LinearCrossEntropyGrads) -> Self {
        Self { loss: g.loss, grad_hidden: g.grad_hidden, grad_weight: g.grad_weight }
    }
}

/// [`CrossEntropyOptions`] for JavaScript: `new LossOptions()` gives PyTorch's defaults
/// (mean, no weight, ignore_index -100, no label smoothing); set the properties to change them.
#[wasm_bindgen]
#[derive(Debug, Clone, Default)]
pub struct LossOptions(CrossEntropyOptions);

#[wasm_bindgen]
impl LossOptions {
    /// PyTorch's defaults.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// `"none"`, `"sum"` or `"mean"`.
    #[wasm_bindgen(setter)]
    pub fn set_reduction(&mut self, reduction: &str) -> Result<(), js_sys::Error> {
        self.0.reduction = match reduction {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            other => {
                return Err(js_error(Error::InvalidArgument {
                    argument: "reduction",
                    message: format!("must be \"none\", \"sum\" or \"mean\", got {other:?}"),
                }));
            }
        };
        Ok(())
    }

    /// One weight per class, or `undefined` for none.
    #[wasm_bindgen(setter)]
    pub fn set_weight(&mut self, weight: Option<Vec<f32>>) {
        self.0.weight = weight;
    }

    /// ε in `[0, 1]`.
    #[wasm_bindgen(setter = labelSmoothing)]
    pub fn set_label_smoothing(&mut self, label_smoothing: f32) {
        self.0.label_smoothing = label_smoothing;
    }

    /// Rows whose target equals this are ignored.
    #[wasm_bindgen(setter = ignoreIndex)]
    pub fn set_ignore_index(&mut self, ignore_index: i32) {
        self.0.ignore_index = ignore_index;
    }
}

/// The browser's GPU with the crate's pipelines built on it: create one with
/// `await Demo.create()` and call its async ops.
#[wasm_bindgen]
pub struct Demo {
    gpu: Rc<Gpu>,
}

#[wasm_bindgen]
impl Demo {
    /// Requests the browser's WebGPU adapter and a device with its limits, and builds the
    /// pipelines (the subgroup kernels only where the adapter offers `SUBGROUP`).
    pub async fn create() -> Result<Demo, js_sys::Error> {
        let gpu = Gpu::new_async().await.map_err(js_error)?;
        Ok(Demo { gpu: Rc::new(gpu) })
    }

    /// One line on the adapter: its name, backend, device type, and which row-reduction
    /// path and optional features are in use.
    #[wasm_bindgen(getter = adapterSummary)]
    pub fn adapter_summary(&self) -> String {
        let info = self.gpu.adapter_info();
        let features = self.gpu.device().features();
        let name = if info.name.is_empty() { "(unnamed)" } else { &info.name };
        format!(
            "{name} via {:?} ({:?}); row reductions: {}; SUBGROUP {}, SHADER_F16 {}, TIMESTAMP_QUERY {}",
            info.backend,
            info.device_type,
            if self.gpu.uses_subgroups() { "subgroup" } else { "workgroup memory" },
            yes_no(features.contains(wgpu::Features::SUBGROUP)),
            yes_no(features.contains(wgpu::Features::SHADER_F16)),
            yes_no(features.contains(wgpu::Features::TIMESTAMP_QUERY)),
        )
    }

    /// Row-wise log-softmax of `rows × classes` logits on the GPU.
    #[wasm_bindgen(js_name = logSoftmax)]
    pub async fn log_softmax(&self, logits: Vec<f32>, rows: usize, classes: usize) -> Result<Vec<f32>, js_sys::Error> {
        self.gpu.log_softmax_async(&logits, rows, classes).await.map_err(js_error)
    }

    /// Cross-entropy of `rows × classes` logits against class indices on the GPU.
    #[wasm_bindgen(js_name = crossEntropy)]
    pub async fn cross_entropy(
        &self, logits: Vec<f32>, targets: Vec<i32>, rows: usize, classes: usize, options: &LossOptions,
    ) -> Result<Vec<f32>, js_sys::Error> {
        self.gpu.cross_entropy_async(&logits, &targets, rows, classes, &options.0).await.map_err(js_error)
    }

    /// Cross-entropy and its gradient with respect to the logits, from one kernel, on the GPU.
    #[wasm_bindgen(js_name = crossEntropyWithGrad)]
    pub async fn cross_entropy_with_grad(
        &self, logits: Vec<f32>, targets: Vec<i32>, rows: usize, classes: usize, options: &LossOptions,
        grad_output: Vec<f32>,
    ) -> Result<LossAndGrad, js_sys::Error> {
        self.gpu
            .cross_entropy_with_grad_async(&logits, &targets, rows, classes, &options.0, &grad_output)
            .await
            .map(LossAndGrad::from)
            .map_err(js_error)
    }

    /// Fused linear + cross-entropy on the GPU: the loss of `hidden·weightᵀ` (`tokens ×
    /// hidden_size` states, a `vocab × hidden_size` weight) and its gradients with respect
    /// to both, without storing the logits.
    #[wasm_bindgen(js_name = linearCrossEntropyWithGrad)]
    #[allow(clippy::too_many_arguments)]
    pub async fn linear_cross_entropy_with_grad(
        &self, hidden: Vec<f32>, weight: Vec<f32>, targets: Vec<i32>, tokens: usize, hidden_size: usize, vocab: usize,
        options: &LossOptions, grad_output: Vec<f32>,
    ) -> Result<LinearGrads, js_sys::Error> {
        let g = self.gpu.linear_cross_entropy_with_grad_async(
            &hidden,
            &weight,
            None,
            &targets,
            tokens,
            hidden_size,
            vocab,
            &options.0,
            &grad_output,
        );
        g.await.map(LinearGrads::from).map_err(js_error)
    }

    /// A softmax-regression trainer on this GPU for the text of `digits.csv` (see [`Trainer`]).
    #[wasm_bindgen(js_name = digitsTrainer)]
    pub async fn digits_trainer(&self, csv: String, learning_rate: f32) -> Result<Trainer, js_sys::Error> {
        Trainer::create(Rc::clone(&self.gpu), &csv, learning_rate).await.map_err(js_error)
    }
}

fn yes_no(present: bool) -> &'static str {
    if present { "yes" } else { "no" }
}

/// The CPU twin of [`Demo::log_softmax`] (f64 inside, compiled to wasm).
#[wasm_bindgen(js_name = cpuLogSoftmax)]
pub fn cpu_log_softmax(logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>, js_sys::Error> {
    cpu::log_softmax(logits, rows, classes).map_err(js_error)
}

/// The CPU twin of [`Demo::cross_entropy`].
#[wasm_bindgen(js_name = cpuCrossEntropy)]
pub fn cpu_cross_entropy(
    logits: &[f32], targets: &[i32], rows: usize, classes: usize, options: &LossOptions,
) -> Result<Vec<f32>, js_sys::Error> {
    cpu::cross_entropy(logits, targets, rows, classes, &options.0).map_err(js_error)
}

/// The CPU twin of [`Demo::cross_entropy_with_grad`].
#[wasm_bindgen(js_name = cpuCrossEntropyWithGrad)]
pub fn cpu_cross_entropy_with_grad(
    logits: &[f32], targets: &[i32], rows: usize, classes: usize, options: &LossOptions, grad_output: &[f32],
) -> Result<LossAndGrad, js_sys::Error> {
    cpu::cross_entropy_with_grad(logits, targets, rows, classes, &options.0, grad_output)
        .map(LossAndGrad::from)
        .map_err(js_error)
}

/// The CPU twin of [`Demo::linear_cross_entropy_with_grad`].
#[wasm_bindgen(js_name = cpuLinearCrossEntropyWithGrad)]
#[allow(clippy::too_many_arguments)]
pub fn cpu_linear_cross_entropy_with_grad(
    hidden: &[f32], weight: &[f32], targets: &[i32], tokens: usize, hidden_size: usize, vocab: usize,
    options: &LossOptions, grad_output: &[f32],
) -> Result<LinearGrads, js_sys::Error> {
    cpu::linear_cross_entropy_with_grad(
        hidden,
        weight,
        None,
        targets,
        tokens,
        hidden_size,
        vocab,
        &options.0,
        grad_output,
    )
    .map(LinearGrads::from)
    .map_err(js_error)
}
