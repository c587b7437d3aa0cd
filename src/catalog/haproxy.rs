//! What infra does to a running HAProxy, and the names its configuration
//! shares with those verbs: the backend the web servers are in and the
//! admin socket. `haproxy.cfg.j2` reads both from the template context, so
//! a drain can never address a backend or socket the config does not have.

/// The backend of `haproxy.cfg` that balances over the web servers.
pub const BACKEND: &str = "web";
/// The runtime API's socket (`stats socket` in `haproxy.cfg`).
pub const ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";

/// A web server's state in the backend, as the runtime API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// No new requests; those in flight finish (before the server is touched).
    Drain,
    /// Back in rotation (after its health check).
    Ready,
}

impl ServerState {
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Drain => "drain",
            ServerState::Ready => "ready",
        }
    }
}

/// Sets web server `server`'s state through the runtime API, on a load
/// balancer; a balancer without HAProxy running yet has nothing to drain.
/// `server` is an inventory host name (grammar-checked at load time).
pub fn set_server_state(server: &str, state: ServerState) -> String {
    let state = state.name();
    format!(
        "[ -S {ADMIN_SOCKET} ] || exit 0\npython3 - <<'INFRA_EOF'\nimport socket\n\
         s = socket.socket(socket.AF_UNIX)\ns.connect('{ADMIN_SOCKET}')\n\
         s.sendall(b'set server {BACKEND}/{server} state {state}\\n')\nprint(s.recv(4096).decode().strip())\nINFRA_EOF\n"
    )
}

/// The names `haproxy.cfg.j2` reads as `haproxy.backend` and `haproxy.admin_socket`.
pub fn template_context() -> minijinja::Value {
    minijinja::context! { backend => BACKEND, admin_socket => ADMIN_SOCKET }
}
