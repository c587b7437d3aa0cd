//! What infra does to the app's Gunicorn at run time, and the account it
//! runs as, which the unit, the environment file's group and every app
//! command (import check, migrations) share.

use super::GUNICORN;

/// The account Gunicorn and the app's commands run as (Debian's web user,
/// which Nginx also runs as).
pub const USER: &str = "www-data";

/// Stops the app (a restore loads the database while nothing writes).
pub fn stop() -> String {
    format!("systemctl stop {}\n", GUNICORN.unit)
}

/// Starts the app again.
pub fn start() -> String {
    format!("systemctl start {}\n", GUNICORN.unit)
}

/// A graceful reload: new workers from the `current` release, in-flight
/// requests finish on the old ones.
pub fn reload() -> String {
    format!("systemctl reload {}\n", GUNICORN.unit)
}
