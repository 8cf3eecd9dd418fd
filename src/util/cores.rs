//! Which CPUs this process may run on.

/// The CPUs in this process's affinity mask, in order (all of them when
/// the mask cannot be read).
pub fn available_cores() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}
