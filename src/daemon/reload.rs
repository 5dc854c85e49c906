//! Configuration reload on SIGHUP: what changed between two resolved
//! configurations, and which changes need a new worker.

use super::peers;
use super::supervisor::{Ctx, ResourceState, Supervisor};
use crate::config::document::format_seconds;
use crate::config::{Config, Resource};
use crate::role::resource::{ResourceConfig, ResourceInput};
use crate::types::Role;

/// Settings the worker itself runs with: changing one needs a new worker
/// (the resource keeps running; a primary's connections are made anew).
/// Everything else lives in the main process and takes effect in place.
pub fn worker_must_restart(old: &Resource, new: &Resource) -> bool {
    old.timeout != new.timeout
        || old.heartbeat_interval != new.heartbeat_interval
        || old.attempts != new.attempts
        || old.silence_limit != new.silence_limit
        || old.remote != new.remote
        || old.key != new.key
}

/// The changed settings of a resource, one phrase each
/// (`heartbeat_interval 10 -> 2`).
pub fn differences(old: &Resource, new: &Resource) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    note("exec", old.exec.clone(), new.exec.clone());
    note(
        "priority",
        old.priority.to_string(),
        new.priority.to_string(),
    );
    note(
        "role_on_start",
        old.role_on_start.to_string(),
        new.role_on_start.to_string(),
    );
    let secs = |d| format_seconds(d);
    note("timeout", secs(old.timeout), secs(new.timeout));
    note(
        "attempts",
        old.attempts.to_string(),
        new.attempts.to_string(),
    );
    note(
        "heartbeat_interval",
        secs(old.heartbeat_interval),
        secs(new.heartbeat_interval),
    );
    note(
        "complaint_count",
        old.complaint_count.to_string(),
        new.complaint_count.to_string(),
    );
    note(
        "complaint_interval",
        secs(old.complaint_interval),
        secs(new.complaint_interval),
    );
    note(
        "hook_timeout",
        secs(old.hook_timeout),
        secs(new.hook_timeout),
    );
    note(
        "silence_limit",
        secs(old.silence_limit),
        secs(new.silence_limit),
    );
    let list = |l: &[crate::config::address::Address]| {
        if l.is_empty() {
            return "(none)".to_string();
        }
        l.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    note("remote", list(&old.remote), list(&new.remote));
    note("friends", list(&old.friends), list(&new.friends));
    if old.key != new.key {
        // Never the secret itself.
        out.push("key changed".into());
    }
    out
}

/// Re-reads the configuration and applies it. A file that does not load
/// changes nothing; new control or listen addresses are opened before the
/// old ones close, and a failure there too changes nothing.
pub fn reload(
    opts: &super::Options,
    current: &mut crate::config::Config,
    control: &mut Option<super::control::ControlServer>,
    listen: &mut super::listen::ListenServer,
    acceptor: &mut super::acceptor::Acceptor,
    poller: &mut crate::event::Poller,
) -> Option<crate::config::Config> {
    use crate::config::address::Kind;
    use crate::{log_error, log_notice};
    log_notice!("Reloading configuration...");
    let new = match crate::ctl::load(&opts.config_path, opts.node.as_deref()) {
        Ok(c) => c,
        Err((_, msg)) => {
            log_error!("Configuration not reloaded: {msg}");
            return None;
        }
    };
    let mut new_control = None;
    if new.control != current.control {
        let opened = match new.control.kind() {
            Kind::Unix(path) => super::control::ControlServer::bind(path),
            _ => Err(std::io::Error::other("not a UNIX socket")),
        };
        match opened {
            Ok(c) => new_control = Some(c),
            Err(e) => {
                log_error!(
                    "Unable to listen on control address {}: {e}; configuration not reloaded.",
                    new.control
                );
                return None;
            }
        }
    }
    let mut new_listen = None;
    if new.listen != current.listen {
        let opened = super::peers::resolve(&new.listen)
            .ok_or_else(|| std::io::Error::other("the address does not resolve"))
            .and_then(|a| super::listen::ListenServer::bind(a, Vec::new()));
        match opened {
            Ok(l) => new_listen = Some(l),
            Err(e) => {
                log_error!(
                    "Unable to listen on address {}: {e}; configuration not reloaded.",
                    new.listen
                );
                if let Some(c) = new_control {
                    c.discard();
                }
                return None;
            }
        }
    }
    if let Some(c) = new_control {
        if let Some(old) = control.take() {
            old.remove(poller);
        }
        if let Err(e) = c.register(poller) {
            log_error!("Unable to watch the new control socket: {e}.");
        }
        log_notice!(
            "Control socket changed from {} to {}.",
            current.control,
            new.control
        );
        *control = Some(c);
    }
    if let Some(l) = new_listen {
        listen.deregister(poller);
        if let Err(e) = l.register(poller) {
            log_error!("Unable to watch the new listen socket: {e}.");
        }
        log_notice!(
            "Listen socket changed from {} to {}.",
            current.listen,
            new.listen
        );
        *listen = l;
    }
    listen.set_known(super::peers::known_peers(&new));
    acceptor.reconfigure(&new);
    if new.friends != current.friends {
        log_notice!("Global friends changed.");
    }
    Some(new)
}

/// Takes a reloaded configuration: resources that went away are set
/// to init and retired, new ones start as `role_on_start` says, and
/// changed ones take their new settings, with a new worker when the
/// worker's own settings changed (the resource is left running).
/// Unchanged resources are not touched. Returns what changed, a line
/// each.
pub fn reconfigure(sup: &mut Supervisor, ctx: &mut Ctx<'_>, cfg: &Config) -> Vec<String> {
    let mut said = Vec::new();
    for i in sup.active() {
        if !cfg.resources.iter().any(|r| r.name == sup.list[i].cfg.name) {
            said.push(format!("Resource {} removed.", sup.list[i].cfg.name));
            sup.input(ctx, i, ResourceInput::ReloadRole(Role::Init));
            sup.list[i].retired = true;
        }
    }
    for r in &cfg.resources {
        let Some(i) = sup.list.iter().position(|s| s.cfg.name == r.name) else {
            said.push(format!("Resource {} added.", r.name));
            sup.list.push(ResourceState::new(r));
            let i = sup.list.len() - 1;
            sup.input(ctx, i, ResourceInput::Start);
            continue;
        };
        let s = &mut sup.list[i];
        let revived = std::mem::take(&mut s.retired);
        if !revived && s.cfg == *r {
            continue;
        }
        let changes = differences(&s.cfg, r);
        let restart = !revived && worker_must_restart(&s.cfg, r);
        said.push(if revived {
            format!("Resource {} added back.", r.name)
        } else {
            format!(
                "Resource {}: {}{}.",
                r.name,
                changes.join(", "),
                if restart { "; its worker restarts" } else { "" }
            )
        });
        s.cfg = r.clone();
        s.remotes = r.remote.iter().map(peers::resolve).collect();
        s.friends = r.friends.iter().filter_map(peers::resolve).collect();
        let input = ResourceInput::Reconfigure {
            cfg: ResourceConfig::from_resource(r),
            restart_worker: restart,
        };
        sup.input(ctx, i, input);
        // Back from retirement: as a new resource, from `role_on_start`.
        if revived && r.role_on_start != Role::Init {
            sup.input(ctx, i, ResourceInput::ReloadRole(r.role_on_start));
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeNames, Syntax, parse_bytes};

    fn resource(text: &str) -> Resource {
        let text = format!(
            "resource r {{\n exec /bin/true\n {text}\n on a {{ remote tcp4://10.0.0.2 }}\n}}\n"
        );
        parse_bytes(text.as_bytes(), Syntax::Conf, &NodeNames::exact("a"))
            .unwrap()
            .resources
            .remove(0)
    }

    #[test]
    fn main_process_settings_change_in_place_worker_settings_restart_it() {
        let base = resource("");
        // (change, worker restarts, settings that differ: the default
        // silence limit follows the interval and the timeout)
        for (text, restart, changed) in [
            ("hook_timeout 5", false, 1),
            ("priority 3", false, 1),
            ("complaint_interval 9", false, 1),
            ("friends 10.0.0.9", false, 1),
            ("heartbeat_interval 2", true, 2),
            ("timeout 1", true, 2),
            ("attempts 9", true, 1),
            ("silence_limit 0", true, 1),
            ("key { algorithm SHA256 secret s }", true, 1),
        ] {
            let new = resource(text);
            let d = differences(&base, &new);
            assert_eq!(worker_must_restart(&base, &new), restart, "{text}");
            assert_eq!(d.len(), changed, "{text}: {d:?}");
        }
        assert_eq!(
            differences(&base, &resource("heartbeat_interval 2")),
            ["heartbeat_interval 10 -> 2", "silence_limit 35 -> 11"]
        );
    }
}
