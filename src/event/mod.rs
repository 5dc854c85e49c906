//! The event loop: one Poller over kqueue (FreeBSD) or epoll (Linux).
