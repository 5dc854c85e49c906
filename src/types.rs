//! Vocabulary shared by every layer: roles and resource states, with the
//! numeric codes of the wire protocol and the texts of `hastmonctl status`.

use std::fmt;

/// A node's role for one resource (`hast.h` codes; 0 only on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Undef = 0,
    Init = 1,
    Primary = 2,
    Secondary = 3,
    Watchdog = 4,
}

impl Role {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Unknown codes read as `Undef`, as the original's `role2str()` does.
    pub fn from_code(code: u8) -> Role {
        match code {
            1 => Role::Init,
            2 => Role::Primary,
            3 => Role::Secondary,
            4 => Role::Watchdog,
            _ => Role::Undef,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Undef => "unknown",
            Role::Init => "init",
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Watchdog => "watchdog",
        }
    }

    /// The four role words an operator may type (`undef` is not one).
    pub fn from_word(word: &str) -> Option<Role> {
        match word {
            "init" => Some(Role::Init),
            "primary" => Some(Role::Primary),
            "secondary" => Some(Role::Secondary),
            "watchdog" => Some(Role::Watchdog),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The local state of a resource as a worker sees it (`HAST_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Unknown = 0,
    ReadyToRun = 1,
    Starting = 2,
    Run = 3,
    Stopping = 4,
    Stopped = 5,
    Failed = 6,
}

impl State {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Unknown codes read as `Unknown`, as the original's `state2str()` does.
    pub fn from_code(code: u8) -> State {
        match code {
            1 => State::ReadyToRun,
            2 => State::Starting,
            3 => State::Run,
            4 => State::Stopping,
            5 => State::Stopped,
            6 => State::Failed,
            _ => State::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::ReadyToRun => "ready to run",
            State::Starting => "starting",
            State::Run => "run",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_fall_back() {
        for code in 0..=4u8 {
            assert_eq!(Role::from_code(code).code(), code);
        }
        assert_eq!(Role::from_code(9), Role::Undef);
        assert_eq!(Role::from_code(9).as_str(), "unknown");
        for code in 0..=6u8 {
            assert_eq!(State::from_code(code).code(), code);
        }
        assert_eq!(State::from_code(200).as_str(), "unknown");
        assert_eq!(State::ReadyToRun.as_str(), "ready to run");
    }

    #[test]
    fn role_words_are_the_four_operator_roles() {
        assert_eq!(Role::from_word("watchdog"), Some(Role::Watchdog));
        assert_eq!(Role::from_word("unknown"), None);
        assert_eq!(Role::from_word("Primary"), None);
    }
}
