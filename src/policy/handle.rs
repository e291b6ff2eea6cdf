//! The policy in force: a snapshot behind an `ArcSwap`, replaced whole by a reload, plus what stays
//! fixed for the life of the process (role names, client networks).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{cidr, Item, Policy};
use crate::config::{self, Config};

/// The current policy, swapped whole on reload, and what never changes while the process runs:
/// the role names (catalog views are indexed by role) and the client networks.
pub struct PolicyHandle {
    current: ArcSwap<Policy>,
    role_names: Vec<String>,
    /// Client networks allowed to connect; empty = any.
    pub networks: Vec<cidr::Cidr>,
}

/// What a reload changed.
#[derive(Debug)]
pub struct Reloaded {
    pub keys: usize,
    /// Role globs changed, or auth was turned on or off: the catalog's visibility sets (and its
    /// lists' caching hints, `public` only with auth off) must be rebuilt.
    pub rules_changed: bool,
}

impl PolicyHandle {
    pub fn new(policy: Policy, config: &Config) -> PolicyHandle {
        PolicyHandle {
            role_names: policy.roles.iter().map(|r| r.name.clone()).collect(),
            current: ArcSwap::from_pointee(policy),
            networks: config
                .gateway
                .allowed_networks
                .iter()
                .filter_map(|n| cidr::Cidr::parse(n))
                .collect(),
        }
    }

    /// The current snapshot (hold it for one request, not longer).
    pub fn load(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.current.load()
    }

    pub fn role_name(&self, role: u16) -> &str {
        self.role_names
            .get(role as usize)
            .map_or("?", String::as_str)
    }

    pub fn role_count(&self) -> usize {
        self.role_names.len()
    }

    /// May `role` use `name` on `server`, by the current snapshot's rules?
    pub fn visible(&self, role: u16, server: &config::Server, item: Item, name: &str) -> bool {
        self.current.load().visible(role, server, item, name)
    }

    /// Compile the `[auth]` and `[roles]` of `config` and swap them in. Requests already admitted
    /// finish under the snapshot they hold; the next ones see the new one. Refused (the old policy
    /// stays) when the set of roles changed, which needs a restart.
    pub fn reload(&self, config: &Config) -> Result<Reloaded, String> {
        let old = self.current.load_full();
        let names: Vec<&str> = config
            .roles
            .keys()
            .map(String::as_str)
            .chain(std::iter::once("anonymous"))
            .collect();
        if names
            != self
                .role_names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        {
            return Err(
                "the set of [roles] changed; adding or removing roles needs a restart".into(),
            );
        }
        let new = Policy::compile_after(config, Some(&old))?;
        let rules_changed = old
            .roles
            .iter()
            .zip(&new.roles)
            .any(|(a, b)| !a.rules.same_globs(&b.rules))
            || old.auth_required != new.auth_required;
        let keys = new.keys.len();
        self.current.store(Arc::new(new));
        Ok(Reloaded {
            keys,
            rules_changed,
        })
    }
}
