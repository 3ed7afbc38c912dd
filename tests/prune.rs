//! Conventional L1 filter pruning of the discrete twin, checked two ways: the kept filters are
//! the ones with the largest L1 norms (set by hand here), and the pruned network computes
//! exactly what the full network computes with the dropped filters zeroed (a dropped channel
//! is 0 after ReLU and pooling, so the next layer never sees it).

use innscope::data::assets;
use innscope::data::input::grey_batch;
use innscope::engine::cpu::CpuEngine;
use innscope::inn::Plan;
use innscope::model::Model;
use innscope::model::arch;
use innscope::model::prune::{l1_prune, layer_widths, strongest_filters};
use innscope::sweep::twin_widths;
use ndarray::{Axis, s};

fn logits(model: &Model) -> ndarray::Array2<f32> {
    let plan = model.resolve(&model.default_plan()).expect("plan");
    let engine = CpuEngine::new(model, &plan).expect("engine");
    let data = assets::eval_subset().expect("subset");
    let imgs: Vec<&[u8]> = (0..8).map(|i| data.images.image(i * 100)).collect();
    let x = grey_batch(&imgs, 28, 28, &model.doc.input, [28, 28]);
    engine.forward(model, x.view()).expect("forward")
}

#[test]
fn the_strongest_filters_survive_and_the_pruned_network_equals_the_zeroed_one() {
    let mut twin = arch::fashion_cnn(11, [6, 8, 10], None, false, 1.0).expect("twin");
    // conv1: filter k's entries all equal (k + 1) / 100, except filters 1 and 4, made largest.
    let w = twin.tensors.get_mut("conv1.weight").expect("conv1");
    for (k, mut f) in w.axis_iter_mut(Axis(0)).enumerate() {
        let v = match k {
            1 => 0.5,
            4 => -0.4, // L1 counts magnitudes
            _ => (k as f32 + 1.0) / 100.0,
        };
        f.fill(v);
    }
    assert_eq!(
        strongest_filters(&twin.tensors["conv1.weight"].clone(), 3),
        vec![1, 4, 5]
    );
    let pruned = l1_prune(&twin, &[3, 5, 10]).expect("prunes");
    assert_eq!(layer_widths(&pruned), vec![3, 5, 10]);
    let w1 = &pruned.tensors["conv1.weight"];
    assert_eq!(w1.shape(), &[3, 1, 5, 5]);
    assert_eq!(
        w1.index_axis(Axis(0), 1),
        twin.tensors["conv1.weight"].index_axis(Axis(0), 4)
    );
    assert_eq!(pruned.tensors["conv2.weight"].shape(), &[5, 3, 5, 5]);
    assert_eq!(pruned.tensors["conv3.weight"].shape(), &[10, 5, 5, 5]);
    assert_eq!(pruned.tensors["fc.weight"].shape(), &[10, 10]);

    // The same network with the dropped filters (and biases) zeroed instead of removed.
    let mut zeroed = twin.clone();
    let keep1 = [1_usize, 4, 5];
    let keep2 = strongest_filters(&twin.tensors["conv2.weight"].select(Axis(1), &keep1), 5);
    for (name, keep) in [("conv1", &keep1[..]), ("conv2", &keep2[..])] {
        let n = zeroed.tensors[&format!("{name}.weight")].shape()[0];
        for k in (0..n).filter(|k| !keep.contains(k)) {
            zeroed
                .tensors
                .get_mut(&format!("{name}.weight"))
                .expect("w")
                .slice_mut(s![k, .., .., ..])
                .fill(0.0);
            zeroed.tensors.get_mut(&format!("{name}.bias")).expect("b")[k] = 0.0;
        }
    }
    let a = logits(&pruned);
    let b = logits(&zeroed);
    let diff = (&a - &b).iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn the_twin_takes_the_inns_widths_and_has_its_parameter_count() {
    let inn = assets::demo_model();
    let twin = assets::demo_twin();
    for keep in [1.0, 0.75, 0.5, 0.3] {
        let plan = Plan::keep(&inn.doc.groups, keep, inn.native());
        let resolved = inn.resolve(&plan).expect("plan");
        let widths = twin_widths(&inn, &resolved, &twin);
        let sizes: Vec<usize> = resolved.partitions.values().map(Vec::len).collect();
        assert_eq!(widths, sizes);
        let pruned = innscope::sweep::twin_at(&twin, &widths).expect("prunes");
        let twin_plan = pruned.resolve(&pruned.default_plan()).expect("plan");
        assert_eq!(
            pruned.param_count(&twin_plan).expect("count"),
            inn.param_count(&resolved).expect("count")
        );
    }
    // Continuous parameters are pruned by partition size, not by L1 norms.
    assert!(l1_prune(&inn, &[2, 2, 2]).is_err());
}

#[test]
fn a_hidden_fully_connected_layer_is_pruned_by_the_l1_norms_of_its_rows() {
    let mut twin = arch::fashion_cnn(12, [6, 8, 10], Some(7), false, 1.0).expect("twin");
    // fc1: row k's entries all equal (k + 1) / 100, except rows 2 and 5, made largest; so the
    // three strongest units are 2, 5 and 6.
    let w = twin.tensors.get_mut("fc1.weight").expect("fc1");
    for (k, mut row) in w.axis_iter_mut(Axis(0)).enumerate() {
        row.fill(match k {
            2 => 0.3,
            5 => -0.25,
            _ => (k as f32 + 1.0) / 100.0,
        });
    }
    let bias = twin.tensors.get_mut("fc1.bias").expect("fc1 bias");
    bias.iter_mut()
        .enumerate()
        .for_each(|(k, b)| *b = 0.01 * k as f32);
    assert_eq!(layer_widths(&twin), vec![6, 8, 10, 7]);
    assert!(l1_prune(&twin, &[6, 8, 10]).is_err(), "one width per layer");

    let pruned = l1_prune(&twin, &[6, 8, 10, 3]).expect("prunes");
    assert_eq!(layer_widths(&pruned), vec![6, 8, 10, 3]);
    assert_eq!(pruned.tensors["fc1.weight"].shape(), &[3, 10]);
    assert_eq!(pruned.tensors["fc2.weight"].shape(), &[10, 3]);
    let keep = [2_usize, 5, 6];
    for (i, &k) in keep.iter().enumerate() {
        assert_eq!(
            pruned.tensors["fc2.weight"].index_axis(Axis(1), i),
            twin.tensors["fc2.weight"].index_axis(Axis(1), k)
        );
        assert_eq!(pruned.tensors["fc1.bias"][i], 0.01 * k as f32);
    }

    // The same network with the dropped units' rows and biases zeroed: ReLU makes them 0.
    let mut zeroed = twin.clone();
    for k in (0..7).filter(|k| !keep.contains(k)) {
        let w = zeroed.tensors.get_mut("fc1.weight").expect("w");
        w.index_axis_mut(Axis(0), k).fill(0.0);
        zeroed.tensors.get_mut("fc1.bias").expect("b")[k] = 0.0;
    }
    let a = logits(&pruned);
    let b = logits(&zeroed);
    let diff = (&a - &b).iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    assert!(diff < 1e-5, "{diff}");
}
