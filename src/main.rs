//! The `innscope` command line. With no subcommand it opens the explorer on a model (the
//! bundled demo when none is given); subcommands do headless work.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory();
    quiet_vulkan_device_select();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every slider tick frees the discrete weights of the last plan and allocates those of the
/// next (tens of MB for a large model), and every training step its activations. glibc's
/// defaults hand such blocks back to the kernel on `free` (`mmap`ed chunks, heap trimming), so
/// each new block faults its pages in again: that was half the time of re-discretizing a
/// ResNet-18-sized INN. Serve them from the heap and keep freed memory for the next plan.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // The largest threshold glibc accepts on 64-bit targets (`HEAP_MAX_SIZE / 2`).
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;
    #[expect(unsafe_code, reason = "mallopt, before any thread exists")]
    // SAFETY: `mallopt` only changes allocator parameters; it is called first thing in `main`,
    // before any other thread could be allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` connects to the Wayland display
/// to find the GPU that drives it, and libwayland prints `error: XDG_RUNTIME_DIR is invalid or
/// not set` when there is none (every headless command, and a desktop without that variable).
/// The layer only reorders adapters, and innscope picks its own (hardware first), so it is
/// turned off unless the user steers it (`MESA_VK_DEVICE_SELECT`, or `NODEVICE_SELECT` set
/// either way).
#[cfg(target_os = "linux")]
fn quiet_vulkan_device_select() {
    if std::env::var_os("MESA_VK_DEVICE_SELECT").is_some()
        || std::env::var_os("NODEVICE_SELECT").is_some()
    {
        return;
    }
    #[expect(unsafe_code, reason = "set_var, before any thread exists")]
    // SAFETY: called in `main` before any other thread exists, so nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

#[cfg(not(target_os = "linux"))]
fn quiet_vulkan_device_select() {}
