//! Which node should own which shard, from the live members and who holds
//! what now.
//!
//! Every node computes the allocation itself from the view it reads in
//! Postgres, so there is no coordinator to elect and no allocation table to
//! keep consistent; the fenced shard leases make a moment where two views
//! disagree harmless (only one node can take a shard), and the next view
//! settles it. The allocation is:
//!
//! - **balanced**: `shards / nodes` per node, rounded down, and one more for
//!   `shards % nodes` of them (with 64 shards and 3 nodes: 22, 21, 21);
//! - **sticky**: a shard stays with its holder while the holder is live
//!   and within its count, so a join moves only the shards the joiner
//!   takes, and a leave only the shards the leaver held: the minimum;
//! - **spread by rendezvous hashing** where a shard must move (its holder
//!   left, or holds too many): each shard ranks the nodes by a hash of
//!   (node, shard), and goes to the best-ranked node still short of its
//!   count; a node over its count gives up the shards it ranks lowest.
//!
//! A coordinator holding a lease could do the same from a table of its
//! own, but it would be one more thing to fail over and to fence.

/// The owner of every shard: `owners[shard]` is an index into `members`.
///
/// `members` must be the same list, in the same order, on every node for
/// the nodes to agree (`Cluster` sorts the member ids); `holders[shard]` is
/// the index of the live member holding the shard now, if any (a shorter
/// slice counts the rest as unheld). Empty when `members` is.
///
/// ```
/// use nexus_core::cluster::allocate;
/// let members = ["node-a", "node-b", "node-c"];
/// let owners = allocate(64, &members, &[]);
/// for node in 0..3 {
///     let held = owners.iter().filter(|&&owner| owner == node).count();
///     assert!((21..=22).contains(&held), "node {node} holds {held} of 64 shards");
/// }
/// // A fourth node joins: only the shards it takes move.
/// let holders: Vec<Option<usize>> = owners.iter().map(|&o| Some(o)).collect();
/// let after = allocate(64, &["node-a", "node-b", "node-c", "node-d"], &holders);
/// let moved = owners.iter().zip(&after).filter(|(a, b)| a != b).count();
/// assert_eq!(moved, after.iter().filter(|&&o| o == 3).count());
/// ```
pub fn allocate<S: AsRef<str>>(
    shards: u32,
    members: &[S],
    holders: &[Option<usize>],
) -> Vec<usize> {
    let nodes = members.len();
    if nodes == 0 {
        return Vec::new();
    }
    let count = usize::try_from(shards).expect("a shard count fits usize");
    let seeds: Vec<u64> = members
        .iter()
        .map(|member| crate::lease::fnv1a(member.as_ref().as_bytes()))
        .collect();
    let rank = |node: usize, shard: usize| weight(seeds[node], shard);
    let mut owners: Vec<Option<usize>> = (0..count)
        .map(|shard| {
            holders
                .get(shard)
                .copied()
                .flatten()
                .filter(|&node| node < nodes)
        })
        .collect();
    let targets = targets(count, &owners, nodes);
    shed_excess(&mut owners, &targets, rank);
    fill_short(&mut owners, &targets, rank);
    owners
        .into_iter()
        .map(|owner| {
            owner.expect("every shard was assigned: the targets add up to the shard count")
        })
        .collect()
}

/// How many shards each node should hold: `shards / nodes`, and one more
/// for `shards % nodes` nodes, given to those holding the most now (then
/// by index), so that as few shards as possible move.
fn targets(shards: usize, owners: &[Option<usize>], nodes: usize) -> Vec<usize> {
    let mut held = vec![0usize; nodes];
    for owner in owners.iter().flatten() {
        held[*owner] += 1;
    }
    let mut by_load: Vec<usize> = (0..nodes).collect();
    by_load.sort_by_key(|&node| (std::cmp::Reverse(held[node]), node));
    let mut targets = vec![shards / nodes; nodes];
    for &node in by_load.iter().take(shards % nodes) {
        targets[node] += 1;
    }
    targets
}

/// Unassigns, from every node over its target, the shards it ranks lowest.
fn shed_excess(
    owners: &mut [Option<usize>],
    targets: &[usize],
    rank: impl Fn(usize, usize) -> u64,
) {
    for (node, &target) in targets.iter().enumerate() {
        let mut mine: Vec<usize> = (0..owners.len())
            .filter(|&shard| owners[shard] == Some(node))
            .collect();
        if mine.len() <= target {
            continue;
        }
        mine.sort_by_key(|&shard| (rank(node, shard), shard));
        for &shard in &mine[..mine.len() - target] {
            owners[shard] = None;
        }
    }
}

/// Assigns every unassigned shard to the best-ranked node still short of
/// its target, best pairs first.
fn fill_short(owners: &mut [Option<usize>], targets: &[usize], rank: impl Fn(usize, usize) -> u64) {
    let mut held = vec![0usize; targets.len()];
    for owner in owners.iter().flatten() {
        held[*owner] += 1;
    }
    let mut pairs: Vec<(u64, usize, usize)> = (0..owners.len())
        .filter(|&shard| owners[shard].is_none())
        .flat_map(|shard| {
            (0..targets.len())
                .filter(|&node| held[node] < targets[node])
                .map(move |node| (shard, node))
        })
        .map(|(shard, node)| (rank(node, shard), shard, node))
        .collect();
    // Highest weight first; shard and node break (unlikely) ties the same
    // way everywhere.
    pairs.sort_unstable_by(|a, b| b.cmp(a));
    for (_, shard, node) in pairs {
        if owners[shard].is_none() && held[node] < targets[node] {
            owners[shard] = Some(node);
            held[node] += 1;
        }
    }
}

/// The rank of a node for a shard: the node's seed mixed with the shard by
/// splitmix64's finaliser, the same in every process and build.
fn weight(seed: u64, shard: usize) -> u64 {
    let shard = u64::try_from(shard).expect("a shard index fits u64");
    let mut z = seed ^ shard.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::allocate;

    fn nodes(count: usize) -> Vec<String> {
        (0..count)
            .map(|n| format!("node-{n:02}-{}", n * 7919))
            .collect()
    }

    fn held(owners: &[usize], node: usize) -> usize {
        owners.iter().filter(|&&owner| owner == node).count()
    }

    /// The holders of `owners` as members of `after_ids` (`None` for a
    /// member that left).
    fn holders(
        owners: &[usize],
        before_ids: &[String],
        after_ids: &[String],
    ) -> Vec<Option<usize>> {
        owners
            .iter()
            .map(|&owner| after_ids.iter().position(|id| *id == before_ids[owner]))
            .collect()
    }

    fn moved(
        before: &[usize],
        before_ids: &[String],
        after: &[usize],
        after_ids: &[String],
    ) -> usize {
        before
            .iter()
            .zip(after)
            .filter(|(b, a)| before_ids[**b] != after_ids[**a])
            .count()
    }

    #[test]
    fn every_node_holds_its_share_rounded_down_or_up() {
        for shards in [1_u32, 7, 16, 64, 256, 1000] {
            for count in 1..=9 {
                let owners = allocate(shards, &nodes(count), &[]);
                assert_eq!(owners.len(), shards as usize);
                let (low, high) = (shards as usize / count, (shards as usize).div_ceil(count));
                for node in 0..count {
                    let h = held(&owners, node);
                    assert!(
                        (low..=high).contains(&h),
                        "{shards} shards over {count} nodes: {h}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_join_moves_only_what_the_joiner_takes_and_a_leave_only_what_the_leaver_held() {
        for shards in [16_u32, 32, 64, 256] {
            for count in 1..=9 {
                let before_ids = nodes(count);
                let before = allocate(shards, &before_ids, &[]);
                let mut joined_ids = before_ids.clone();
                joined_ids.push(format!("joiner-{count}"));
                let joined = allocate(
                    shards,
                    &joined_ids,
                    &holders(&before, &before_ids, &joined_ids),
                );
                let taken = held(&joined, count);
                assert_eq!(moved(&before, &before_ids, &joined, &joined_ids), taken);
                assert!(taken >= shards as usize / (count + 1));
                if count < 2 {
                    continue;
                }
                for leaver in [0, count / 2, count - 1] {
                    let mut left_ids = before_ids.clone();
                    left_ids.remove(leaver);
                    let left =
                        allocate(shards, &left_ids, &holders(&before, &before_ids, &left_ids));
                    assert_eq!(
                        moved(&before, &before_ids, &left, &left_ids),
                        held(&before, leaver),
                        "{shards} shards, {count} -> {} nodes",
                        count - 1
                    );
                }
            }
        }
    }

    #[test]
    fn a_settled_allocation_stays_as_it_is() {
        for count in 1..=9 {
            let ids = nodes(count);
            let owners = allocate(64, &ids, &[]);
            let again = allocate(64, &ids, &holders(&owners, &ids, &ids));
            assert_eq!(owners, again);
        }
    }

    #[test]
    fn an_overloaded_holder_gives_up_only_its_excess() {
        let ids = nodes(4);
        // Node 0 holds everything (it was alone): it keeps its share only.
        let all_on_zero = vec![Some(0); 64];
        let owners = allocate(64, &ids, &all_on_zero);
        assert_eq!(held(&owners, 0), 16);
        assert_eq!(owners.iter().filter(|&&o| o != 0).count(), 48);
    }

    #[test]
    fn every_node_computes_the_same_allocation() {
        let members = nodes(5);
        assert_eq!(
            allocate(64, &members, &[]),
            allocate(64, &members.clone(), &[])
        );
        assert!(allocate(64, &Vec::<String>::new(), &[]).is_empty());
    }
}
