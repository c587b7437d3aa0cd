//! What infra does to the app's Gunicorn at run time, and the account it
//! runs as, which the unit, the environment file's group and every app
//! command (import check, migrations) share.

use super::{GUNICORN, GUNICORN_SOCKET};

/// The Gunicorn a release's `.venv` gets when its requirements do not name
/// one: the version Debian 13 ships, so a move from Debian's server to the
/// release's own changes nothing but where it is installed.
pub const DEFAULT_VERSION: &str = "23.0.0";

/// The distribution's name, normalised as requirements compare names.
pub const DISTRIBUTION: &str = "gunicorn";

/// The account Gunicorn and the app's commands run as (Debian's web user,
/// which Nginx also runs as).
pub const USER: &str = "www-data";

/// Stops the app (a restore loads the database while nothing writes), its
/// socket first: a connection to a socket left listening would start the
/// app again.
pub fn stop() -> String {
    format!("systemctl stop {} {}\n", GUNICORN_SOCKET.unit, GUNICORN.unit)
}

/// Starts the app again.
pub fn start() -> String {
    format!("systemctl start {} {}\n", GUNICORN_SOCKET.unit, GUNICORN.unit)
}

/// A graceful reload: new workers from the `current` release, in-flight
/// requests finish on the old ones.
pub fn reload() -> String {
    format!("systemctl reload {}\n", GUNICORN.unit)
}

/// What a switch of the `current` link does to the running server: a
/// graceful reload when the new release serves with the same Gunicorn as
/// the old one, else a restart (the master's own code is the old
/// release's, and a reload would keep it).
pub fn switch(from: Option<&str>, to: Option<&str>) -> String {
    if same_server(from, to) { reload() } else { format!("systemctl restart {}\n", GUNICORN.unit) }
}

/// Whether two releases serve with the same Gunicorn: both versions known
/// and equal (`None` is not known, so never the same).
pub fn same_server(from: Option<&str>, to: Option<&str>) -> bool {
    matches!((from, to), (Some(from), Some(to)) if from == to)
}
