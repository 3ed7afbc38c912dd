//! Time spent on the GPU itself, between two timestamps written into a command encoder: what
//! the device took to run a span of work, without the host's recording, submission and
//! waiting. Only on devices with timestamp queries inside encoders (a headless context asks
//! for them where the adapter has them).

use std::time::Duration;

use eframe::egui_wgpu::wgpu;

use super::{GpuContext, GpuError};

/// Features a [`GpuTimer`] needs.
pub const TIMER_FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);

/// Two timestamps, their resolve buffer and a staging buffer to read them through.
pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl GpuTimer {
    /// A timer on `ctx`'s device, or `None` where the device has no timestamp queries inside
    /// encoders.
    #[must_use]
    pub fn new(ctx: &GpuContext) -> Option<Self> {
        if !ctx.device.features().contains(TIMER_FEATURES) {
            return None;
        }
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("innscope timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let buffer = |label: &str, usage: wgpu::BufferUsages| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(Self {
            queries,
            resolved: buffer(
                "innscope timer resolve",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            staging: buffer(
                "innscope timer staging",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
        })
    }

    /// Mark the start of the timed span.
    pub fn start(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.write_timestamp(&self.queries, 0);
    }

    /// Mark its end, and queue the copy [`GpuTimer::read`] reads.
    pub fn stop(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.write_timestamp(&self.queries, 1);
        encoder.resolve_query_set(&self.queries, 0..2, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, 16);
    }

    /// The span between the last submitted start and stop (waits for the GPU).
    ///
    /// # Errors
    /// A failed map or a lost device.
    pub fn read(&self, ctx: &GpuContext) -> Result<Duration, GpuError> {
        let data = ctx.map_read(ctx.encoder("innscope timer read"), &self.staging, 16)?;
        let ticks: &[u64] = bytemuck::cast_slice(&data);
        let period_ns = f64::from(ctx.queue.get_timestamp_period());
        #[expect(clippy::cast_precision_loss, reason = "tick spans far below 2^52")]
        let ns = ticks[1].saturating_sub(ticks[0]) as f64 * period_ns;
        Ok(Duration::from_secs_f64(ns * 1e-9))
    }
}
