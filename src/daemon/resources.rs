//! What the main process knows of each resource, and the answers to
//! control requests built from it.

use crate::config::{Config, Resource};
use crate::proto::NvList;
use crate::proto::msg::{
    ControlCmd, ControlRequest, RemoteStatus, ResourceStatus, RoleEntry, RoleOutcome, RoleReply,
    StatusEntry, StatusOutcome, StatusReply, ehast, error_reply,
};
use crate::types::Role;
use crate::{log_debug, log_notice};

pub struct ResourceState {
    pub cfg: Resource,
    pub role: Role,
}

pub struct Resources {
    pub list: Vec<ResourceState>,
}

impl Resources {
    pub fn new(cfg: &Config) -> Resources {
        Resources {
            list: cfg
                .resources
                .iter()
                .map(|r| ResourceState {
                    cfg: r.clone(),
                    role: Role::Init,
                })
                .collect(),
        }
    }

    /// Applies `role_on_start` to every resource, in configuration order.
    pub fn set_initial_roles(&mut self) {
        for r in &mut self.list {
            r.role = r.cfg.role_on_start;
            log_notice!("[{}] Role set to {}.", r.cfg.name, r.role);
        }
    }

    /// Indices of the named resources; `all` first means every one. An
    /// unknown name is `None` in its place.
    fn lookup(&self, names: &[String]) -> Vec<(String, Option<usize>)> {
        if names.first().is_some_and(|n| n == "all") {
            return self
                .list
                .iter()
                .enumerate()
                .map(|(i, r)| (r.cfg.name.clone(), Some(i)))
                .collect();
        }
        names
            .iter()
            .map(|n| (n.clone(), self.list.iter().position(|r| &r.cfg.name == n)))
            .collect()
    }

    /// Answers one control request; `None` means close without a reply,
    /// as 0.3.4 does for a request without `cmd`.
    pub fn handle(&mut self, request: &NvList) -> Option<NvList> {
        let Ok(req) = ControlRequest::from_nv(request) else {
            log_notice!("Control header is missing 'cmd' field.");
            return None;
        };
        if req.resources.is_empty() {
            return Some(error_reply(ehast::INVALID));
        }
        let targets = self.lookup(&req.resources);
        match req.cmd {
            ControlCmd::SetRole => {
                let role = match req.role {
                    Some(r @ (Role::Init | Role::Primary | Role::Secondary | Role::Watchdog)) => r,
                    _ => return Some(error_reply(ehast::INVALID)),
                };
                let entries = targets
                    .into_iter()
                    .map(|(name, idx)| RoleEntry {
                        outcome: match idx {
                            None => RoleOutcome::Error(ehast::NOENTRY),
                            Some(i) => RoleOutcome::Previous(self.set_role(i, role).to_string()),
                        },
                        resource: name,
                    })
                    .collect();
                Some(
                    RoleReply {
                        entries,
                        error: None,
                    }
                    .to_nv(),
                )
            }
            ControlCmd::Status => {
                let entries = targets
                    .into_iter()
                    .map(|(name, idx)| StatusEntry {
                        outcome: match idx {
                            None => StatusOutcome::Error(ehast::NOENTRY),
                            Some(i) => StatusOutcome::Status(self.status(i)),
                        },
                        resource: name,
                    })
                    .collect();
                Some(
                    StatusReply {
                        entries,
                        error: None,
                    }
                    .to_nv(),
                )
            }
            ControlCmd::Other(_) if targets.is_empty() => Some(NvList::new()),
            ControlCmd::Other(_) => Some(error_reply(ehast::UNIMPLEMENTED)),
        }
    }

    /// Sets a role; returns the role it had before.
    fn set_role(&mut self, i: usize, role: Role) -> Role {
        let r = &mut self.list[i];
        let old = r.role;
        if old == role {
            log_debug!(2, "[{}] ({}) Role unchanged.", r.cfg.name, old);
            return old;
        }
        log_notice!("[{}] ({}) Role changed to {}.", r.cfg.name, old, role);
        r.role = role;
        old
    }

    fn status(&self, i: usize) -> ResourceStatus {
        let r = &self.list[i];
        let c = &r.cfg;
        ResourceStatus {
            exec: c.exec.clone(),
            attempts_max: clamp(c.attempts as u64),
            remotes: c
                .remote
                .iter()
                .map(|a| RemoteStatus {
                    addr: a.to_string(),
                    state: None,
                    role: None,
                })
                .collect(),
            role: r.role,
            workerpid: 0,
            complaints: 0,
            complaints_critical: clamp(c.complaint_count as u64),
            complaints_interval: whole_seconds(c.complaint_interval),
            heartbeat: whole_seconds(c.heartbeat_interval),
            worker: None,
        }
    }
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The wire carries whole seconds: a fraction is rounded up, so a
/// sub-second interval never reads as 0.
fn whole_seconds(d: std::time::Duration) -> i32 {
    clamp(d.as_millis().div_ceil(1000) as u64)
}
