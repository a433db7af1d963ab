//! The cluster as this node last saw it, and the allocation it implies.

use std::collections::HashMap;
use std::sync::Arc;

use super::allocation::allocate;
use super::coordination::{Member, View};

/// The last view, sorted, with the allocation computed from it.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Live members by node id, sorted (the order `allocate` needs).
    pub(crate) members: Vec<Member>,
    /// The node each shard should go to.
    pub(crate) desired: Vec<Arc<str>>,
    /// Who holds each held shard, under which epoch.
    pub(crate) holders: HashMap<u32, (Arc<str>, u64)>,
    addresses: HashMap<Arc<str>, Arc<str>>,
}

impl Known {
    /// The view of `view`, without `leaving` among the candidates for
    /// shards (a node on its way out takes none).
    pub(crate) fn of(view: View, shards: u32, leaving: Option<&str>) -> Self {
        let mut members = view.members;
        members.sort_by(|a, b| a.node.cmp(&b.node));
        members.dedup_by(|a, b| a.node == b.node);
        let candidates: Vec<Arc<str>> = members
            .iter()
            .map(|member| Arc::from(member.node.as_str()))
            .filter(|node: &Arc<str>| Some(&**node) != leaving)
            .collect();
        let holders: HashMap<u32, (Arc<str>, u64)> = view
            .holders
            .into_iter()
            .map(|holder| {
                (
                    holder.shard,
                    (Arc::from(holder.node.as_str()), holder.epoch),
                )
            })
            .collect();
        let held_by: Vec<Option<usize>> = (0..shards)
            .map(|shard| {
                let (node, _) = holders.get(&shard)?;
                candidates.iter().position(|candidate| candidate == node)
            })
            .collect();
        let desired = allocate(shards, &candidates, &held_by)
            .into_iter()
            .map(|owner| Arc::clone(&candidates[owner]))
            .collect();
        let addresses = members
            .iter()
            .map(|member| {
                (
                    Arc::from(member.node.as_str()),
                    Arc::from(member.address.as_str()),
                )
            })
            .collect();
        Self {
            members,
            desired,
            holders,
            addresses,
        }
    }

    /// The node `shard` should go to, if any member is a candidate.
    pub(crate) fn desired(&self, shard: u32) -> Option<&Arc<str>> {
        self.desired.get(shard as usize)
    }

    /// The peer address of a live `node`.
    pub(crate) fn address(&self, node: &str) -> Option<&Arc<str>> {
        self.addresses.get(node)
    }

    /// How many shards each member holds.
    pub(crate) fn held_by(&self, node: &str) -> usize {
        self.holders
            .values()
            .filter(|(holder, _)| &**holder == node)
            .count()
    }
}
