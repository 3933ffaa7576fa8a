//! Each family's expected outputs (its f64 CPU twin) with their tolerances, computed once
//! per case and checked against the GPU's outputs on every path.

use wgpu_loss::{CrossEntropyOptions, Extras, Gpu, SoftmaxOp, cpu};

use super::data::LARGE;
use super::paths::Path;
use super::tol::{self, Shape, Targets, compare};

/// Expected values with their per-element tolerances.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub want: Vec<f32>,
    pub tol: Vec<f64>,
}

impl Expect {
    pub fn new(want: Vec<f32>, tol: Vec<f64>) -> Self {
        Self { want, tol }
    }

    /// `Err` unless `got` matches within the tolerances.
    pub fn try_check(&self, what: &str, got: &[f32]) -> Result<(), String> {
        compare(what, got, &self.want, &self.tol)
    }

    #[track_caller]
    pub fn check(&self, what: &str, got: &[f32]) {
        if let Err(e) = self.try_check(what, got) {
            panic!("{e}");
        }
    }
}

/// The CPU twin of a row-wise op of the softmax family on `shape`.
fn softmax_twin(op: SoftmaxOp, input: &[f32], dy: Option<&[f32]>, shape: Shape) -> Vec<f32> {
    cpu::softmax_spatial(op, input, dy, shape.n, shape.classes, shape.spatial).unwrap()
}

/// log-softmax of `x`.
pub fn log_softmax(x: &[f32], shape: Shape) -> Expect {
    Expect::new(softmax_twin(SoftmaxOp::LogSoftmax, x, None, shape), tol::log_softmax(x, shape))
}

/// softmax of `x`.
pub fn softmax(x: &[f32], shape: Shape) -> Expect {
    Expect::new(softmax_twin(SoftmaxOp::Softmax, x, None, shape), tol::softmax(x, shape))
}

/// The backward of log-softmax from its output `y` and upstream `dy`.
pub fn log_softmax_backward(y: &[f32], dy: &[f32], shape: Shape) -> Expect {
    Expect::new(
        softmax_twin(SoftmaxOp::LogSoftmaxBackward, y, Some(dy), shape),
        tol::log_softmax_backward(y, dy, shape),
    )
}

/// The backward of softmax from its output `p` and upstream `dy`.
pub fn softmax_backward(p: &[f32], dy: &[f32], shape: Shape) -> Expect {
    Expect::new(softmax_twin(SoftmaxOp::SoftmaxBackward, p, Some(dy), shape), tol::softmax_backward(p, dy, shape))
}

/// A cross-entropy case: logits, targets, shape, options and the upstream gradient (empty:
/// no gradient).
#[derive(Debug, Clone, Copy)]
pub struct Ce<'a> {
    pub x: &'a [f32],
    pub targets: Targets<'a>,
    pub shape: Shape,
    pub opts: &'a CrossEntropyOptions,
    pub g: &'a [f32],
}

/// What the GPU gave for a cross-entropy case (`None`: not asked for).
#[derive(Debug, Clone, Copy, Default)]
pub struct Got<'a> {
    pub loss: Option<&'a [f32]>,
    pub grad: Option<&'a [f32]>,
    pub lse: Option<&'a [f32]>,
    pub argmax: Option<&'a [i32]>,
    pub accuracy: Option<Option<f32>>,
}

impl<'a> Got<'a> {
    /// The loss and the gradient, either of them asked for.
    pub fn outputs(loss: Option<&'a [f32]>, grad: Option<&'a [f32]>) -> Self {
        Self { loss, grad, ..Default::default() }
    }
}

/// A cross-entropy case's expected outputs.
#[derive(Debug, Clone, Default)]
pub struct CeExpect {
    pub loss: Expect,
    pub grad: Expect,
    pub lse: Expect,
    pub argmax: Vec<i32>,
    pub accuracy: Option<f32>,
}

impl Ce<'_> {
    /// The CPU twin's outputs (every extra, for class-index targets) and their tolerances.
    pub fn expect(&self) -> CeExpect {
        let Shape { n, classes, .. } = self.shape;
        let g = (!self.g.is_empty()).then_some(self.g);
        let tol = tol::cross_entropy(self.x, self.targets, self.shape, self.opts, self.g);
        match self.targets {
            Targets::Index(t) => {
                let out = cpu::cross_entropy_with_extras(self.x, t, n, classes, self.opts, Extras::all(), g).unwrap();
                CeExpect {
                    loss: Expect::new(out.loss, tol.loss),
                    grad: Expect::new(out.grad, tol.grad),
                    lse: Expect::new(out.lse, tol.lse),
                    argmax: out.argmax,
                    accuracy: out.accuracy,
                }
            }
            Targets::Probs(y) => {
                let (loss, grad) = match g {
                    Some(g) => cpu::cross_entropy_probs_with_grad(self.x, y, n, classes, self.opts, g).unwrap(),
                    None => (cpu::cross_entropy_probs(self.x, y, n, classes, self.opts).unwrap(), Vec::new()),
                };
                CeExpect { loss: Expect::new(loss, tol.loss), grad: Expect::new(grad, tol.grad), ..Default::default() }
            }
        }
    }
}

impl CeExpect {
    /// `Err` unless every output `got` holds matches: values within their tolerances,
    /// argmax exactly, the accuracy (one division, 2.5 ulps in WGSL) within 3e-7 relative.
    pub fn try_check(&self, what: &str, got: Got<'_>) -> Result<(), String> {
        if let Some(loss) = got.loss {
            self.loss.try_check(&format!("cross_entropy loss {what}"), loss)?;
        }
        if let Some(grad) = got.grad {
            self.grad.try_check(&format!("cross_entropy grad {what}"), grad)?;
        }
        if let Some(lse) = got.lse {
            self.lse.try_check(&format!("lse {what}"), lse)?;
        }
        if let Some(argmax) = got.argmax
            && argmax != self.argmax.as_slice()
        {
            return Err(format!("argmax {what}: got {argmax:?}, want {:?}", self.argmax));
        }
        if let Some(accuracy) = got.accuracy {
            let want: Vec<f32> = self.accuracy.into_iter().collect();
            let tol: Vec<f64> = want.iter().map(|a| 3e-7 * f64::from(a.abs())).collect();
            compare(&format!("accuracy {what}"), &accuracy.into_iter().collect::<Vec<_>>(), &want, &tol)?;
        }
        Ok(())
    }

    #[track_caller]
    pub fn check(&self, what: &str, got: Got<'_>) {
        if let Err(e) = self.try_check(what, got) {
            panic!("{e}");
        }
    }
}

/// NLL of `lp` against `targets`: the loss and, when `g` is not empty, the gradient.
pub fn nll(lp: &[f32], targets: &[i32], shape: Shape, opts: &CrossEntropyOptions, g: &[f32]) -> (Expect, Expect) {
    let Shape { n, classes, .. } = shape;
    let tol = tol::nll(lp, targets, shape, opts, g);
    let loss = cpu::nll_loss(lp, targets, n, classes, opts).unwrap();
    let grad = if g.is_empty() { Vec::new() } else { cpu::nll_loss_grad(targets, n, classes, opts, g).unwrap() };
    (Expect::new(loss, tol.loss), Expect::new(grad, tol.grad))
}

/// The targets a cross-entropy case owns.
#[derive(Debug, Clone)]
pub enum OwnedTargets {
    Index(Vec<i32>),
    Probs(Vec<f32>),
}

/// A cross-entropy case that owns its data, with its expected outputs computed once.
#[derive(Debug)]
pub struct CeCase {
    pub shape: Shape,
    pub x: Vec<f32>,
    pub targets: OwnedTargets,
    pub opts: CrossEntropyOptions,
    pub g: Vec<f32>,
    pub expect: CeExpect,
    /// Whether paths other than the default run it (else the default path alone).
    pub on_every_path: bool,
}

impl CeCase {
    pub fn new(shape: Shape, x: Vec<f32>, targets: OwnedTargets, opts: CrossEntropyOptions, g: Vec<f32>) -> Self {
        let expect = Ce {
            x: &x,
            targets: match &targets {
                OwnedTargets::Index(t) => Targets::Index(t),
                OwnedTargets::Probs(y) => Targets::Probs(y),
            },
            shape,
            opts: &opts,
            g: &g,
        }
        .expect();
        Self { shape, x, targets, opts, g, expect, on_every_path: true }
    }

    /// Runs on the default path only: the matrix's other paths take a subset of the
    /// options, which reaches each of their kernels.
    pub fn on_default_path_only(mut self) -> Self {
        self.on_every_path = false;
        self
    }

    /// Runs the case on `path` if it belongs there: batches over [`LARGE`] elements and
    /// cases marked [`CeCase::on_default_path_only`] on the default path, rows that fit the
    /// path's bindings; the gradient-only call (the fused kernel again) on the default
    /// path only.
    pub fn check_on(&self, path: &Path) {
        let every = self.on_every_path && self.x.len() <= LARGE;
        if (path.is_default() || every) && path.fits(self.shape.classes * self.shape.spatial) {
            self.check_slice(&path.gpu, &path.label(), path.is_default());
        }
    }

    /// Class-index targets.
    pub fn index(shape: Shape, x: Vec<f32>, targets: Vec<i32>, opts: CrossEntropyOptions, g: Vec<f32>) -> Self {
        Self::new(shape, x, OwnedTargets::Index(targets), opts, g)
    }

    /// Probability targets.
    pub fn probs(shape: Shape, x: Vec<f32>, y: Vec<f32>, opts: CrossEntropyOptions, g: Vec<f32>) -> Self {
        Self::new(shape, x, OwnedTargets::Probs(y), opts, g)
    }

    /// The case's shape and options, for messages.
    pub fn what(&self, path: &str) -> String {
        let Shape { n, classes, spatial } = self.shape;
        format!("{n}x{classes}x{spatial} {path} {:?}", self.opts)
    }

    /// Every slice-API form on `gpu` against the expected outputs: the loss alone, the
    /// gradient alone (with `grad_only`), and both from the fused kernel (another kernel,
    /// held to the same tolerances, not to the same bits).
    pub fn check_slice(&self, gpu: &Gpu, path: &str, grad_only: bool) {
        let Shape { n, classes, .. } = self.shape;
        let (x, o, g, what) = (&self.x, &self.opts, &self.g[..], self.what(path));
        let loss = match &self.targets {
            OwnedTargets::Index(t) => gpu.cross_entropy(x, t, n, classes, o),
            OwnedTargets::Probs(y) => gpu.cross_entropy_probs(x, y, n, classes, o),
        }
        .unwrap();
        self.expect.check(&format!("loss only {what}"), Got::outputs(Some(&loss), None));
        if grad_only {
            let grad = match &self.targets {
                OwnedTargets::Index(t) => gpu.cross_entropy_grad(x, t, n, classes, o, g),
                OwnedTargets::Probs(y) => gpu.cross_entropy_probs_grad(x, y, n, classes, o, g),
            }
            .unwrap();
            self.expect.check(&format!("grad only {what}"), Got::outputs(None, Some(&grad)));
        }
        let (loss, grad) = match &self.targets {
            OwnedTargets::Index(t) => gpu.cross_entropy_with_grad(x, t, n, classes, o, g),
            OwnedTargets::Probs(y) => gpu.cross_entropy_probs_with_grad(x, y, n, classes, o, g),
        }
        .unwrap();
        self.expect.check(&format!("fused {what}"), Got::outputs(Some(&loss), Some(&grad)));
    }
}
