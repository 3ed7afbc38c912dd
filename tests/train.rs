//! Training: the differentiable discretization equals the engines' (an independent
//! implementation: gathers in tap order against dense interpolation matrices), and a tiny
//! INN and a tiny discrete twin learn: their loss on a batch falls over a few steps.

use candle_core::{Device, Tensor};
use innscope::data::assets;
use innscope::data::input::grey_batch;
use innscope::inn::{PartitionKind, Plan};
use innscope::model::arch;
use innscope::train::{TrainConfig, Trainer, copy_matching, deepen_head, discretize_tensor};
use rand::SeedableRng;

#[test]
fn differentiable_discretization_equals_the_engines() {
    let model = arch::fashion_cnn(3, [6, 10, 12], None, true, 0.5).expect("model");
    for (sizes, res) in [
        (vec![6, 10, 12], 28),
        (vec![3, 7, 5], 20),
        (vec![9, 4, 12], 44),
    ] {
        let plan = Plan {
            sizes: sizes
                .into_iter()
                .enumerate()
                .map(|(g, n)| (g as u32, n))
                .collect(),
            partition: PartitionKind::Uniform,
            resolution: [res, res],
        };
        let resolved = model.resolve(&plan).expect("plan");
        let want = model.discretize(&resolved).expect("discretize");
        for p in &model.doc.params {
            let lambda = &model.tensors[&p.name];
            let t = Tensor::from_vec(
                lambda.iter().copied().collect::<Vec<f32>>(),
                lambda.shape(),
                &Device::Cpu,
            )
            .expect("tensor");
            let got = discretize_tensor(&t, &p.layout, &resolved).expect("discretize");
            let w = &want[&p.name];
            assert_eq!(got.dims(), w.shape(), "{}", p.name);
            let got: Vec<f32> = got.flatten_all().and_then(|t| t.to_vec1()).expect("values");
            let scale = w.iter().fold(0.0_f32, |m, v| m.max(v.abs())).max(1e-6);
            for (a, b) in got.iter().zip(w.iter()) {
                assert!((a - b).abs() <= 1e-5 * scale, "{}: {a} vs {b}", p.name);
            }
        }
    }
}

/// Loss on a fixed batch at full width and native resolution.
fn loss(trainer: &Trainer, x: &Tensor, labels: &Tensor, model: &innscope::model::Model) -> f32 {
    let plan = model.resolve(&model.default_plan()).expect("plan");
    let logits = trainer.logits(x, &plan).expect("logits");
    candle_nn::loss::cross_entropy(&logits, labels)
        .and_then(|l| l.to_scalar::<f32>())
        .expect("loss")
}

#[test]
fn a_tiny_inn_and_its_twin_learn_in_a_few_steps() {
    let data = assets::eval_subset().expect("subset");
    let idx: Vec<usize> = (0..64).map(|i| i * 15).collect();
    let imgs: Vec<&[u8]> = idx.iter().map(|&i| data.images.image(i)).collect();
    let labels: Vec<u32> = idx.iter().map(|&i| u32::from(data.labels[i])).collect();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).expect("labels");
    for continuous in [true, false] {
        let model = arch::fashion_cnn(5, [6, 8, 10], Some(8), continuous, 0.5).expect("model");
        let config = TrainConfig {
            lr: 3e-3,
            resolutions: if continuous {
                vec![20, 28, 36]
            } else {
                vec![28]
            },
            min_keep: if continuous { 0.5 } else { 1.0 },
            full_width_prob: 0.5,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(model.clone(), config).expect("trainer");
        let native = grey_batch(&imgs, 28, 28, &model.doc.input, [28, 28]);
        let to_tensor = |a: ndarray::Array4<f32>| {
            let shape = a.shape().to_vec();
            Tensor::from_vec(a.into_raw_vec_and_offset().0, shape, &Device::Cpu).expect("x")
        };
        let x28 = to_tensor(native);
        let before = loss(&trainer, &x28, &labels, &model);
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..60 {
            let plan = trainer.sample_plan(&mut rng).expect("plan");
            let x = to_tensor(grey_batch(&imgs, 28, 28, &model.doc.input, plan.resolution));
            trainer.step(&x, &labels, &plan, 1e-2).expect("step");
        }
        let after = loss(&trainer, &x28, &labels, &model);
        assert!(
            after < 0.8 * before,
            "continuous {continuous}: loss {before} -> {after}"
        );
    }
}

/// The bundled demo INN and twin have exactly the architecture `innscope train` builds, so the
/// commands in `assets/README.md` reproduce them.
#[test]
fn the_bundled_models_have_the_architecture_train_builds() {
    // The INN's control grids are 0.75 of each width (`--control-ratio 0.75`); the twin has no
    // control grids. Both have a hidden layer of 128 units (`--hidden 128`).
    for (bundled, continuous, ratio) in [
        (assets::demo_model(), true, 0.75),
        (assets::demo_twin(), false, 1.0),
    ] {
        let built =
            arch::fashion_cnn(1, [32, 64, 128], Some(128), continuous, ratio).expect("model");
        assert_eq!(bundled.doc.params, built.doc.params);
        assert_eq!(bundled.doc.graph, built.doc.graph);
        assert_eq!(bundled.doc.groups, built.doc.groups);
        for (name, t) in &built.tensors {
            assert_eq!(bundled.tensors[name].shape(), t.shape(), "{name}");
        }
    }
}

/// Logits of `model` at full width and native resolution for eight subset images.
fn subset_logits(model: &innscope::model::Model) -> ndarray::Array2<f32> {
    let data = assets::eval_subset().expect("subset");
    let imgs: Vec<&[u8]> = (0..8).map(|i| data.images.image(i * 97)).collect();
    let x = grey_batch(&imgs, 28, 28, &model.doc.input, [28, 28]);
    let plan = model.resolve(&model.default_plan()).expect("plan");
    let engine = innscope::engine::cpu::CpuEngine::new(model, &plan).expect("engine");
    engine.forward(model, x.view()).expect("forward")
}

/// `--init`: the matching parameters are copied, and a head that gained a hidden layer starts
/// as the identity followed by the old classifier, so a deepened discrete network computes
/// exactly what the one it came from did (the pooled features are non-negative, ReLU passes
/// them).
#[test]
fn a_warm_start_copies_what_matches_and_a_deepened_head_starts_as_the_old_one() {
    let from = arch::fashion_cnn(5, [6, 8, 10], None, false, 1.0).expect("model");

    let mut other = arch::fashion_cnn(6, [6, 8, 12], None, false, 1.0).expect("model");
    let copied = copy_matching(&mut other, &from);
    // conv3 and fc read or write the 12 channels of the last group: only their bias over the
    // 10 classes still fits.
    assert_eq!(
        copied,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc.bias"
        ]
    );
    assert_eq!(other.tensors["conv2.weight"], from.tensors["conv2.weight"]);
    assert_ne!(
        other.tensors["conv3.bias"].shape(),
        from.tensors["conv3.bias"].shape()
    );

    let mut deeper = arch::fashion_cnn(6, [6, 8, 10], Some(10), false, 1.0).expect("model");
    assert_eq!(
        copy_matching(&mut deeper, &from).len(),
        6,
        "the convolutions"
    );
    let set = deepen_head(&mut deeper, &from).expect("deepen");
    assert_eq!(set, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
    let (a, b) = (subset_logits(&from), subset_logits(&deeper));
    let diff = (&a - &b).iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    assert!(diff < 1e-5, "{diff}");

    // Continuous, control grid as fine as the partition (ratio 1): the discretized fc1 is
    // diagonal (cubic interpolation is exact at its nodes), its diagonal the trapezoid weights
    // times τ — 1/2 at both ends, 1 inside — scaled so that the rows sum to 1 on average.
    let from = arch::fashion_cnn(5, [6, 8, 10], None, true, 1.0).expect("model");
    let mut deeper = arch::fashion_cnn(6, [6, 8, 10], Some(10), true, 1.0).expect("model");
    copy_matching(&mut deeper, &from);
    assert_eq!(deepen_head(&mut deeper, &from).expect("deepen").len(), 4);
    let plan = deeper.resolve(&deeper.default_plan()).expect("plan");
    let w = deeper
        .discretize(&plan)
        .expect("discretize")
        .remove("fc1.weight")
        .expect("fc1");
    let mean = (8.0 + 2.0 * 0.5) / 10.0;
    for i in 0..10 {
        for j in 0..10 {
            let want = match (i == j, i) {
                (false, _) => 0.0,
                (true, 0 | 9) => 0.5 / mean,
                (true, _) => 1.0 / mean,
            };
            assert!(
                (w[[i, j]] - want).abs() < 1e-5,
                "fc1[{i}, {j}] = {}",
                w[[i, j]]
            );
        }
    }

    // Nothing to deepen without a hidden layer.
    let mut flat = arch::fashion_cnn(6, [6, 8, 10], None, true, 1.0).expect("model");
    assert!(deepen_head(&mut flat, &from).expect("deepen").is_empty());
}
