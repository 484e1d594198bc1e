//! libtorch's native kernels for the fused operations.

use super::*;
use burn::backend::libtorch::TchTensor;

impl FusedKernels for LibTorch {
    fn group_norm_forward(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        groups: usize,
        epsilon: f64,
    ) -> [TchTensor; 3] {
        let size = x.tensor.size();
        let (n, c) = (size[0], size[1]);
        let spatial: i64 = size[2..].iter().product();
        let (out, mean, rstd) = x.tensor.contiguous().native_group_norm(
            Some(&gamma.tensor),
            Some(&beta.tensor),
            n,
            c,
            spatial,
            groups as i64,
            epsilon,
        );
        let stats = [n, groups as i64, 1];
        [
            TchTensor::new(out),
            TchTensor::new(mean.reshape(stats)),
            TchTensor::new(rstd.reshape(stats)),
        ]
    }

    fn silu_forward(x: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.silu())
    }

    fn silu_backward(x: TchTensor, grad: TchTensor) -> TchTensor {
        TchTensor::new(x.tensor.silu_backward(&grad.tensor))
    }

    fn softmax_last_forward(x: TchTensor) -> TchTensor {
        let kind = x.tensor.kind();
        TchTensor::new(x.tensor.softmax(-1, kind))
    }

    fn relu_grad(output: TchTensor, grad: TchTensor) -> TchTensor {
        TchTensor::new(output.tensor.threshold_backward(&grad.tensor, 0.0))
    }

    fn mse_forward(prediction: TchTensor, target: TchTensor) -> TchTensor {
        let loss = prediction
            .tensor
            .mse_loss(&target.tensor, tch::Reduction::Mean);
        TchTensor::new(loss.reshape([1]))
    }

    fn mse_backward(prediction: TchTensor, target: TchTensor, grad: TchTensor) -> TchTensor {
        let grad =
            prediction
                .tensor
                .mse_loss_backward(&grad.tensor, &target.tensor, tch::Reduction::Mean);
        TchTensor::new(grad)
    }

    /// Records libtorch's own autograd node: leaves that share the inputs'
    /// memory, the output with its graph. Saved as [graph output, x, weight,
    /// bias leaves, then Burn's x, weight, bias]: holding Burn's handles keeps
    /// Burn from reusing those buffers in place while the graph needs them.
    fn conv_forward_saved(
        x: TchTensor,
        weight: TchTensor,
        bias: TchTensor,
        spec: ConvSpec,
    ) -> (TchTensor, Vec<TchTensor>) {
        let leaf = |t: &TchTensor| t.tensor.detach().set_requires_grad(true);
        let (xl, wl, bl) = (leaf(&x), leaf(&weight), leaf(&bias));
        let graph = tch::with_grad(|| tch_conv(&xl, &wl, &bl, spec));
        let out = TchTensor::new(graph.detach());
        let saved = vec![
            TchTensor::new(graph),
            TchTensor::new(xl),
            TchTensor::new(wl),
            TchTensor::new(bl),
            x,
            weight,
            bias,
        ];
        (out, saved)
    }

    /// libtorch's convolution backward through the recorded node: the
    /// gradient of Σ(output·grad) with respect to the wanted leaves.
    fn conv_backward_saved(
        saved: Vec<TchTensor>,
        _spec: ConvSpec,
        wanted: [bool; 3],
        grad: TchTensor,
    ) -> [Option<TchTensor>; 3] {
        let graph = &saved[0].tensor;
        let leaves: Vec<&tch::Tensor> = (0..3)
            .filter(|&i| wanted[i])
            .map(|i| &saved[1 + i].tensor)
            .collect();
        if leaves.is_empty() {
            return [None, None, None];
        }
        let grads = tch::with_grad(|| {
            let objective = (graph * &grad.tensor).sum(graph.kind());
            tch::Tensor::run_backward(&[objective], &leaves, false, false)
        });
        let mut grads = grads.into_iter();
        wanted.map(|w| w.then(|| TchTensor::new(grads.next().expect("one gradient per leaf"))))
    }

    fn softmax_last_backward(output: TchTensor, grad: TchTensor) -> TchTensor {
        let kind = output.tensor.kind();
        TchTensor::new(tch_softmax_backward(&grad.tensor, &output.tensor, kind))
    }
}

fn tch_softmax_backward(grad: &tch::Tensor, output: &tch::Tensor, kind: tch::Kind) -> tch::Tensor {
    tch::Tensor::internal_softmax_backward_data(grad, output, -1, kind)
}

fused_ops_from_kernels!(LibTorch);

/// libtorch convolution on `x`, `weight`, `bias` as given.
fn tch_conv(
    x: &tch::Tensor,
    weight: &tch::Tensor,
    bias: &tch::Tensor,
    spec: ConvSpec,
) -> tch::Tensor {
    let pair = |v: [usize; 2]| [v[0] as i64, v[1] as i64];
    x.convolution(
        weight,
        Some(bias),
        pair(spec.stride),
        pair(spec.padding),
        pair(spec.dilation),
        spec.transposed,
        pair(spec.padding_out),
        spec.groups as i64,
    )
}
