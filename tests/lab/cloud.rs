//! The lab booted the way cloud servers come (inventories/cloud.yml): no
//! root login, an `admin` user with passwordless sudo, a public and a
//! private network, the web, app and database hosts only on the private one
//! (reached through a bastion), unattended-upgrades holding dpkg's lock at
//! first boot and apache2 already on one web host. Everything infra does as
//! root on the plain lab, it does here through `sudo -n` and the bastion.

use super::*;

/// The public network (the balancers, the bastion, this machine) and the
/// private one (every tier).
const PUBLIC: &str = "10.72.0.";
const PRIVATE: &str = "10.72.1.";
const BASTION: &str = "10.72.0.5";
/// The one host whose sudo asks for a password: in the lab the cloud
/// inventory is booted from, never in the stack infra converges.
const PASSWORD_HOST: &str = "  - name: web-02\n    ssh: {jump: 10.72.0.5}\n    address: 10.72.1.22\n    roles: [web]\n    lab: {sudo: password}\n";

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
        .replace("10.21.0.", PUBLIC)
        .replace("10.21.1.", PRIVATE)
}

/// The example app as a git repository with two tags, v2 a code change.
fn app_repository(lab: &Lab) -> PathBuf {
    let repository = super::releases::example_repository(lab);
    let git = |args: &[&str]| super::support::git(&repository, args);
    let app = repository.join("app.py");
    let code = std::fs::read_to_string(&app).expect("read");
    std::fs::write(&app, format!("{code}\n# v2\n")).expect("write");
    git(&["commit", "-q", "-am", "v2"]);
    git(&["tag", "v2"]);
    repository
}

/// `infra releases`: app-01's current release.
fn current_release(lab: &Lab, inventory: &Path) -> String {
    let output = lab.command().args(["releases", "--format", "json", "-i"]).arg(inventory).output();
    let output = output.expect("infra runs");
    assert_success(&output, "releases through the bastion");
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    document["hosts"][0]["current"].as_str().unwrap_or_default().to_string()
}

pub(crate) fn a_cloud_like_lab_converges_through_sudo_and_a_bastion() {
    let stack = cloud_inventory();
    let with_password_host = stack.replacen("  - name: app-01\n", &format!("{PASSWORD_HOST}  - name: app-01\n"), 1);
    let lab = Lab::up_named("infracloud", &with_password_host);
    let inventory = lab.state.path().join("stack.yml");
    let repository = app_repository(&lab);
    let example = format!("source: {}/examples/app", env!("CARGO_MANIFEST_DIR"));
    let stack_text = std::fs::read_to_string(&lab.inventory).expect("inventory").replace(PASSWORD_HOST, "").replacen(
        &example,
        &format!("source: {{git: {}, ref: v1}}", repository.display()),
        1,
    );
    std::fs::write(&inventory, stack_text).expect("write the stack's inventory");

    // Cloud-like: root may not log in, a private host is not reachable
    // from here (no route: this machine is not on the private network),
    // and the bastion reaches it.
    let private = format!("{PRIVATE}31");
    assert!(!lab.ssh(&format!("{PUBLIC}11"), "true").status.success(), "root logged in to lb-01");
    assert!(!lab.admin_ssh(&private, false, "true").status.success(), "app-01 answered this machine directly");
    assert_eq!(lab.admin_ssh_ok(&private, true, "sudo -n id -u").trim(), "0");
    let links = lab.admin_ssh_ok(&format!("{PUBLIC}11"), false, "ip -br addr");
    assert!(links.contains("ens5") && links.contains("10.72.0.11/") && links.contains("ens6"), "{links}");

    // The host whose sudo wants a password is refused before anything
    // changes anywhere, with the sudoers line that fixes it.
    let refused = lab.apply(&lab.inventory, &[]);
    assert!(!refused.status.success(), "apply with a password-sudo host must refuse");
    let said = stderr(&refused);
    assert!(said.contains("sudo asks `admin` for a password on `web-02`"), "{said}");
    assert!(said.contains("admin ALL=(ALL:ALL) NOPASSWD: ALL"), "{said}");
    for host in [format!("{PUBLIC}11"), format!("{PRIVATE}31"), format!("{PRIVATE}41")] {
        let behind = host.starts_with(PRIVATE);
        let touched = lab.admin_ssh_ok(&host, behind, "ls /etc/infra 2>/dev/null | wc -l");
        assert_eq!(touched.trim(), "0", "{host} was changed by a refused apply");
    }

    // The interfaces are read from the hosts: a private network's
    // interface they do not have is refused by name, with the setting.
    let wrong_interface = lab.state.path().join("eth1.yml");
    let text = std::fs::read_to_string(&inventory).expect("inventory");
    std::fs::write(&wrong_interface, text.replace("interface: ens6", "interface: eth1")).expect("write");
    let plan = lab.plan(&wrong_interface, &[]);
    assert_eq!(plan.status.code(), Some(1), "hosts without `eth1` must be refused");
    let said = format!("{}{}", String::from_utf8_lossy(&plan.stdout), stderr(&plan));
    assert!(
        said.contains("it has no network interface `eth1` for the private network; it has `ens5`, `ens6`: set `networks.private.interface`"),
        "{said}"
    );

    // First boot: unattended-upgrades holds dpkg's lock (plan says so),
    // and web-01 came reused, apache2 answering on :80. Plan names it and
    // refuses the host; once it is stopped, apply goes ahead.
    let web = format!("{PRIVATE}21");
    let plan = lab.plan(&inventory, &[]);
    assert_eq!(plan.status.code(), Some(1), "a host with apache2 on :80 must be refused");
    let said = format!("{}{}", String::from_utf8_lossy(&plan.stdout), stderr(&plan));
    assert!(said.contains("port 80 is already taken by `apache2.service` (process `apache2`)"), "{said}");
    assert!(said.contains("systemctl disable --now apache2.service"), "{said}");
    assert!(said.contains("dpkg is busy: `unattended-upgr` holds its lock"), "{said}");
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
    // unattended-upgrades let go only once apply's apt-get waited for it.
    let said = format!("{}{}", String::from_utf8_lossy(&applied.stdout), stderr(&applied));
    assert!(said.contains("dpkg is busy") || said.contains("waiting for dpkg's lock"), "{said}");
    let (status, body) = super::apply::http_get(&lab.vip, "/").expect("the virtual IP answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.plan(&inventory, &["--detailed-exitcode"]).status.code(), Some(0), "a second plan is clean");

    // Two networks: each tier port opens only on the private interface,
    // the clients' only on the public one; Nginx listens privately.
    let ruleset = lab.admin_ssh_ok(&format!("{PRIVATE}41"), true, "sudo -n nft list table inet infra");
    assert!(ruleset.contains("iifname \"ens6\" ip saddr 10.72.1.31 tcp dport 3306 accept"), "{ruleset}");
    let ruleset = lab.admin_ssh_ok(&format!("{PUBLIC}11"), false, "sudo -n nft list table inet infra");
    assert!(ruleset.contains("iifname \"ens5\" tcp dport { 80, 443 } accept"), "{ruleset}");
    let listening = lab.admin_ssh_ok(&web, true, "sudo -n ss -Hltn 'sport = :80'");
    assert!(listening.contains("10.72.1.21:80") && !listening.contains("0.0.0.0:80"), "{listening}");

    // The daily commands through the bastion: ssh logs in as the
    // inventory's user; exec and logs run as root through sudo.
    let ssh = lab.command().args(["ssh", "-i"]).arg(&inventory).args(["web-01", "--", "hostname; id -un"]).output();
    let ssh = ssh.expect("infra runs");
    assert_success(&ssh, "infra ssh through the bastion");
    assert_eq!(String::from_utf8_lossy(&ssh.stdout), "web-01\nadmin\n");
    let exec = lab.command().args(["exec", "-i"]).arg(&inventory).args(["load_balancer", "--", "id -un"]).output();
    let exec = exec.expect("infra runs");
    assert_success(&exec, "infra exec on both balancers through sudo");
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "lb-01: root\nlb-02: root\n");
    let logs = lab.command().args(["logs", "-i"]).arg(&inventory).args(["db-01", "mariadb", "-n", "5"]).output();
    let logs = logs.expect("infra runs");
    assert_success(&logs, "infra logs behind the bastion");
    assert!(String::from_utf8_lossy(&logs.stdout).contains("db-01"), "{}", String::from_utf8_lossy(&logs.stdout));

    // Releases through the bastion: deploy v2, roll back to v1.
    let v1 = current_release(&lab, &inventory);
    assert_success(&lab.deploy(&inventory, &["--source", "v2"]), "deploy of v2 through sudo and the bastion");
    let v2 = current_release(&lab, &inventory);
    assert_ne!(v1, v2, "deploy switched the release");
    let rollback = lab.command().args(["rollback", "--yes", "-i"]).arg(&inventory).output().expect("infra runs");
    assert_success(&rollback, "rollback through sudo and the bastion");
    assert_eq!(current_release(&lab, &inventory), v1, "rollback went back to v1");
    assert_eq!(super::apply::http_get(&lab.vip, "/").map(|(status, _)| status).ok(), Some(200));

    let backup = lab
        .command()
        .args(["backup", "now", "-i"])
        .arg(&inventory)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&backup, "backup now through sudo");
    let drill = lab
        .command()
        .args(["backup", "verify", "--lab", "-i"])
        .arg(&inventory)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&drill, "a restore drill of the copy behind the bastion");
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
    let hosts = [("11", PUBLIC), ("12", PUBLIC), ("21", PRIVATE), ("31", PRIVATE), ("41", PRIVATE)];
    for host in hosts.map(|(number, network)| format!("{network}{number}")) {
        let logs = lab.admin_ssh_ok(
            &host,
            host.starts_with(PRIVATE),
            "sudo -n journalctl --no-pager -q; sudo -n cat /var/log/auth.log 2>/dev/null || true",
        );
        assert!(logs.contains("COMMAND=/usr/bin/env 'SSH_CONNECTION="), "sudo's log of {host} is not read");
        assert_no_password(&format!("the journal of {host}"), &logs);
    }
}
