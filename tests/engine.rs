//! Plan changes re-discretize only what they change.

mod common;

use common::plan_steps;
use innscope::engine::cpu::CpuEngine;
use innscope::inn::Plan;
use innscope::model::arch;

/// After each step the engine's weights are, to the bit, those of discretizing the whole model
/// afresh, and it re-discretized exactly the parameters the step changes.
#[test]
fn the_cpu_engine_redoes_only_the_parameters_a_plan_change_touches() {
    let model = arch::spatial_demo(5).expect("model");
    let names: Vec<&str> = model.doc.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1.weight",
            "conv1.bias",
            "conv2.weight",
            "conv2.bias",
            "fc.weight",
            "fc.bias"
        ]
    );
    let start = model.resolve(&Plan::native(model.native())).expect("valid");
    let mut engine = CpuEngine::new(&model, &start).expect("engine");
    assert_eq!(
        engine.last_change(),
        (6, 6),
        "the first plan does everything"
    );
    for (step, plan, changed) in plan_steps(&model) {
        engine.set_plan(&model, &plan).expect("re-discretizes");
        assert_eq!(engine.last_change(), (changed.len(), 6), "{step}");
        let fresh = model.discretize(&plan).expect("discretizes");
        let now = engine.weights().expect("weights");
        assert_eq!(now.len(), fresh.len(), "{step}");
        for (name, w) in &fresh {
            assert_eq!(&now[name], w, "{step}: {name}");
        }
    }
    // A plan the model refuses changes nothing, and the next change still knows what it had.
    let mut bad = Plan::native(model.native());
    bad.sizes.insert(0, 1);
    let bad = model.resolve(&bad).expect("resolves; the model refuses it");
    assert!(engine.set_plan(&model, &bad).is_err());
    assert_eq!(engine.plan(), &start);
    engine.set_plan(&model, &start).expect("re-discretizes");
    assert_eq!(
        engine.last_change(),
        (0, 6),
        "the refused plan left every weight as it was"
    );
}
