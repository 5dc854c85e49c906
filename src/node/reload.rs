//! Configuration reload on SIGHUP: what changed between two resolved
//! configurations, and which changes need a new worker.

use super::resource::{ResourceConfig, ResourceInput};
use super::{Action, NodeMachine, Resolver, log};
use crate::config::document::format_seconds;
use crate::config::{Config, Resource};
use crate::role::Level;
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

/// Takes a reloaded configuration: resources that went away are set to
/// init and retired, new ones start as `role_on_start` says, and changed
/// ones take their new settings, with a new worker when the worker's own
/// settings changed (the resource is left running). Unchanged resources
/// are not touched. Every change is logged, a line each.
impl NodeMachine {
    pub(super) fn reload(&mut self, cfg: &Config, resolve: Resolver<'_>, out: &mut Vec<Action>) {
        let mut said = Vec::new();
        if cfg.friends != self.config.friends {
            said.push("Global friends changed.".to_string());
        }
        let same = *cfg == self.config;
        self.config = cfg.clone();
        self.set_globals(cfg, resolve);
        let active: Vec<_> = self.active().collect();
        for id in active {
            let name = self.res[&id].cfg.name.clone();
            if !cfg.resources.iter().any(|r| r.name == name) {
                said.push(format!("Resource {name} removed."));
                self.resource_input(id, ResourceInput::ReloadRole(Role::Init), out);
                if let Some(r) = self.res.get_mut(&id) {
                    r.retired = true;
                }
            }
        }
        for r in &cfg.resources {
            let found = self
                .res
                .iter()
                .find(|(_, s)| s.cfg.name == r.name)
                .map(|(id, _)| *id);
            let Some(id) = found else {
                said.push(format!("Resource {} added.", r.name));
                let id = self.add(r, resolve);
                self.resource_input(id, ResourceInput::Start, out);
                continue;
            };
            let s = self.res.get_mut(&id).expect("found above");
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
            (s.remotes, s.friends) = super::peers(r, resolve);
            s.cfg = r.clone();
            let input = ResourceInput::Reconfigure {
                cfg: ResourceConfig::from_resource(r),
                restart_worker: restart,
            };
            self.resource_input(id, input, out);
            // Back from retirement: as a new resource, from `role_on_start`.
            if revived && r.role_on_start != Role::Init {
                self.resource_input(id, ResourceInput::ReloadRole(r.role_on_start), out);
            }
        }
        let nothing = said.is_empty() && same;
        for line in said {
            log(out, Level::Notice, line);
        }
        if nothing {
            log(out, Level::Notice, "Configuration unchanged.");
        }
        log(out, Level::Notice, "Configuration reloaded successfully.");
    }
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
