//! For the fuzz targets (`fuzz/`): a [`RemoteView`] with caps small enough for a fuzzer to reach, and a look at what
//! it holds, so a target can check that announcements never leave state the caps and the senders do not allow.

use super::{Caps, ENTRY_OVERHEAD, Part, RemoteView};
use wssgate_hub::sync::lock;

/// A view that holds at most `entries` groups and users and `bytes` bytes per node, and `nodes` other nodes.
pub fn view(entries: usize, bytes: usize, nodes: usize) -> RemoteView {
    RemoteView {
        caps: Caps {
            entries,
            bytes,
            nodes,
        },
        ..RemoteView::default()
    }
}

/// What a view holds for one node: the entries and bytes its part (and any snapshot being received) counts, and
/// the bytes its entries really take, counted afresh.
#[derive(Debug)]
pub struct Held {
    pub tag: u32,
    pub entries: usize,
    pub counted: usize,
    pub actual: usize,
    pub staging: Option<(usize, usize, usize)>,
}

/// Every node `view` holds.
pub fn held(view: &RemoteView) -> Vec<Held> {
    let measure = |part: &Part| {
        let groups = part
            .groups
            .keys()
            .map(|(route, group)| ENTRY_OVERHEAD + route.len() + group.len());
        let users = part
            .users
            .iter()
            .map(|((route, uid), ids)| ENTRY_OVERHEAD + route.len() + uid.len() + ids.len() * 8);
        let actual = groups.chain(users).sum();
        (part.groups.len() + part.users.len(), part.bytes, actual)
    };
    lock(&view.nodes)
        .iter()
        .map(|(&tag, node)| {
            let (entries, counted, actual) = measure(&node.part);
            Held {
                tag,
                entries,
                counted,
                actual,
                staging: node.staging.as_ref().map(|s| measure(&s.part)),
            }
        })
        .collect()
}
