//! The extra status facts of `hastmonctl status -j`: not in 0.3.4.
//!
//! The request asks for them with `extended` (uint8 1); a daemon that
//! knows the field appends these to each known resource's entry of the
//! status reply, after everything 0.3.4 sends, and one that does not
//! ignores the field and answers as before. A plain status request never
//! carries the field, so its reply stays byte for byte what 0.3.4 sends.
//!
//! Fields per resource `i` (times are milliseconds; "ago" is before the
//! reply was built):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `extended<i>` | uint8 1 | the entry carries the fields below |
//! | `heartbeat_ms<i>` | uint64 | `heartbeat_interval`, not rounded |
//! | `complaints_interval_ms<i>` | uint64 | `complaint_interval`, not rounded |
//! | `complaintages<i>` | uint64 array | age of each counted complaint, newest first, at most [`MAX_AGES`] |
//! | `remoteseen<i>.<j>` | uint64 | since remote j was last heard from; absent if never (or no worker) |
//! | `lastchange<i>` | uint64 | since the last role change; absent if none |
//! | `lastchangefrom<i>` | string | the role before it |
//! | `lastchangecause<i>` | string | why it changed |
//! | `hookevent<i>.<k>` | string | event word of hook run k (one per event, at most [`MAX_HOOKS`]) |
//! | `hookresult<i>.<k>` | string | `exited`, `killed`, `timedout` or `notrun` |
//! | `hookcode<i>.<k>` | int32 | exit code (`exited`) or signal (`killed`); absent otherwise |
//! | `hooktook<i>.<k>` | uint64 | how long it ran |
//! | `hookago<i>.<k>` | uint64 | since it ended |

use super::text;
use crate::proto::nv::{NvList, Value};
use crate::types::Role;

/// Complaint ages sent per resource; more are counted but not listed.
pub const MAX_AGES: usize = 64;
/// Hook runs read per resource (hastmon knows 7 event words).
pub const MAX_HOOKS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Exited(i32),
    Killed(i32),
    TimedOut,
    NotRun,
}

impl HookOutcome {
    fn word(self) -> &'static str {
        match self {
            HookOutcome::Exited(_) => "exited",
            HookOutcome::Killed(_) => "killed",
            HookOutcome::TimedOut => "timedout",
            HookOutcome::NotRun => "notrun",
        }
    }

    fn code(self) -> Option<i32> {
        match self {
            HookOutcome::Exited(c) | HookOutcome::Killed(c) => Some(c),
            HookOutcome::TimedOut | HookOutcome::NotRun => None,
        }
    }

    fn from_parts(word: &str, code: Option<i32>) -> Option<HookOutcome> {
        Some(match word {
            "exited" => HookOutcome::Exited(code?),
            "killed" => HookOutcome::Killed(code?),
            "timedout" => HookOutcome::TimedOut,
            "notrun" => HookOutcome::NotRun,
            _ => return None,
        })
    }
}

/// The last run of one hook event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub event: String,
    pub outcome: HookOutcome,
    pub took_ms: u64,
    pub ago_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastChange {
    pub ago_ms: u64,
    pub from: Role,
    pub cause: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusExtra {
    pub heartbeat_ms: u64,
    pub complaint_interval_ms: u64,
    pub complaint_ages_ms: Vec<u64>,
    /// Per configured remote, in order.
    pub remote_seen_ms: Vec<Option<u64>>,
    pub last_change: Option<LastChange>,
    pub hooks: Vec<HookRun>,
}

impl StatusExtra {
    /// Appends the fields of entry `i`.
    pub fn write(&self, nv: &mut NvList, i: usize) {
        nv.add_u8(format!("extended{i}"), 1)
            .add_u64(format!("heartbeat_ms{i}"), self.heartbeat_ms)
            .add_u64(
                format!("complaints_interval_ms{i}"),
                self.complaint_interval_ms,
            );
        let ages = self.complaint_ages_ms.iter().take(MAX_AGES).copied();
        nv.push(format!("complaintages{i}"), Value::U64Array(ages.collect()));
        for (j, seen) in self.remote_seen_ms.iter().enumerate() {
            if let Some(ms) = seen {
                nv.add_u64(format!("remoteseen{i}.{j}"), *ms);
            }
        }
        if let Some(c) = &self.last_change {
            nv.add_u64(format!("lastchange{i}"), c.ago_ms)
                .add_string(format!("lastchangefrom{i}"), c.from.as_str())
                .add_string(format!("lastchangecause{i}"), &c.cause);
        }
        for (k, h) in self.hooks.iter().take(MAX_HOOKS).enumerate() {
            nv.add_string(format!("hookevent{i}.{k}"), &h.event)
                .add_string(format!("hookresult{i}.{k}"), h.outcome.word());
            if let Some(code) = h.outcome.code() {
                nv.add_i32(format!("hookcode{i}.{k}"), code);
            }
            nv.add_u64(format!("hooktook{i}.{k}"), h.took_ms)
                .add_u64(format!("hookago{i}.{k}"), h.ago_ms);
        }
    }

    /// The extra facts of entry `i` with `remotes` remotes; `None` when
    /// the daemon sent none (it predates them). A malformed hook run ends
    /// the list.
    pub fn read(nv: &NvList, i: usize, remotes: usize) -> Option<StatusExtra> {
        if nv.get_u8(&format!("extended{i}")) != Some(1) {
            return None;
        }
        let u64_of = |name: String| nv.get_u64(&name);
        let last_change = u64_of(format!("lastchange{i}")).map(|ago_ms| LastChange {
            ago_ms,
            from: text(nv, &format!("lastchangefrom{i}"))
                .and_then(|w| Role::from_word(&w))
                .unwrap_or(Role::Undef),
            cause: text(nv, &format!("lastchangecause{i}")).unwrap_or_default(),
        });
        let hooks = (0..MAX_HOOKS)
            .map_while(|k| {
                let outcome = HookOutcome::from_parts(
                    &text(nv, &format!("hookresult{i}.{k}"))?,
                    nv.get_i32(&format!("hookcode{i}.{k}")),
                )?;
                Some(HookRun {
                    event: text(nv, &format!("hookevent{i}.{k}"))?,
                    outcome,
                    took_ms: u64_of(format!("hooktook{i}.{k}"))?,
                    ago_ms: u64_of(format!("hookago{i}.{k}"))?,
                })
            })
            .collect();
        Some(StatusExtra {
            heartbeat_ms: u64_of(format!("heartbeat_ms{i}")).unwrap_or(0),
            complaint_interval_ms: u64_of(format!("complaints_interval_ms{i}")).unwrap_or(0),
            complaint_ages_ms: nv
                .get_u64_array(&format!("complaintages{i}"))
                .map(|a| a.iter().take(MAX_AGES).copied().collect())
                .unwrap_or_default(),
            remote_seen_ms: (0..remotes)
                .map(|j| u64_of(format!("remoteseen{i}.{j}")))
                .collect(),
            last_change,
            hooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_round_trip_and_their_absence_reads_as_none() {
        let extra = StatusExtra {
            heartbeat_ms: 200,
            complaint_interval_ms: 10_000,
            complaint_ages_ms: vec![150, 350, 9_000],
            remote_seen_ms: vec![Some(120), None],
            last_change: Some(LastChange {
                ago_ms: 4_321,
                from: Role::Secondary,
                cause: "Complaint limit reached".into(),
            }),
            hooks: vec![
                HookRun {
                    event: "start".into(),
                    outcome: HookOutcome::Exited(0),
                    took_ms: 12,
                    ago_ms: 4_000,
                },
                HookRun {
                    event: "status".into(),
                    outcome: HookOutcome::TimedOut,
                    took_ms: 30_000,
                    ago_ms: 5,
                },
            ],
        };
        let mut nv = NvList::new();
        nv.add_string("resource0", "www");
        extra.write(&mut nv, 1);
        assert_eq!(StatusExtra::read(&nv, 1, 2), Some(extra));
        assert_eq!(StatusExtra::read(&nv, 0, 2), None);

        let bare = StatusExtra {
            remote_seen_ms: vec![None],
            ..StatusExtra::default()
        };
        let mut nv = NvList::new();
        bare.write(&mut nv, 0);
        assert_eq!(StatusExtra::read(&nv, 0, 1), Some(bare));
    }

    #[test]
    fn lists_are_bounded() {
        let extra = StatusExtra {
            complaint_ages_ms: (0..1000).collect(),
            hooks: (0..100)
                .map(|k| HookRun {
                    event: format!("e{k}"),
                    outcome: HookOutcome::Killed(9),
                    took_ms: 1,
                    ago_ms: 1,
                })
                .collect(),
            ..StatusExtra::default()
        };
        let mut nv = NvList::new();
        extra.write(&mut nv, 0);
        let read = StatusExtra::read(&nv, 0, 0).unwrap();
        assert_eq!(read.complaint_ages_ms.len(), MAX_AGES);
        assert_eq!(read.hooks.len(), MAX_HOOKS);
    }
}
