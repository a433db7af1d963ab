//! Which workloads a `nexus-bench` run measures (`--only`).

/// The workloads to run: every one, or only those named.
///
/// ```
/// use nexus_examples::bench::Selection;
/// assert!(Selection::all().wants("pg_rehydrate_10k"));
/// let only = Selection::only(vec!["pg_rehydrate_10k".to_owned()]);
/// assert!(only.wants("pg_rehydrate_10k"));
/// assert!(!only.wants("mem_ask_latency"));
/// assert!(only.wants_any(&["pg_reads", "pg_rehydrate_10k"]));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Empty for every workload.
    names: Vec<String>,
}

impl Selection {
    /// Every workload.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the workloads named (every one when `names` is empty).
    pub fn only(names: Vec<String>) -> Self {
        Self { names }
    }

    /// Whether workload `name` runs.
    pub fn wants(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    /// Whether any of `names` runs: a group's shared set-up (a schema, a
    /// cluster) is skipped when none does.
    pub fn wants_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.wants(name))
    }
}
