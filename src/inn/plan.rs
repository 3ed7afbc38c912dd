//! The discretization plan: a size and a partition for every group, and the input resolution.
//!
//! A [`Plan`] is what the sliders set. [`Plan::resolve`] turns it into the concrete partition
//! points of every group and the resolution scale, checking every number a user can type.

use std::collections::BTreeMap;

use super::group::{Group, GroupId};
use super::partition::{PartitionKind, linspace, resample_quantile};
use super::{Error, MAX_GROUP_SIZE, MAX_RESOLUTION};

/// Sizes per group, partition kind and input resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Partition size per group; a group that is missing gets its default size.
    pub sizes: BTreeMap<GroupId, usize>,
    /// How partitions are chosen. Default is learned (uniform for groups without learned points).
    pub partition: PartitionKind,
    /// Input resolution `[height, width]` in pixels.
    pub resolution: [usize; 2],
}

/// A plan made concrete: partition points per group and the resolution scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Partition points per group.
    pub partitions: BTreeMap<GroupId, Vec<f32>>,
    /// Input resolution `[height, width]` in pixels.
    pub resolution: [usize; 2],
    /// `resolution / native` per image axis (height, width).
    pub scale: [f32; 2],
}

impl Plan {
    /// Every group at its default size, at the native resolution.
    #[must_use]
    pub fn native(native: [usize; 2]) -> Self {
        Self {
            sizes: BTreeMap::new(),
            partition: PartitionKind::default(),
            resolution: native,
        }
    }

    /// Every group at `keep` of its original size (rounded, at least 2), at the native
    /// resolution.
    #[must_use]
    pub fn keep(groups: &[Group], keep: f64, native: [usize; 2]) -> Self {
        let mut plan = Self::native(native);
        plan.set_keep(groups, keep);
        plan
    }

    /// Set every group to `keep` of its original size (rounded, at least 2).
    pub fn set_keep(&mut self, groups: &[Group], keep: f64) {
        self.sizes = groups
            .iter()
            .map(|g| (g.id, keep_size(g.original_size, keep)))
            .collect();
    }

    /// The size a group gets under this plan.
    #[must_use]
    pub fn size_of(&self, group: &Group) -> usize {
        self.sizes
            .get(&group.id)
            .copied()
            .unwrap_or_else(|| group.default_size(self.partition == PartitionKind::Learned))
    }

    /// Partition points of one group under this plan (no checks).
    #[must_use]
    pub fn points_of(&self, group: &Group) -> Vec<f32> {
        let n = self.size_of(group);
        match (&group.learned, self.partition) {
            (Some(learned), PartitionKind::Learned) if learned.len() == n => learned.clone(),
            (Some(learned), PartitionKind::Learned) => resample_quantile(learned, n),
            _ => linspace(n),
        }
    }

    /// Resolve against a model's groups and native input size.
    ///
    /// # Errors
    /// A size for a group the model lacks, a size of 0 or above [`MAX_GROUP_SIZE`], or a
    /// resolution of 0 or above [`MAX_RESOLUTION`].
    pub fn resolve(&self, groups: &[Group], native: [usize; 2]) -> Result<Resolved, Error> {
        for id in self.sizes.keys() {
            if !groups.iter().any(|g| g.id == *id) {
                return Err(Error::UnknownGroup {
                    group: *id,
                    known: groups.iter().map(|g| g.id).collect(),
                });
            }
        }
        for &r in &self.resolution {
            if r == 0 || r > MAX_RESOLUTION {
                return Err(Error::BadResolution {
                    resolution: r,
                    max: MAX_RESOLUTION,
                });
            }
        }
        let mut partitions = BTreeMap::new();
        for group in groups {
            let size = self.size_of(group);
            if size == 0 || size > MAX_GROUP_SIZE {
                return Err(Error::BadSize {
                    group: group.id,
                    size,
                    max: MAX_GROUP_SIZE,
                });
            }
            partitions.insert(group.id, self.points_of(group));
        }
        #[expect(clippy::cast_precision_loss, reason = "resolutions are below 2^24")]
        let scale = [
            self.resolution[0] as f32 / native[0].max(1) as f32,
            self.resolution[1] as f32 / native[1].max(1) as f32,
        ];
        Ok(Resolved {
            partitions,
            resolution: self.resolution,
            scale,
        })
    }
}

/// `keep` of `original` channels, rounded, at least 2 (the trapezoid rule needs two points).
#[must_use]
pub fn keep_size(original: usize, keep: f64) -> usize {
    #[expect(
        clippy::cast_precision_loss,
        reason = "channel counts are far below 2^52"
    )]
    let n = (original as f64 * keep).round();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to a small positive range first"
    )]
    let n = n.clamp(2.0, MAX_GROUP_SIZE as f64) as usize;
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<Group> {
        vec![
            Group {
                id: 0,
                original_size: 16,
                label: String::new(),
                learned: None,
            },
            Group {
                id: 2,
                original_size: 32,
                label: String::new(),
                learned: Some(vec![-1.0, 0.5, 0.2, 1.0]),
            },
        ]
    }

    #[test]
    fn keep_rounds_like_the_fixture_configurations() {
        // Fixture cfg1 (75%) of [16, 64, 32] is [12, 48, 24]; cfg3 (25%) is [4, 16, 8].
        assert_eq!([16, 64, 32].map(|n| keep_size(n, 0.75)), [12, 48, 24]);
        assert_eq!([16, 64, 32].map(|n| keep_size(n, 0.25)), [4, 16, 8]);
        assert_eq!(keep_size(3, 0.1), 2);
    }

    #[test]
    fn learned_points_are_used_as_stored_at_their_size() {
        let g = groups();
        let plan = Plan::native([28, 28]);
        let r = plan.resolve(&g, [28, 28]).expect("valid plan");
        assert_eq!(r.partitions[&2], vec![-1.0, 0.5, 0.2, 1.0]);
        assert_eq!(r.partitions[&0], linspace(16));
        let mut uniform = plan.clone();
        uniform.partition = PartitionKind::Uniform;
        assert_eq!(
            uniform.resolve(&g, [28, 28]).expect("valid").partitions[&2],
            linspace(32)
        );
    }

    #[test]
    fn absurd_plans_are_refused() {
        let g = groups();
        let mut plan = Plan::native([28, 28]);
        plan.sizes.insert(0, 1 << 40);
        assert!(matches!(
            plan.resolve(&g, [28, 28]),
            Err(Error::BadSize { .. })
        ));
        plan.sizes.clear();
        plan.sizes.insert(7, 4);
        assert!(matches!(
            plan.resolve(&g, [28, 28]),
            Err(Error::UnknownGroup { .. })
        ));
        plan.sizes.clear();
        plan.resolution = [0, 28];
        assert!(matches!(
            plan.resolve(&g, [28, 28]),
            Err(Error::BadResolution { .. })
        ));
    }
}
