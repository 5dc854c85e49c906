//! `hastmonctl status -j`: the facts of the status text and the extra
//! ones of `status_extra`, as one JSON object. Every key is described in
//! hastmonctl(8), "JSON output"; what a daemon did not send (one older
//! than the extra facts) is null. Keys come out in the order below.

use serde::Serialize;

use super::health::healthy;
use crate::proto::NvList;
use crate::proto::msg::{
    HookOutcome, ResourceStatus, StatusExtra, StatusOutcome, StatusReply, WorkerStatus,
};
use crate::types::{Role, State};

#[derive(Serialize)]
struct Output<'a> {
    resources: Vec<Entry<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Resource(Box<Resource<'a>>),
    Unknown { name: &'a str, error: i16 },
}

#[derive(Serialize)]
struct Resource<'a> {
    name: &'a str,
    role: &'static str,
    healthy: bool,
    worker_pid: Option<i32>,
    exec: &'a str,
    state: &'static str,
    attempts: i32,
    attempts_max: i32,
    remotes: Vec<Remote<'a>>,
    complaints: Complaints,
    heartbeat_interval: f64,
    last_role_change: Option<Change<'a>>,
    hooks: Option<Vec<Hook<'a>>>,
    extended: bool,
}

#[derive(Serialize)]
struct Remote<'a> {
    address: &'a str,
    connection: Option<&'a str>,
    role: Option<&'a str>,
    state: Option<&'a str>,
    last_seen: Option<f64>,
}

#[derive(Serialize)]
struct Complaints {
    count: i32,
    ages: Option<Vec<f64>>,
    interval: f64,
    threshold: i32,
}

#[derive(Serialize)]
struct Change<'a> {
    ago: f64,
    from: &'static str,
    cause: &'a str,
}

#[derive(Serialize)]
struct Hook<'a> {
    event: &'a str,
    result: &'static str,
    code: Option<i32>,
    duration: f64,
    ago: f64,
}

/// Milliseconds as seconds.
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The whole output, one line (or indented with `pretty`), for a reply
/// `nv` and `reply` decoded from it.
pub fn status_json(nv: &NvList, reply: &StatusReply, pretty: bool) -> String {
    let extras: Vec<Option<StatusExtra>> = reply
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.outcome {
            StatusOutcome::Status(s) => StatusExtra::read(nv, i, s.remotes.len()),
            StatusOutcome::Error(_) => None,
        })
        .collect();
    let resources = reply
        .entries
        .iter()
        .zip(&extras)
        .map(|(e, extra)| match &e.outcome {
            StatusOutcome::Error(n) => Entry::Unknown {
                name: &e.resource,
                error: *n,
            },
            StatusOutcome::Status(s) => {
                Entry::Resource(Box::new(resource(&e.resource, s, extra.as_ref())))
            }
        })
        .collect();
    let out = Output { resources };
    let text = if pretty {
        serde_json::to_string_pretty(&out)
    } else {
        serde_json::to_string(&out)
    };
    // Only a map with non-string keys could fail; there is none.
    text.unwrap_or_default() + "\n"
}

fn resource<'a>(
    name: &'a str,
    s: &'a ResourceStatus,
    extra: Option<&'a StatusExtra>,
) -> Resource<'a> {
    let WorkerStatus { state, attempts } = s.worker.unwrap_or(WorkerStatus {
        state: State::Unknown,
        attempts: 0,
    });
    let remotes = s
        .remotes
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let (connection, role, state) = match s.role {
                Role::Primary | Role::Secondary => (r.state.as_deref(), None, None),
                Role::Watchdog => (None, r.role.as_deref(), r.state.as_deref()),
                _ => (None, None, None),
            };
            Remote {
                address: &r.addr,
                connection,
                role,
                state,
                last_seen: extra
                    .and_then(|x| x.remote_seen_ms.get(j).copied().flatten())
                    .map(secs),
            }
        })
        .collect();
    Resource {
        name,
        role: s.role.as_str(),
        healthy: healthy(s),
        worker_pid: (s.workerpid != 0).then_some(s.workerpid),
        exec: &s.exec,
        state: state.as_str(),
        attempts,
        attempts_max: s.attempts_max,
        remotes,
        complaints: Complaints {
            count: s.complaints,
            ages: extra.map(|x| x.complaint_ages_ms.iter().map(|&a| secs(a)).collect()),
            interval: extra.map_or(f64::from(s.complaints_interval), |x| {
                secs(x.complaint_interval_ms)
            }),
            threshold: s.complaints_critical,
        },
        heartbeat_interval: extra.map_or(f64::from(s.heartbeat), |x| secs(x.heartbeat_ms)),
        last_role_change: extra.and_then(|x| x.last_change.as_ref()).map(|c| Change {
            ago: secs(c.ago_ms),
            from: c.from.as_str(),
            cause: &c.cause,
        }),
        hooks: extra.map(|x| x.hooks.iter().map(hook).collect()),
        extended: extra.is_some(),
    }
}

fn hook(h: &crate::proto::msg::HookRun) -> Hook<'_> {
    let (result, code) = match h.outcome {
        HookOutcome::Exited(c) => ("exited", Some(c)),
        HookOutcome::Killed(s) => ("killed", Some(s)),
        HookOutcome::TimedOut => ("timed out", None),
        HookOutcome::NotRun => ("not run", None),
    };
    Hook {
        event: &h.event,
        result,
        code,
        duration: secs(h.took_ms),
        ago: secs(h.ago_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::{HookRun, LastChange, RemoteStatus, StatusEntry};
    use serde_json::{Value, json};

    fn parsed(nv: &NvList, reply: &StatusReply) -> Value {
        serde_json::from_str(&status_json(nv, reply, false)).unwrap()
    }

    fn watchdog() -> ResourceStatus {
        ResourceStatus {
            exec: "/hook".into(),
            attempts_max: 5,
            remotes: vec![RemoteStatus {
                addr: "tcp4://10.0.0.1".into(),
                state: Some("run".into()),
                role: Some("primary".into()),
            }],
            role: Role::Watchdog,
            workerpid: 7,
            complaints: 1,
            complaints_critical: 3,
            complaints_interval: 1,
            heartbeat: 1,
            worker: Some(WorkerStatus {
                state: State::Run,
                attempts: 0,
            }),
        }
    }

    fn reply(s: ResourceStatus) -> StatusReply {
        StatusReply {
            entries: vec![
                StatusEntry {
                    resource: "www".into(),
                    outcome: StatusOutcome::Status(s),
                },
                StatusEntry {
                    resource: "nosuch".into(),
                    outcome: StatusOutcome::Error(1),
                },
            ],
            error: None,
        }
    }

    #[test]
    fn an_old_daemons_reply_gives_the_text_facts_and_nulls() {
        let r = reply(watchdog());
        let v = parsed(&r.to_nv(), &r);
        let www = &v["resources"][0];
        assert_eq!(www["role"], "watchdog");
        assert_eq!(www["worker_pid"], 7);
        assert_eq!(www["healthy"], true);
        assert_eq!(www["extended"], false);
        assert_eq!(www["remotes"][0]["role"], "primary");
        assert_eq!(www["remotes"][0]["state"], "run");
        assert_eq!(www["remotes"][0]["connection"], Value::Null);
        assert_eq!(www["remotes"][0]["last_seen"], Value::Null);
        assert_eq!(www["heartbeat_interval"], 1.0);
        assert_eq!(www["complaints"]["ages"], Value::Null);
        assert_eq!(www["hooks"], Value::Null);
        assert_eq!(v["resources"][1], json!({"name": "nosuch", "error": 1}));
    }

    #[test]
    fn extra_facts_are_shown_in_seconds() {
        let r = reply(watchdog());
        let mut nv = r.to_nv();
        StatusExtra {
            heartbeat_ms: 200,
            complaint_interval_ms: 500,
            complaint_ages_ms: vec![250],
            remote_seen_ms: vec![Some(120)],
            last_change: Some(LastChange {
                ago_ms: 1500,
                from: Role::Init,
                cause: "Role requested".into(),
            }),
            hooks: vec![HookRun {
                event: "complain".into(),
                outcome: HookOutcome::Killed(9),
                took_ms: 30,
                ago_ms: 40,
            }],
        }
        .write(&mut nv, 0);
        let v = parsed(&nv, &r);
        let www = &v["resources"][0];
        assert_eq!(www["extended"], true);
        assert_eq!(www["heartbeat_interval"], 0.2);
        assert_eq!(www["complaints"]["interval"], 0.5);
        assert_eq!(www["complaints"]["ages"], json!([0.25]));
        assert_eq!(www["remotes"][0]["last_seen"], 0.12);
        assert_eq!(
            www["last_role_change"],
            json!({"ago": 1.5, "from": "init", "cause": "Role requested"})
        );
        assert_eq!(
            www["hooks"],
            json!([{"event": "complain", "result": "killed", "code": 9, "duration": 0.03, "ago": 0.04}])
        );
    }
}
