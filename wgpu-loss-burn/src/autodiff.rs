//! The losses under burn's autodiff.
//!
//! Cross-entropy computes its gradient in the forward pass for an upstream gradient of 1
//! and keeps it (instead of log-probabilities); the backward scales it by the upstream
//! gradient, per row for `Reduction::None` — exact, as each row's gradient depends on its
//! own loss only. The fused linear + cross-entropy does the same for `Mean` and `Sum` (the
//! gradients are linear in the one upstream value, as Liger does); for `None`, where `∂W`
//! mixes rows with their own upstream values, it keeps its inputs and recomputes with the
//! upstream gradient in the backward.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{AutodiffBackend, Backend};
use burn::tensor::Shape;
use wgpu_loss::Reduction;

use crate::ops::{CeArgs, LinearArgs, LossOps};

/// How a cross-entropy's gradient for an upstream gradient of 1 is scaled: viewed as
/// `[N, C, d1·…·dk]`, times the upstream gradient viewed as `[N, 1, d1·…·dk]` (one value
/// per row for `Reduction::None`) or `[1, 1, 1]`, then given back the logits' shape.
#[derive(Debug, Clone)]
struct Scaling {
    view: Shape,
    upstream: Shape,
    logits: Shape,
}

impl Scaling {
    fn of(args: &CeArgs) -> Self {
        let (n, s) = (args.rows, args.opts.spatial);
        let upstream = if args.opts.reduction == Reduction::None { [n, 1, s] } else { [1, 1, 1] };
        Self {
            view: Shape::new([n, args.classes, s]),
            upstream: Shape::new(upstream),
            logits: Shape::from(args.dims.clone()),
        }
    }
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend> Backward<B, 1> for CrossEntropyBackward {
    /// The gradient for an upstream gradient of 1, and how to scale it.
    type State = (FloatTensor<B>, Scaling);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [logits] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        let (grad, scaling) = ops.state;
        if let Some(node) = logits {
            let scaled =
                B::float_mul(B::float_reshape(grad, scaling.view), B::float_reshape(upstream, scaling.upstream));
            grads.register::<B>(node.id, B::float_reshape(scaled, scaling.logits));
        }
    }
}

/// The inner backend's cross-entropy on logits and targets `T`: the loss and the status.
type LossOp<B, T> = fn(FloatTensor<B>, T, CeArgs) -> (FloatTensor<B>, IntTensor<B>);
/// ... and with the gradient for an upstream gradient of 1: loss, gradient, status.
type WithGradOp<B, T> = fn(FloatTensor<B>, T, CeArgs) -> (FloatTensor<B>, FloatTensor<B>, IntTensor<B>);

/// A cross-entropy under autodiff: with the gradient for an upstream gradient of 1 where
/// the logits are tracked (kept for the backward), else the loss alone. `loss` and
/// `with_grad` are the inner backend's op on the logits and `targets` (class indices or
/// untracked probabilities).
fn tracked_cross_entropy<B: Backend, C: CheckpointStrategy, T>(
    logits: FloatTensor<Autodiff<B, C>>, targets: T, args: CeArgs, loss: LossOp<B, T>, with_grad: WithGradOp<B, T>,
) -> (FloatTensor<Autodiff<B, C>>, IntTensor<B>) {
    match CrossEntropyBackward.prepare::<C>([logits.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let scaling = Scaling::of(&args);
            let (loss, grad, status) = with_grad(logits.into_primitive(), targets, args);
            (prep.finish((grad, scaling), loss), status)
        }
        OpsKind::UnTracked(prep) => {
            let (loss, status) = loss(logits.into_primitive(), targets, args);
            (prep.finish(loss), status)
        }
    }
}

/// What the fused op's backward starts from.
#[derive(Debug, Clone)]
enum LinearState<B: Backend> {
    /// `Mean` / `Sum`: `∂h`, `∂W`, `∂b` for an upstream gradient of 1.
    Scale([FloatTensor<B>; 3]),
    /// `None`: the inputs, to recompute with the upstream gradient.
    Recompute { inputs: [FloatTensor<B>; 3], targets: IntTensor<B>, args: LinearArgs },
}

#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + LossOps> Backward<B, 3> for LinearBackward {
    type State = LinearState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let upstream = grads.consume::<B>(&ops.node);
        let computed = match ops.state {
            LinearState::Scale(grads) => {
                let [gh, gw, gb] = grads;
                let scale = |g, shape| B::float_mul(g, B::float_reshape(upstream.clone(), shape));
                [scale(gh, Shape::new([1, 1])), scale(gw, Shape::new([1, 1])), scale(gb, Shape::new([1]))]
            }
            LinearState::Recompute { inputs: [h, w, b], targets, args } => {
                let args = LinearArgs { scaled: true, ..args };
                let (_, gh, gw, gb, _) = B::wgpu_loss_linear_cross_entropy_with_grad(h, w, b, targets, upstream, args);
                [gh, gw, gb]
            }
        };
        for (parent, grad) in ops.parents.into_iter().zip(computed) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + LossOps, C: CheckpointStrategy> LossOps for Autodiff<B, C> {
    fn wgpu_loss_cross_entropy(
        logits: FloatTensor<Self>, targets: IntTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        tracked_cross_entropy::<B, C, _>(
            logits,
            targets,
            args,
            B::wgpu_loss_cross_entropy,
            B::wgpu_loss_cross_entropy_with_grad,
        )
    }

    fn wgpu_loss_cross_entropy_with_grad(
        logits: FloatTensor<Self>, targets: IntTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let (loss, grad, status) = B::wgpu_loss_cross_entropy_with_grad(logits.into_primitive(), targets, args);
        (Self::from_inner(loss), Self::from_inner(grad), status)
    }

    fn wgpu_loss_cross_entropy_probs(
        logits: FloatTensor<Self>, targets: FloatTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        // The targets are not tracked (the public function refuses them otherwise).
        tracked_cross_entropy::<B, C, _>(
            logits,
            targets.into_primitive(),
            args,
            B::wgpu_loss_cross_entropy_probs,
            B::wgpu_loss_cross_entropy_probs_with_grad,
        )
    }

    fn wgpu_loss_cross_entropy_probs_with_grad(
        logits: FloatTensor<Self>, targets: FloatTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let (loss, grad, status) =
            B::wgpu_loss_cross_entropy_probs_with_grad(logits.into_primitive(), targets.into_primitive(), args);
        (Self::from_inner(loss), Self::from_inner(grad), status)
    }

    fn wgpu_loss_linear_cross_entropy(
        hidden: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, targets: IntTensor<Self>,
        args: LinearArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let nodes = [hidden.node(), weight.node(), bias.node()];
        let inputs = [hidden.into_primitive(), weight.into_primitive(), bias.into_primitive()];
        match LinearBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) if args.opts.reduction == Reduction::None => {
                let [h, w, b] = inputs.clone();
                let (loss, status) = B::wgpu_loss_linear_cross_entropy(h, w, b, targets.clone(), args.clone());
                (prep.finish(LinearState::Recompute { inputs, targets, args }, loss), status)
            }
            OpsKind::Tracked(prep) => {
                let [h, w, b] = inputs;
                // The upstream gradient is 1 here (`scaled` is off): `h` only fills its slot.
                let placeholder = h.clone();
                let (loss, gh, gw, gb, status) =
                    B::wgpu_loss_linear_cross_entropy_with_grad(h, w, b, targets, placeholder, args);
                (prep.finish(LinearState::Scale([gh, gw, gb]), loss), status)
            }
            OpsKind::UnTracked(prep) => {
                let [h, w, b] = inputs;
                let (loss, status) = B::wgpu_loss_linear_cross_entropy(h, w, b, targets, args);
                (prep.finish(loss), status)
            }
        }
    }

    fn wgpu_loss_linear_cross_entropy_with_grad(
        hidden: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, targets: IntTensor<Self>,
        grad_output: FloatTensor<Self>, args: LinearArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>) {
        let (loss, gh, gw, gb, status) = B::wgpu_loss_linear_cross_entropy_with_grad(
            hidden.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
            targets,
            grad_output.into_primitive(),
            args,
        );
        (Self::from_inner(loss), Self::from_inner(gh), Self::from_inner(gw), Self::from_inner(gb), status)
    }
}
