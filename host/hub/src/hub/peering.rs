//! The hub's side of the cluster: it tells the link (the hub's [`Peers`]) which audiences this node has members
//! of and when they change, answers with this node's presence, and delivers what other nodes publish to the members
//! here.

use super::*;

impl Hub {
    /// Joins the hub to a cluster: `peers` is the link to the other nodes.
    pub fn set_peers(&self, peers: Box<dyn Peers>) {
        let _ = self.cluster.set(peers);
    }

    /// Tells the cluster link (if any) that this node now has, or no longer has, members of `audience`.
    pub(super) fn interest(&self, route: &str, audience: &Audience, present: bool) {
        if let Some(cluster) = self.cluster.get() {
            cluster.interest(route, audience, present);
        }
    }

    /// Tells the cluster link (if any) that this node's members of `group` (`Group`) or connections of `uid`
    /// (`User`) changed, for the other nodes' presence.
    pub(super) fn changed(&self, route: &str, audience: &Audience) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let route = route.to_owned();
        cluster.changed(match audience {
            Audience::Group(group) => PresenceKey::Group {
                route,
                group: group.clone(),
            },
            Audience::User(uid) => PresenceKey::User {
                route,
                uid: uid.clone(),
            },
            Audience::Route | Audience::Connection(_) => return,
        });
    }

    /// This node's part of one piece of presence, for the other nodes.
    pub fn local_presence(&self, key: PresenceKey) -> PresencePiece {
        let state = self.lock();
        match key {
            PresenceKey::Group { route, group } => {
                let members = state
                    .groups
                    .get(&(route.clone(), group.clone()))
                    .map_or(0, |m| m.len() as u32);
                PresencePiece::Group {
                    route,
                    group,
                    members,
                }
            }
            PresenceKey::User { route, uid } => {
                let ids = state
                    .users
                    .get(&(route.clone(), uid.clone()))
                    .map(Members::ids)
                    .unwrap_or_default();
                PresencePiece::User { route, uid, ids }
            }
        }
    }

    /// This node's whole presence, for another node that asked for it.
    pub fn all_local_presence(&self) -> Vec<PresencePiece> {
        let state = self.lock();
        let groups = state
            .groups
            .iter()
            .map(|((route, group), members)| PresencePiece::Group {
                route: route.clone(),
                group: group.clone(),
                members: members.len() as u32,
            });
        let users = state
            .users
            .iter()
            .map(|((route, uid), members)| PresencePiece::User {
                route: route.clone(),
                uid: uid.clone(),
                ids: members.ids(),
            });
        groups.chain(users).collect()
    }

    /// Delivers a publication another node sent to this node's members (it goes no further). The link hands over
    /// only publications whose seal verified and whose route and audience are those of the subject they came on;
    /// a connection's route is checked here, where the connection lives.
    pub fn deliver_from_cluster(&self, publication: Publication) {
        let Publication {
            route,
            audience,
            exclude,
            message,
        } = publication;
        if let Audience::Connection(id) = audience {
            self.to_local_connection(None, &route, id, message);
            return;
        }
        self.fan_out(None, &route, audience, message, &exclude);
    }
}
