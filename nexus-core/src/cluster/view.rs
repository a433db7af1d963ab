//! The cluster as this node last saw it, and the allocation it implies.

use std::collections::HashMap;
use std::sync::Arc;

use super::allocation::allocate;
use super::coordination::{Member, View};
use super::routes::Route;

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
        let addresses: HashMap<Arc<str>, Arc<str>> = members
            .iter()
            .map(|member| {
                (
                    Arc::from(member.node.as_str()),
                    Arc::from(member.address.as_str()),
                )
            })
            .collect();
        members.retain(|member| member.live);
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

    /// The peer address of `node`, live or lapsed.
    pub(crate) fn address(&self, node: &str) -> Option<&Arc<str>> {
        self.addresses.get(node)
    }

    /// The route to `node`; `Unassigned` when the view has no address
    /// for it.
    pub(crate) fn remote(&self, node: &Arc<str>) -> Route {
        self.address(node)
            .map_or(Route::Unassigned, |address| Route::Remote {
                node: Arc::clone(node),
                address: Arc::clone(address),
            })
    }

    /// Where node `me` sends the messages of `shard` by this view: to its
    /// holder, or to the node that should take it, or nowhere yet
    /// (`Unassigned`: `me` should take it, or nobody can).
    ///
    /// `None` when the view names `me` as the holder. A node's own routes
    /// know its shards better than any view: a view read just before a
    /// handoff here released the shard still names this node, and adopting
    /// it after the handoff ended would undo where the handoff pointed the
    /// shard, leaving it `Unassigned` on a node that will not take it.
    pub(crate) fn route(&self, shard: u32, me: &str) -> Option<Route> {
        match self.holders.get(&shard) {
            Some((node, _)) if &**node == me => None,
            Some((node, _)) => Some(self.remote(node)),
            None => Some(match self.desired(shard) {
                Some(node) if &**node != me => self.remote(node),
                _ => Route::Unassigned,
            }),
        }
    }

    /// How many shards each member holds.
    pub(crate) fn held_by(&self, node: &str) -> usize {
        self.holders
            .values()
            .filter(|(holder, _)| &**holder == node)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::Known;
    use crate::cluster::coordination::{Member, ShardHolder, View};
    use crate::cluster::routes::Route;

    fn member(node: &str, live: bool) -> Member {
        Member {
            node: node.to_owned(),
            address: format!("{node}:1"),
            live,
        }
    }

    #[test]
    fn a_view_naming_this_node_as_a_holder_leaves_its_route_alone() {
        let view = View {
            members: vec![member("node-a", true), member("node-b", true)],
            holders: vec![
                ShardHolder {
                    shard: 0,
                    node: "node-a".to_owned(),
                    epoch: 3,
                },
                ShardHolder {
                    shard: 1,
                    node: "node-b".to_owned(),
                    epoch: 2,
                },
            ],
        };
        // node-a, leaving: the view was read before it released shard 0.
        let known = Known::of(view, 4, Some("node-a"));
        assert!(
            known.route(0, "node-a").is_none(),
            "its own shard: its routes decide"
        );
        match known.route(1, "node-a") {
            Some(Route::Remote { node, address }) => {
                assert_eq!((&*node, &*address), ("node-b", "node-b:1"));
            }
            other => panic!("a shard held elsewhere goes to its holder, got {other:?}"),
        }
        // Unheld shards go to the node that should take them: never the
        // leaver, which takes none.
        for shard in 2..4 {
            assert!(matches!(
                known.route(shard, "node-a"),
                Some(Route::Remote { node, .. }) if &*node == "node-b"
            ));
            assert!(matches!(
                known.route(shard, "node-b"),
                Some(Route::Unassigned)
            ));
        }
    }

    #[test]
    fn every_order_of_the_same_view_gives_the_same_allocation() {
        let members = ["node-c", "node-a", "node-d", "node-b"];
        let holders: Vec<ShardHolder> = (0..20)
            .map(|shard| ShardHolder {
                shard,
                node: members[shard as usize % 3].to_owned(),
                epoch: 1,
            })
            .collect();
        let view = |order: &[usize]| View {
            members: order.iter().map(|&i| member(members[i], true)).collect(),
            holders: holders.iter().rev().cloned().collect(),
        };
        let first = Known::of(view(&[0, 1, 2, 3]), 32, None).desired;
        for order in [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            assert_eq!(
                Known::of(view(&order), 32, None).desired,
                first,
                "{order:?}"
            );
        }
    }

    #[test]
    fn a_lapsed_member_gets_no_shard_but_stays_reachable() {
        let view = View {
            members: vec![member("node-a", true), member("node-b", false)],
            holders: vec![ShardHolder {
                shard: 0,
                node: "node-b".to_owned(),
                epoch: 4,
            }],
        };
        let known = Known::of(view, 8, None);
        assert!(known.desired.iter().all(|node| &**node == "node-a"));
        assert_eq!(known.address("node-b").map(|a| &**a), Some("node-b:1"));
        assert_eq!(known.members.len(), 1);
    }
}
