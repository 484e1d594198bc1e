//! The autodiff side of the fused operations: each records one node whose
//! backward calls the inner backend's kernel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};
use burn::tensor::Shape;

use super::{ConvSpec, FusedKernels, FusedOps};

#[derive(Debug)]
struct GroupNormBackward;

impl<B: Backend + FusedKernels> Backward<B, 3> for GroupNormBackward {
    /// x, gamma, mean, rstd, groups.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        usize,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, gamma, mean, rstd, groups) = ops.state;
        let [grad_x, grad_gamma, grad_beta] =
            B::group_norm_backward(x, gamma, mean, rstd, groups, grad);
        for (node, value) in [
            (node_x, grad_x),
            (node_gamma, grad_gamma),
            (node_beta, grad_beta),
        ] {
            if let Some(node) = node {
                grads.register::<B>(node.id, value);
            }
        }
    }
}

/// What a one-input operation's backward reads besides the incoming gradient.
#[derive(Clone, Copy)]
enum Keep {
    Input,
    Output,
}

/// The node of a one-input operation: `grad` maps (the kept tensor, dy) to dx.
#[derive(Debug)]
struct UnaryBackward<B: Backend> {
    grad: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
}

impl<B: Backend> Backward<B, 1> for UnaryBackward<B> {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let kept = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |dy| (self.grad)(kept, dy));
    }
}

/// Record a one-input operation: `forward` on the inner backend, and a node
/// whose backward is `grad` applied to the input or output, as `keep` says.
fn unary_op<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    keep: Keep,
    grad: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let prep = UnaryBackward { grad }
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful();
    let x = x.into_primitive();
    match prep {
        OpsKind::Tracked(prep) => match keep {
            Keep::Input => prep.finish(x.clone(), forward(x)),
            Keep::Output => {
                let out = forward(x);
                prep.finish(out.clone(), out)
            }
        },
        OpsKind::UnTracked(prep) => prep.finish(forward(x)),
    }
}

#[derive(Debug)]
struct MseBackward;

impl<B: Backend + FusedKernels> Backward<B, 2> for MseBackward {
    /// Prediction and target.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_prediction, node_target] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (prediction, target) = ops.state;
        let grad_prediction = B::mse_backward(prediction, target, grad);
        if let Some(node) = node_target {
            grads.register::<B>(node.id, B::float_neg(grad_prediction.clone()));
        }
        if let Some(node) = node_prediction {
            grads.register::<B>(node.id, grad_prediction);
        }
    }
}

#[derive(Debug)]
struct AddBackward;

impl<B: Backend + FusedKernels> Backward<B, 2> for AddBackward {
    /// b's shape.
    type State = Shape;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::add_backward_b(grad.clone(), ops.state));
        }
        if let Some(node) = node_a {
            grads.register::<B>(node.id, grad);
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + FusedKernels> Backward<B, 3> for ConvBackward {
    /// What the backend's forward saved, and the convolution.
    type State = (Vec<FloatTensor<B>>, ConvSpec);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (saved, spec) = ops.state;
        let wanted = ops.parents.each_ref().map(Option::is_some);
        let computed = B::conv_backward_saved(saved, spec, wanted, grad);
        for (node, value) in ops.parents.into_iter().zip(computed) {
            if let (Some(node), Some(value)) = (node, value) {
                grads.register::<B>(node.id, value);
            }
        }
    }
}

impl<B: Backend + FusedKernels, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let prep = GroupNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let [out, mean, rstd] =
                    B::group_norm_forward(x.clone(), gamma.clone(), beta, groups, epsilon);
                prep.finish((x, gamma, mean, rstd, groups), out)
            }
            OpsKind::UnTracked(prep) => {
                let [out, _, _] = B::group_norm_forward(x, gamma, beta, groups, epsilon);
                prep.finish(out)
            }
        }
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary_op::<B, C>(x, B::silu_forward, Keep::Input, B::silu_backward)
    }

    fn fused_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary_op::<B, C>(
            x,
            B::softmax_last_forward,
            Keep::Output,
            B::softmax_last_backward,
        )
    }

    fn fused_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        unary_op::<B, C>(x, <B as ActivationOps<B>>::relu, Keep::Output, B::relu_grad)
    }

    fn fused_mse(prediction: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = MseBackward
            .prepare::<C>([prediction.node(), target.node()])
            .compute_bound()
            .stateful();
        let (prediction, target) = (prediction.into_primitive(), target.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let loss = B::mse_forward(prediction.clone(), target.clone());
                prep.finish((prediction, target), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::mse_forward(prediction, target)),
        }
    }

    fn fused_add(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = AddBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful();
        let (a, b) = (a.into_primitive(), b.into_primitive());
        match prep {
            OpsKind::Tracked(prep) => {
                let b_shape = b.shape();
                prep.finish(b_shape, B::add_forward(a, b))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::add_forward(a, b)),
        }
    }

    fn fused_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        spec: ConvSpec,
    ) -> FloatTensor<Self> {
        let prep = ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let (x, weight, bias) = (
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let (out, saved) = B::conv_forward_saved(x, weight, bias, spec);
                prep.finish((saved, spec), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(super::conv::forward::<B>(x, weight, bias, spec))
            }
        }
    }

    /// Composed from Autodiff's own operations, so still differentiable.
    fn fused_attention_qkv(
        qkv: FloatTensor<Self>,
        heads: usize,
        head_dim: usize,
    ) -> FloatTensor<Self> {
        super::composed::attention_qkv::<Self>(qkv, heads, head_dim)
    }
}
