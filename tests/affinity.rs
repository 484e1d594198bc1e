//! With a window open, the UI thread keeps one CPU and training threads get
//! the others. Its own test binary: the reservation is once per process.
#![cfg(target_os = "linux")]

use latentlab::backend::{allowed_cpus, pin_training_thread, reserve_cpu_for_window};

#[test]
fn the_window_keeps_one_cpu_and_training_gets_the_rest() {
    let before = allowed_cpus();
    assert!(!before.is_empty(), "sched_getaffinity gave no CPUs");
    let (ui, training) = std::thread::spawn(|| {
        reserve_cpu_for_window();
        let ui = allowed_cpus();
        let training = std::thread::spawn(|| {
            pin_training_thread();
            allowed_cpus()
        })
        .join()
        .unwrap();
        (ui, training)
    })
    .join()
    .unwrap();
    if before.len() < 2 {
        // Nothing to split: nobody is pinned.
        assert_eq!(ui, before);
        assert_eq!(training, before);
    } else {
        assert_eq!(ui, vec![before[0]], "the UI thread keeps the first CPU");
        assert_eq!(
            training,
            before[1..].to_vec(),
            "training gets every other CPU"
        );
    }
    // Threads that never reserved or pinned are untouched.
    assert_eq!(allowed_cpus(), before);
}
