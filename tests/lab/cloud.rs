//! The lab booted the way cloud servers come (inventories/cloud.yml): no
//! root login, an `admin` user with passwordless sudo, the web, app and
//! database hosts reachable only through a bastion. Everything infra does
//! as root on the plain lab, it does here through `sudo -n` and the bastion.

use super::*;

const CLOUD_PREFIX: &str = "10.72.0.";
const BASTION: &str = "10.72.0.5";
/// The one host whose sudo asks for a password: in the lab the cloud
/// inventory is booted from, never in the stack infra converges.
const PASSWORD_HOST: &str = "  - name: web-02\n    ssh: {jump: 10.72.0.5}\n    address: 10.72.0.22\n    roles: [web]\n    lab: {sudo: password}\n";

impl Lab {
    /// Runs `script` as `admin` on a cloud lab host, through the bastion
    /// when `behind` says so.
    pub(crate) fn admin_ssh(&self, address: &str, behind: bool, script: &str) -> Output {
        let key = self.state.path().join("id_ed25519");
        let known_hosts = self.state.path().join("known_hosts");
        let options = format!(
            "-o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -i {} -o UserKnownHostsFile={}",
            key.display(),
            known_hosts.display()
        );
        let mut command = Command::new("ssh");
        command.args(options.split(' '));
        if behind {
            command.arg("-o").arg(format!("ProxyCommand=ssh {options} -W %h:%p admin@{BASTION}"));
        }
        command.arg(format!("admin@{address}")).arg(script).output().expect("ssh runs")
    }

    pub(crate) fn admin_ssh_ok(&self, address: &str, behind: bool, script: &str) -> String {
        let output = self.admin_ssh(address, behind, script);
        assert_success(&output, &format!("ssh admin@{address} {script}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn cloud_inventory() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/cloud.yml"))
        .expect("inventories/cloud.yml")
        .replace("10.21.0.", CLOUD_PREFIX)
}

pub(crate) fn a_cloud_like_lab_converges_through_sudo_and_a_bastion() {
    let stack = cloud_inventory();
    let with_password_host = stack.replacen("  - name: app-01\n", &format!("{PASSWORD_HOST}  - name: app-01\n"), 1);
    let lab = Lab::up_named("infracloud", &with_password_host);
    let inventory = lab.state.path().join("stack.yml");
    std::fs::write(&inventory, std::fs::read_to_string(&lab.inventory).expect("inventory").replace(PASSWORD_HOST, ""))
        .expect("write the stack's inventory");

    // Cloud-like: root may not log in, a private host is not reachable
    // from here, and the bastion reaches it.
    let private = format!("{CLOUD_PREFIX}31");
    assert!(!lab.ssh(&format!("{CLOUD_PREFIX}11"), "true").status.success(), "root logged in to lb-01");
    assert!(!lab.admin_ssh(&private, false, "true").status.success(), "app-01 answered this machine directly");
    assert_eq!(lab.admin_ssh_ok(&private, true, "sudo -n id -u").trim(), "0");

    // The host whose sudo wants a password is refused before anything
    // changes anywhere, with the sudoers line that fixes it.
    let refused = lab.apply(&lab.inventory, &[]);
    assert!(!refused.status.success(), "apply with a password-sudo host must refuse");
    let said = stderr(&refused);
    assert!(said.contains("sudo asks `admin` for a password on `web-02`"), "{said}");
    assert!(said.contains("admin ALL=(ALL:ALL) NOPASSWD: ALL"), "{said}");
    for host in ["11", "31", "41"] {
        let behind = host != "11";
        let touched = lab.admin_ssh_ok(&format!("{CLOUD_PREFIX}{host}"), behind, "ls /etc/infra 2>/dev/null | wc -l");
        assert_eq!(touched.trim(), "0", "10.72.0.{host} was changed by a refused apply");
    }

    // The interface keepalived moves the virtual IP on is read from the
    // hosts: one the balancers do not have is refused by name.
    let wrong_interface = lab.state.path().join("eth0.yml");
    let text = std::fs::read_to_string(&inventory).expect("inventory");
    std::fs::write(&wrong_interface, text.replace("interface: ens5", "interface: eth0")).expect("write");
    let plan = lab.plan(&wrong_interface, &[]);
    assert_eq!(plan.status.code(), Some(1), "a balancer without `eth0` must be refused");
    let said = format!("{}{}", String::from_utf8_lossy(&plan.stdout), stderr(&plan));
    assert!(
        said.contains("it has no network interface `eth0` for keepalived to move the virtual IP on; it has `ens5`"),
        "{said}"
    );

    // A reused host: apache2 already answers on :80 of web-01. Plan names
    // it and refuses the host; once it is stopped, apply goes ahead.
    let web = format!("{CLOUD_PREFIX}21");
    lab.admin_ssh_ok(&web, true, "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q apache2 >/dev/null");
    let plan = lab.plan(&inventory, &[]);
    assert_eq!(plan.status.code(), Some(1), "a host with apache2 on :80 must be refused");
    let said = format!("{}{}", String::from_utf8_lossy(&plan.stdout), stderr(&plan));
    assert!(said.contains("port 80 is already taken by `apache2.service` (process `apache2`)"), "{said}");
    assert!(said.contains("systemctl disable --now apache2.service"), "{said}");
    // doctor lists both blockers, each with its fix, and what is fine.
    let doctor = lab
        .command()
        .args(["doctor", "-i"])
        .arg(&lab.inventory)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_eq!(doctor.status.code(), Some(1), "doctor must report the blockers");
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("blocker connection sudo asks `admin` for a password on `web-02`"), "{report}");
    assert!(report.contains("blocker ports      port 80 is already taken by `apache2.service`"), "{report}");
    assert!(report.contains("ok      connection as `admin` through 10.72.0.5, root through `sudo -n`"), "{report}");
    assert!(
        report.contains("ok      release    Debian 13") || report.contains("ok      release    Debian 12"),
        "{report}"
    );
    lab.admin_ssh_ok(&web, true, "sudo -n systemctl disable --now apache2.service 2>/dev/null");

    let applied = lab.apply(&inventory, &[]);
    assert_success(&applied, "apply through sudo and the bastion");
    let (status, body) = super::apply::http_get(&lab.vip, "/").expect("the virtual IP answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.plan(&inventory, &["--detailed-exitcode"]).status.code(), Some(0), "a second plan is clean");

    let backup = lab
        .command()
        .args(["backup", "now", "-i"])
        .arg(&inventory)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&backup, "backup now through sudo");
    let restored = lab
        .command()
        .args(["restore", "--yes", "-i"])
        .arg(&inventory)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&restored, "restore through sudo");

    // sudo logs every command line it runs to the journal and auth.log:
    // none may hold a secret.
    for (host, behind) in [("11", false), ("12", false), ("21", true), ("31", true), ("41", true)] {
        let logs = lab.admin_ssh_ok(
            &format!("{CLOUD_PREFIX}{host}"),
            behind,
            "sudo -n journalctl --no-pager -q; sudo -n cat /var/log/auth.log 2>/dev/null || true",
        );
        assert!(logs.contains("COMMAND=/usr/bin/env 'SSH_CONNECTION="), "sudo's log of 10.72.0.{host} is not read");
        assert_no_password(&format!("the journal of 10.72.0.{host}"), &logs);
    }
}
