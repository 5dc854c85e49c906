//! Configuration reload on SIGHUP: the file and the sockets.

/// Re-reads the configuration and opens its sockets. A file that does not
/// load changes nothing; new control or listen addresses are opened
/// before the old ones close, and a failure there too changes nothing.
/// What the new configuration means for the resources is the node
/// machine's (`node::reload`).
pub fn reload(
    opts: &super::Options,
    current: &mut crate::config::Config,
    control: &mut Option<super::control::ControlServer>,
    listen: &mut super::listen::ListenServer,
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
    *current = new.clone();
    Some(new)
}
