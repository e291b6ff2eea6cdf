//! Tests of the compiled policy: the loopback rule, visibility, and per-key buckets.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::*;
use crate::config::Config;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$mT7HwxNbvg9R/kaSjvotYw$HNhMlJuX5ax5JPBPL4JAq1SwIe72VwY+3hCATx/x0y8";

fn config(src: &str) -> Config {
    Config::parse(Path::new("t.toml"), src).unwrap()
}

#[test]
fn no_keys_only_on_loopback_unless_forced() {
    assert!(Policy::compile(&config("")).is_ok());
    let open = config("[gateway]\nlisten = \"0.0.0.0:3100\"\n");
    assert!(Policy::compile(&open)
        .err()
        .is_some_and(|e| e.contains("not loopback")));
    let forced =
        config("[gateway]\nlisten = \"0.0.0.0:3100\"\n[auth]\nallow_unauthenticated = true\n");
    assert!(Policy::compile(&forced).is_ok());
    let keyed = config(&format!("[gateway]\nlisten = \"0.0.0.0:3100\"\n[roles.r]\n[[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n"));
    assert!(Policy::compile(&keyed).unwrap().auth_required);
}

#[test]
fn visibility_combines_server_and_role_rules() {
    let c = config(&format!(
        "[roles.r]\nallowed_tools = [\"a/*\"]\nblocked_tools = [\"a/del*\"]\nblocked_resources = [\"a/secret://*\"]\n[roles.s]\n\
         [[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n\
         [[servers]]\nname = \"a\"\ncommand = \"x\"\nblocked_tools = [\"internal_*\"]\n\
         [[servers]]\nname = \"b\"\ncommand = \"x\"\nallowed_roles = [\"s\"]\n"
    ));
    let p = Policy::compile(&c).unwrap();
    let (a, b) = (&c.servers[0], &c.servers[1]);
    let r = 0u16; // roles are in name order: r, s, then anonymous
    let s = 1u16;
    assert!(p.visible(r, a, Item::Tool, "read"));
    assert!(!p.visible(r, a, Item::Tool, "delete_all"));
    assert!(
        !p.visible(r, a, Item::Tool, "internal_x"),
        "server-level block"
    );
    assert!(
        !p.visible(s, a, Item::Tool, "internal_x"),
        "server-level block applies to every role"
    );
    assert!(
        !p.visible(r, b, Item::Tool, "anything"),
        "server not for role r"
    );
    assert!(p.visible(s, b, Item::Tool, "anything"));
    assert!(p.visible(r, a, Item::Prompt, "p"));
    assert!(!p.visible(r, a, Item::Resource, "secret://x"));
    assert!(p.visible(r, a, Item::Resource, "public://x"));
    assert_eq!(p.role_name(p.anonymous_role()), "anonymous");
}

#[test]
fn each_key_has_its_own_bucket() {
    let c = config(&format!(
        "[roles.r]\nrate_per_s = 1\nburst = 2\n[[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n[[auth.keys]]\nid = \"efgh\"\nhash = \"{HASH}\"\nrole = \"r\"\n"
    ));
    let p = Policy::compile(&c).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let k0 = Principal {
        key: Some(0),
        role: 0,
        owner: 1,
    };
    let k1 = Principal {
        key: Some(1),
        role: 0,
        owner: 2,
    };
    assert!(p.charge(&k0, ip).is_ok() && p.charge(&k0, ip).is_ok());
    assert!(p.charge(&k0, ip).is_err());
    assert!(p.charge(&k1, ip).is_ok(), "another key is not charged");
}

#[test]
fn a_key_may_set_its_own_rate_and_burst() {
    let c = config(&format!(
        "[roles.r]\nrate_per_s = 1\nburst = 2\n\
         [[auth.keys]]\nid = \"role\"\nhash = \"{HASH}\"\nrole = \"r\"\n\
         [[auth.keys]]\nid = \"more\"\nhash = \"{HASH}\"\nrole = \"r\"\nburst = 5\n\
         [[auth.keys]]\nid = \"free\"\nhash = \"{HASH}\"\nrole = \"r\"\nrate_per_s = 0\n\
         [[auth.keys]]\nid = \"less\"\nhash = \"{HASH}\"\nrole = \"r\"\nrate_per_s = 0.5\nburst = 1\n"
    ));
    let p = Policy::compile(&c).unwrap();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let admitted = |key: u32| {
        let who = Principal {
            key: Some(key),
            role: 0,
            owner: u64::from(key) + 1,
        };
        (0..20).take_while(|_| p.charge(&who, ip).is_ok()).count()
    };
    assert_eq!(admitted(0), 2, "the role's burst");
    assert_eq!(admitted(1), 5, "the key's burst at the role's rate");
    assert_eq!(admitted(2), 20, "rate_per_s = 0: no limit for this key");
    assert_eq!(admitted(3), 1, "the key's own rate and burst");
}

#[test]
fn a_refusal_names_the_rule() {
    let c = config(&format!(
        "[roles.r]\nallowed_tools = [\"a/*\", \"c/*\"]\nblocked_tools = [\"a/del*\"]\nblocked_prompts = [\"a/p?\"]\n[roles.s]\n\
         [[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n\
         [[servers]]\nname = \"a\"\ncommand = \"x\"\nblocked_tools = [\"internal_*\"]\n\
         [[servers]]\nname = \"b\"\ncommand = \"x\"\nallowed_roles = [\"s\"]\n\
         [[servers]]\nname = \"c\"\ncommand = \"x\"\nallowed_tools = [\"get_*\"]\n"
    ));
    let p = Policy::compile(&c).unwrap();
    let (a, b, srv_c) = (&c.servers[0], &c.servers[1], &c.servers[2]);
    let why = |server, item, name| p.refusal(0, server, item, name).unwrap_or_default();
    assert_eq!(p.refusal(0, a, Item::Tool, "read"), None);
    assert_eq!(
        why(a, Item::Tool, "delete_all"),
        "role \"r\"'s blocked_tools glob \"a/del*\""
    );
    assert_eq!(
        why(a, Item::Tool, "internal_x"),
        "server \"a\"'s blocked_tools glob \"internal_*\""
    );
    assert_eq!(
        why(b, Item::Tool, "x"),
        "role \"r\" is not in server \"b\"'s allowed_roles"
    );
    assert_eq!(
        why(srv_c, Item::Tool, "put_x"),
        "tool \"put_x\" matches none of server \"c\"'s allowed_tools"
    );
    assert_eq!(p.refusal(0, srv_c, Item::Tool, "get_x"), None);
    assert_eq!(
        why(a, Item::Prompt, "p1"),
        "role \"r\"'s blocked_prompts glob \"a/p?\""
    );
    // Role s allows everything but server a blocks internal_*.
    assert_eq!(p.refusal(1, a, Item::Tool, "read"), None);
    let d = &c.servers[2];
    assert!(p.refusal(1, d, Item::Tool, "put_x").is_some());
    // Allowed by no role glob.
    let c2 = config(&format!(
        "[roles.r]\nallowed_tools = [\"a/*\"]\n[[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n[[servers]]\nname = \"z\"\ncommand = \"x\"\n"
    ));
    let p2 = Policy::compile(&c2).unwrap();
    assert_eq!(
        p2.refusal(0, &c2.servers[0], Item::Tool, "t")
            .unwrap_or_default(),
        "\"z/t\" matches none of role \"r\"'s allowed_tools"
    );
}

#[test]
fn failed_authentications_spend_the_address_bucket() {
    let c = config(&format!(
        "[auth]\nip_rate_per_s = 0.01\nip_burst = 2\n[roles.r]\n[[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n"
    ));
    let p = Policy::compile(&c).unwrap();
    let bad = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(p.ip_exhausted(bad), None);
    assert!(p.charge_failure(bad).is_ok() && p.charge_failure(bad).is_ok());
    assert!(
        p.ip_exhausted(bad).is_some(),
        "two failures spend a burst of two"
    );
    assert!(p.charge_failure(bad).is_err());
    assert_eq!(p.ip_exhausted(other), None, "another address is untouched");
    // Without an IP limit, failures cost nothing.
    let free = config(&format!(
        "[roles.r]\n[[auth.keys]]\nid = \"abcd\"\nhash = \"{HASH}\"\nrole = \"r\"\n"
    ));
    let p = Policy::compile(&free).unwrap();
    for _ in 0..100 {
        assert!(p.charge_failure(bad).is_ok());
    }
    assert_eq!(p.ip_exhausted(bad), None);
}
