//! The system `ssh` command line that reaches a host as infra does, for
//! `infra ssh`: the same user, port, key, strict host keys against the
//! same known_hosts, and the same bastion. An interactive session needs
//! ssh's own terminal handling, which a multiplexed channel lacks, so this
//! hands the terminal to `ssh` instead of going through a [`super::Connection`].

use std::process::Command;

use super::{Settings, Target};

/// `ssh … user@destination [command]`; `terminal` asks for one (`-t`) when
/// a command is given and stdin is a terminal (a login shell gets one anyway).
pub fn command(target: &Target, settings: &Settings, remote: &[String], terminal: bool) -> Command {
    let mut ssh = Command::new("ssh");
    ssh.args(options(target, settings));
    if let Some(jump) = &target.jump {
        let user = jump.user.as_deref().unwrap_or(&target.user);
        let port = jump.port.unwrap_or(22);
        // The bastion with the host's key and known_hosts, as apply reaches it.
        let forward = Target {
            destination: jump.destination.clone(),
            user: user.to_string(),
            port,
            jump: None,
            ..target.clone()
        };
        let mut proxy = vec!["ssh".to_string()];
        proxy.extend(options(&forward, settings).into_iter().map(|option| super::shell_quote(&option)));
        proxy.push("-W".into());
        proxy.push("'[%h]:%p'".into());
        proxy.push(super::shell_quote(&format!("{user}@{}", jump.destination)));
        ssh.arg("-o").arg(format!("ProxyCommand={}", proxy.join(" ")));
    }
    if terminal && !remote.is_empty() {
        ssh.arg("-t");
    }
    ssh.arg(format!("{}@{}", target.user, target.destination));
    if !remote.is_empty() {
        ssh.arg("--").args(remote);
    }
    ssh
}

/// The options one hop needs: port, key, host-key policy, known_hosts.
fn options(target: &Target, settings: &Settings) -> Vec<String> {
    let mut options = vec!["-p".to_string(), target.port.to_string()];
    if let Some(identity) = &target.identity {
        options.extend(["-i".to_string(), identity.display().to_string(), "-o".into(), "IdentitiesOnly=yes".into()]);
    }
    let policy = if settings.accept_new_host_keys { "accept-new" } else { "yes" };
    options.extend(["-o".to_string(), format!("StrictHostKeyChecking={policy}")]);
    if let Some(known_hosts) = &target.known_hosts {
        options.extend(["-o".to_string(), format!("UserKnownHostsFile=\"{}\"", known_hosts.display())]);
    }
    options.extend(["-o".to_string(), format!("ConnectTimeout={}", settings.connect_timeout.as_secs())]);
    options
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn arguments(command: &Command) -> Vec<String> {
        command.get_args().map(|arg| arg.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn a_host_behind_a_bastion_is_reached_with_the_same_key_and_known_hosts() {
        let mut target = Target::with_defaults("web-01", "10.0.1.21".parse().expect("address"));
        target.user = "admin".into();
        target.identity = Some("/keys/id".into());
        target.known_hosts = Some("/keys/known hosts".into());
        target.jump = Some(super::super::Jump { destination: "10.0.0.5".into(), user: None, port: Some(2222) });
        let settings = Settings::new(false, Duration::from_secs(10));
        let command = command(&target, &settings, &["uptime".into()], true);
        assert_eq!(
            arguments(&command).join(" "),
            "-p 22 -i /keys/id -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\"/keys/known hosts\" -o ConnectTimeout=10 \
             -o ProxyCommand=ssh '-p' '2222' '-i' '/keys/id' '-o' 'IdentitiesOnly=yes' '-o' 'StrictHostKeyChecking=yes' '-o' 'UserKnownHostsFile=\"/keys/known hosts\"' '-o' 'ConnectTimeout=10' -W '[%h]:%p' 'admin@10.0.0.5' \
             -t admin@10.0.1.21 -- uptime"
        );
    }

    #[test]
    fn a_login_shell_needs_no_forced_terminal() {
        let target = Target::with_defaults("db-01", "10.0.0.41".parse().expect("address"));
        let command = command(&target, &Settings::new(true, Duration::from_secs(5)), &[], true);
        let arguments = arguments(&command);
        assert!(arguments.contains(&"StrictHostKeyChecking=accept-new".to_string()), "{arguments:?}");
        assert_eq!(arguments.last().map(String::as_str), Some("root@10.0.0.41"));
        assert!(!arguments.contains(&"-t".to_string()));
    }
}
