//! The fused GroupNorm and SiLU operations give the numbers and gradients of
//! Burn's composed ones, on every backend of the build.

use burn::module::Param;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;
use latentlab::backend::{BackendKind, available, select};
use latentlab::config::ExperimentConfig;
use latentlab::model::{Unet, fused};

/// Every backend of the build on the CPU, and libtorch's CUDA device when
/// there is one (bench/gpu.sh runs these on a GPU machine).
fn devices() -> Vec<Device> {
    let mut targets: Vec<(BackendKind, &str)> =
        available().into_iter().map(|k| (k, "cpu")).collect();
    if latentlab::backend::cuda_available() {
        targets.push((BackendKind::Tch, "cuda"));
    }
    targets
        .into_iter()
        .map(|(kind, device)| select(kind, device).unwrap().autodiff())
        .collect()
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// How far a fused one-input operation is from Burn's own on `x`: the largest
/// difference in output, then in the input's gradient (taken through a
/// random weighting, so every output element matters).
fn unary_differences<const D: usize>(
    x: Tensor<D>,
    fused_op: impl Fn(Tensor<D>) -> Tensor<D>,
    burn_op: impl Fn(Tensor<D>) -> Tensor<D>,
) -> (f32, f32) {
    let weight = Tensor::<D>::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device());
    let run = |op: &dyn Fn(Tensor<D>) -> Tensor<D>| {
        let x = x.clone().detach().require_grad();
        let out = op(x.clone());
        let grads = (out.clone() * weight.clone()).sum().backward();
        (out.inner(), x.grad(&grads).unwrap())
    };
    let (out_f, dx_f) = run(&fused_op);
    let (out_b, dx_b) = run(&burn_op);
    (max_abs_diff(out_f, out_b), max_abs_diff(dx_f, dx_b))
}

/// A GroupNorm whose affine parameters are not the identity.
fn norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    let mut norm = GroupNormConfig::new(groups, channels).init(device);
    let random = || Tensor::<1>::random([channels], Distribution::Normal(0.0, 1.0), device);
    norm.gamma = Some(Param::from_tensor(random()));
    norm.beta = Some(Param::from_tensor(random()));
    norm
}

#[test]
fn group_norm_matches_burn_forward_and_gradients() {
    for device in devices() {
        // The last is large enough for flex's kernels to split it by image.
        for (groups, channels, side) in [(8, 16, 8), (8, 64, 2), (4, 32, 4), (1, 8, 3), (8, 64, 16)]
        {
            let norm = norm(groups, channels, &device);
            let x = Tensor::<4>::random(
                [5, channels, side, side],
                Distribution::Normal(0.3, 2.0),
                &device,
            );
            let weight = Tensor::<4>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);

            let run = |fused_path: bool| {
                let x = x.clone().detach().require_grad();
                let out = if fused_path {
                    fused::group_norm(&norm, x.clone())
                } else {
                    norm.forward(x.clone())
                };
                let grads = (out.clone() * weight.clone()).sum().backward();
                let gamma = norm.gamma.as_ref().unwrap().val().grad(&grads).unwrap();
                let beta = norm.beta.as_ref().unwrap().val().grad(&grads).unwrap();
                (out.inner(), x.grad(&grads).unwrap(), gamma, beta)
            };
            let (out_f, dx_f, dg_f, db_f) = run(true);
            let (out_b, dx_b, dg_b, db_b) = run(false);
            let what = format!("{device:?} groups {groups} channels {channels}");
            assert!(max_abs_diff(out_f, out_b) < 1e-4, "forward, {what}");
            assert!(max_abs_diff(dx_f, dx_b) < 1e-4, "x gradient, {what}");
            assert!(max_abs_diff(dg_f, dg_b) < 1e-3, "gamma gradient, {what}");
            assert!(max_abs_diff(db_f, db_b) < 1e-3, "beta gradient, {what}");
        }
    }
}

#[test]
fn group_norm_normalises_each_group_without_autodiff() {
    for device in devices() {
        let device = device.inner();
        let mut norm = GroupNormConfig::new(2, 4).init(&device);
        norm.gamma = None;
        norm.beta = None;
        norm.affine = false;
        let x = Tensor::<4>::random([3, 4, 5, 5], Distribution::Normal(4.0, 3.0), &device);
        let out = fused::group_norm(&norm, x).reshape([3, 2, 50]);
        let mean = out.clone().mean_dim(2).abs().max().into_scalar::<f32>();
        let var = out
            .var_bias(2)
            .sub_scalar(1.0)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(
            mean < 1e-5,
            "{device:?}: group means should be 0, max |mean| {mean}"
        );
        assert!(
            var < 1e-3,
            "{device:?}: group variances should be 1, max error {var}"
        );
    }
}

#[test]
fn silu_matches_burn_forward_and_gradient() {
    for device in devices() {
        // Small and odd-sized, then large (split across threads) with
        // values far into both tails.
        for (shape, spread) in [([7, 33], 4.0), ([64, 1024], 40.0)] {
            let x = Tensor::<2>::random(shape, Distribution::Normal(0.0, spread), &device);
            let (out, dx) = unary_differences(x, fused::silu, activation::silu);
            assert!(
                out < 1e-5 * spread as f32,
                "{device:?} forward, spread {spread}"
            );
            assert!(dx < 1e-5, "{device:?} gradient, spread {spread}");
        }
    }
}

#[test]
fn softmax_matches_burn_forward_and_gradient() {
    for device in devices() {
        let x = Tensor::<4>::random([3, 2, 5, 9], Distribution::Normal(0.0, 3.0), &device);
        let (out, dx) = unary_differences(x, fused::softmax_last, |t| activation::softmax(t, 3));
        assert!(out < 1e-6, "{device:?} forward");
        assert!(dx < 1e-5, "{device:?} gradient");
    }
}

/// Sampling runs the backend's fused attention, training the differentiable
/// composition: the seed U-Net must give the same noise estimate either way.
#[test]
fn unet_sampling_path_matches_training_path() {
    let cfg = ExperimentConfig::preset("seed").unwrap();
    for device in devices() {
        let unet = Unet::new(&cfg.unet, 1, &device);
        let x = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let steps = [0, 10, 500, 999];
        let tracked = unet.forward(x.clone(), &steps).inner();
        let plain = unet.valid().forward(x.inner(), &steps);
        let diff = max_abs_diff(tracked.clone(), plain);
        let scale = tracked.abs().max().into_scalar::<f32>();
        assert!(
            scale > 1e-3,
            "{device:?}: the U-Net output should not vanish"
        );
        assert!(
            diff < 1e-4 * scale.max(1.0),
            "{device:?}: paths differ by {diff}"
        );
    }
}

/// The fused attention on the projection gives Burn's attention after the
/// reshapes: the U-Net's 4 tokens of 8×4, a long sequence, odd sizes.
#[test]
fn attention_on_the_projection_matches_burn() {
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;
    for device in devices() {
        let device = device.inner();
        for (b, n, heads, d) in [(37, 4, 8, 4), (2, 7, 3, 5), (1, 64, 4, 8), (3, 1, 2, 2)] {
            let qkv = Tensor::<3>::random(
                [b, n, 3 * heads * d],
                Distribution::Normal(0.0, 2.0),
                &device,
            );
            let fused = fused::attention_qkv(qkv.clone(), heads, d);
            let split = qkv.reshape([b, n, 3, heads, d]).permute([2, 0, 3, 1, 4]);
            let part =
                |i: usize| -> Tensor<4> { split.clone().narrow(0, i, 1).reshape([b, heads, n, d]) };
            let options = AttentionModuleOptions::default();
            let reference = attention(part(0), part(1), part(2), None, None, options)
                .swap_dims(1, 2)
                .reshape([b, n, heads * d]);
            let diff = max_abs_diff(fused, reference);
            assert!(
                diff < 1e-5,
                "{device:?} b{b} n{n} heads{heads} d{d}: {diff}"
            );
        }
    }
}

/// The fused addition gives Burn's sum and gradients, for a same-shape
/// operand and for one value per image and channel.
#[test]
fn add_matches_burn_forward_and_gradients() {
    for device in devices() {
        for (shape_b, batch) in [
            ([37, 16, 8, 8], 37),
            ([37, 16, 1, 1], 37),
            ([3, 5, 1, 1], 3),
        ] {
            let a = Tensor::<4>::random([batch, shape_b[1], 8, 8], Distribution::Default, &device);
            let b = Tensor::<4>::random(shape_b, Distribution::Default, &device);
            let w = Tensor::<4>::random(a.dims(), Distribution::Default, &device);
            let run = |fused_path: bool| {
                let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
                let out = if fused_path {
                    fused::add(a.clone(), b.clone())
                } else {
                    a.clone() + b.clone()
                };
                let grads = (out.clone() * w.clone()).sum().backward();
                (
                    out.inner(),
                    a.grad(&grads).unwrap(),
                    b.grad(&grads).unwrap(),
                )
            };
            let (out_f, da_f, db_f) = run(true);
            let (out_b, da_b, db_b) = run(false);
            let what = format!("{device:?} b {shape_b:?}");
            assert_eq!(max_abs_diff(out_f, out_b), 0.0, "sum, {what}");
            assert_eq!(max_abs_diff(da_f, da_b), 0.0, "a gradient, {what}");
            assert!(max_abs_diff(db_f, db_b) < 1e-4, "b gradient, {what}");
        }
    }
}

#[test]
fn relu_matches_burn_forward_and_gradient() {
    for device in devices() {
        let x = Tensor::<4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &device);
        let (out, dx) = unary_differences(x, fused::relu, activation::relu);
        assert_eq!(out, 0.0, "{device:?} forward");
        assert_eq!(dx, 0.0, "{device:?} gradient");
    }
}

#[test]
fn mse_matches_the_formula_and_both_gradients() {
    for device in devices() {
        let a = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.5, 1.0), &device);
        let run = |fused_path: bool| {
            let (a, b) = (
                a.clone().detach().require_grad(),
                b.clone().detach().require_grad(),
            );
            let loss = if fused_path {
                fused::mse_loss(a.clone(), b.clone())
            } else {
                (a.clone() - b.clone()).powi_scalar(2).mean()
            };
            // A scale on the loss checks the incoming gradient is applied.
            let grads = (loss.clone() * 3.0).backward();
            (
                loss.inner(),
                a.grad(&grads).unwrap(),
                b.grad(&grads).unwrap(),
            )
        };
        let (loss_f, da_f, db_f) = run(true);
        let (loss_b, da_b, db_b) = run(false);
        assert_eq!(loss_f.dims(), [1]);
        assert!(max_abs_diff(loss_f, loss_b) < 1e-6, "{device:?} loss");
        assert!(
            max_abs_diff(da_f, da_b) < 1e-6,
            "{device:?} prediction gradient"
        );
        assert!(
            max_abs_diff(db_f, db_b) < 1e-6,
            "{device:?} target gradient"
        );
    }
}

/// Every convolution shape the models use, plain and transposed, with and
/// without bias: the fused operation gives Burn's output and gradients.
#[test]
fn convolutions_match_burn_forward_and_gradients() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    for device in devices() {
        let check =
            |what: &str,
             x: Tensor<4>,
             fused_fwd: &dyn Fn(Tensor<4>) -> Tensor<4>,
             burn_fwd: &dyn Fn(Tensor<4>) -> Tensor<4>,
             params: &dyn Fn(&burn::tensor::Gradients) -> Vec<Tensor<1>>| {
                let out_dims = burn_fwd(x.clone()).dims();
                let weight = Tensor::<4>::random(out_dims, Distribution::Default, &x.device());
                let run = |fused_path: bool| {
                    let x = x.clone().detach().require_grad();
                    let out = if fused_path {
                        fused_fwd(x.clone())
                    } else {
                        burn_fwd(x.clone())
                    };
                    let grads = (out.clone() * weight.clone()).sum().backward();
                    (out.inner(), x.grad(&grads).unwrap(), params(&grads))
                };
                let (out_f, dx_f, p_f) = run(true);
                let (out_b, dx_b, p_b) = run(false);
                let what = format!("{device:?} {what}");
                assert!(max_abs_diff(out_f, out_b) < 1e-4, "forward, {what}");
                assert!(max_abs_diff(dx_f, dx_b) < 1e-4, "x gradient, {what}");
                assert_eq!(p_f.len(), p_b.len());
                for (i, (a, b)) in p_f.into_iter().zip(p_b).enumerate() {
                    assert!(max_abs_diff(a, b) < 1e-3, "parameter {i} gradient, {what}");
                }
            };
        // (in, out, kernel, stride, bias, side, batch): the autoencoder's
        // 28×28 and 14×14 maps, the U-Net's 8×8 to 2×2, 1×1 convolutions
        // (skips, channel attention on pooled maps); batches 19 to 37 make
        // flex's kernels chunks of several images (stacked into one tall
        // image, where taps must not read across images) and a remainder
        // chunk, batch 1 takes their in-place path, and maps exactly stride
        // times the output (3×3 padding 1, 4×4 stride 2 on even maps) their
        // phase planes; an odd map with stride 2 takes the tap table; 4×4,
        // 2×2 and 1×1 maps under a 3×3 kernel go by regions that read the
        // same taps.
        for (cin, cout, k, stride, bias, side, batch) in [
            (1, 16, 3, 1, true, 8, 3),
            (1, 16, 3, 2, true, 28, 2),
            (16, 32, 3, 2, true, 14, 2),
            (16, 32, 3, 2, true, 8, 3),
            (8, 16, 3, 2, true, 7, 3),
            (8, 8, 3, 1, false, 7, 3),
            (16, 16, 3, 1, false, 14, 2),
            (32, 32, 3, 1, true, 2, 19),
            (16, 16, 3, 1, true, 4, 21),
            (8, 8, 3, 1, false, 1, 5),
            (4, 8, 3, 1, true, 8, 22),
            (16, 32, 3, 2, true, 8, 37),
            (16, 4, 1, 1, true, 1, 3),
            (16, 2, 1, 1, false, 1, 19),
            (32, 16, 1, 1, true, 8, 1),
            (32, 16, 1, 1, true, 8, 19),
            (16, 16, 3, 1, true, 28, 1),
        ] {
            let conv = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
                .with_bias(bias)
                .init(&device);
            let x = Tensor::<4>::random(
                [batch, cin, side, side],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let params = |g: &burn::tensor::Gradients| {
                let mut v = vec![conv.weight.val().grad(g).unwrap().flatten::<1>(0, 3)];
                if let Some(b) = &conv.bias {
                    v.push(b.val().grad(g).unwrap());
                }
                v
            };
            check(
                &format!("conv {cin}->{cout} k{k} s{stride} side {side} batch {batch}"),
                x,
                &|x| fused::conv2d(&conv, x),
                &|x| conv.forward(x),
                &params,
            );
        }
        // (in, out, kernel, stride, padding, extra output row, side, batch).
        for (cin, cout, k, stride, pad, pad_out, side, batch) in [
            (32, 16, 4, 2, 1, 0, 4, 2),
            (32, 16, 4, 2, 1, 0, 7, 2),
            (16, 1, 4, 2, 1, 0, 14, 2),
            (48, 16, 3, 1, 1, 0, 4, 2),
            (16, 8, 3, 1, 1, 0, 9, 2),
            (64, 32, 3, 1, 1, 0, 2, 19),
            (16, 8, 4, 2, 1, 0, 4, 21),
            (64, 32, 4, 2, 1, 0, 2, 19),
            (16, 8, 3, 2, 1, 1, 4, 3),
        ] {
            let conv = ConvTranspose2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding([pad, pad])
                .with_padding_out([pad_out, pad_out])
                .init(&device);
            let x = Tensor::<4>::random(
                [batch, cin, side, side],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let params = |g: &burn::tensor::Gradients| {
                vec![
                    conv.weight.val().grad(g).unwrap().flatten::<1>(0, 3),
                    conv.bias.as_ref().unwrap().val().grad(g).unwrap(),
                ]
            };
            check(
                &format!("transposed {cin}->{cout} k{k} s{stride} side {side}"),
                x,
                &|x| fused::conv_transpose2d(&conv, x),
                &|x| conv.forward(x),
                &params,
            );
        }
    }
}

/// flex's convolution kernels split a batch by its shape alone and sum in a
/// fixed order, so one thread and three give the same bits: a resumed run
/// reproduces the uninterrupted one whatever `--threads` it gets.
#[cfg(feature = "flex")]
#[test]
fn flex_convolutions_give_the_same_bits_on_any_thread_count() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    let device = select(BackendKind::Flex, "cpu").unwrap().autodiff();
    let conv = Conv2dConfig::new([16, 32], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    let up = ConvTranspose2dConfig::new([32, 8], [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(&device);
    let x = Tensor::<4>::random([37, 16, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let x = x.clone().detach().require_grad();
            let out = fused::conv_transpose2d(&up, fused::conv2d(&conv, x.clone()));
            let grads = (out.clone() * out.clone()).sum().backward();
            [
                out.inner().into_data(),
                x.grad(&grads).unwrap().into_data(),
                conv.weight.val().grad(&grads).unwrap().into_data(),
                up.weight.val().grad(&grads).unwrap().into_data(),
            ]
        })
    };
    assert_eq!(run(1), run(3));
}

/// An empty batch is a valid (if useless) input: flex's kernels hand it to
/// Burn's, with no panic, an empty output and gradients of the right shapes.
#[cfg(feature = "flex")]
#[test]
fn an_empty_batch_convolves_to_an_empty_output() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    let device = select(BackendKind::Flex, "cpu").unwrap().autodiff();
    let conv = Conv2dConfig::new([16, 32], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    let x = Tensor::<4>::zeros([0, 16, 8, 8], &device).require_grad();
    let out = fused::conv2d(&conv, x.clone());
    assert_eq!(out.dims(), [0, 32, 8, 8], "{device:?}");
    let grads = out.sum().backward();
    assert_eq!(x.grad(&grads).unwrap().dims(), [0, 16, 8, 8]);
    let dw = conv.weight.val().grad(&grads).unwrap();
    assert_eq!(dw.abs().sum().into_scalar::<f32>(), 0.0, "{device:?}");
}
