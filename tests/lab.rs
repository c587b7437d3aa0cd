//! End-to-end tests of `infra lab` on real hosts: one lab per run (its own
//! name, state directory and subnet, so a user's lab is never touched),
//! always taken down, also when a test fails.
//!
//! The lab needs root, debootstrap, systemd-nspawn and ip. Where they are
//! missing the tests say so and pass; with `INFRA_REQUIRE_LAB=1` (set by
//! `.ci/run`) a missing prerequisite is a failure instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

const LAB_NAME: &str = "infratest";
const SUBNET_PREFIX: &str = "10.66.0.";
const VIP: &str = "10.66.0.10";

fn lab_prerequisites() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Err("not running as root".into());
    }
    for program in ["debootstrap", "systemd-nspawn", "ip", "ping"] {
        if !["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|directory| Path::new(directory).join(program).exists())
        {
            return Err(format!("`{program}` is not installed"));
        }
    }
    Ok(())
}

/// Skips (visibly) or fails, per `INFRA_REQUIRE_LAB`, when the lab cannot run.
fn lab_available(test: &str) -> bool {
    match lab_prerequisites() {
        Ok(()) => true,
        Err(reason) if std::env::var_os("INFRA_REQUIRE_LAB").is_some() => {
            panic!("{test}: the lab is required here (INFRA_REQUIRE_LAB) but {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}; the lab tests need root, debootstrap, systemd-nspawn, ip and ping");
            false
        }
    }
}

/// A lab brought up for one test run and taken down when dropped.
struct Lab {
    state: tempfile::TempDir,
    inventory: PathBuf,
}

impl Lab {
    fn up() -> Lab {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yml"))
            .expect("inventories/lab.yml");
        Lab::up_with(&text.replace("10.20.0.", SUBNET_PREFIX))
    }

    /// A lab for inventory text written like inventories/lab.yml.
    fn up_with(inventory_text: &str) -> Lab {
        let state = tempfile::Builder::new().prefix("infra-lab-test").tempdir().expect("temp dir");
        let inventory = state.path().join("inventory.yml");
        let text = inventory_text
            .replace("/var/lib/infra/lab", &state.path().display().to_string())
            .replace("../examples", &format!("{}/examples", env!("CARGO_MANIFEST_DIR")));
        std::fs::write(&inventory, text).expect("write inventory");
        let lab = Lab { state, inventory };
        // A run that was killed outright (no Drop) may have left its lab up.
        assert_success(&lab.infra(&["lab", "down"], None), "lab down of leftovers");
        let started = Instant::now();
        let output = lab.infra(&["lab", "up", "-i"], Some(&lab.inventory));
        assert_success(&output, "lab up");
        eprintln!("lab up took {:.1} s:\n{}", started.elapsed().as_secs_f64(), String::from_utf8_lossy(&output.stderr));
        lab
    }

    fn command(&self) -> Command {
        let mut command = Command::cargo_bin("infra").expect("infra is built");
        command.env("INFRA_LAB_NAME", LAB_NAME).env("INFRA_LAB_STATE", self.state.path()).env("NO_COLOR", "1");
        command
    }

    fn infra(&self, args: &[&str], path: Option<&Path>) -> Output {
        let mut command = self.command();
        command.args(args);
        if let Some(path) = path {
            command.arg(path);
        }
        command.output().expect("infra runs")
    }

    /// Runs a shell command on a lab host over SSH with strict host keys.
    fn ssh(&self, address: &str, script: &str) -> Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "-i"])
            .arg(self.state.path().join("id_ed25519"))
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.state.path().join("known_hosts").display()))
            .arg(format!("root@{address}"))
            .arg(script)
            .output()
            .expect("ssh runs")
    }

    fn ssh_ok(&self, address: &str, script: &str) -> String {
        let output = self.ssh(address, script);
        assert_success(&output, &format!("ssh {address} {script}"));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let output = self.infra(&["lab", "down"], None);
        if !output.status.success() {
            eprintln!("lab down failed while cleaning up: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn address(host: &str) -> String {
    let last = match host {
        "lb-01" => 11,
        "lb-02" => 12,
        "web-01" => 21,
        "app-01" => 31,
        _ => 41,
    };
    format!("{SUBNET_PREFIX}{last}")
}

const HOSTS: [&str; 5] = ["lb-01", "lb-02", "web-01", "app-01", "db-01"];
const VRRP_SECRET: &str = "lab-vrrp";
const DB_PASSWORD: &str = "lab-db-password";

impl Lab {
    /// `infra plan` on `inventory` with the lab's secrets.
    fn plan(&self, inventory: &Path, args: &[&str]) -> Output {
        self.command()
            .args(["plan", "-i"])
            .arg(inventory)
            .args(args)
            .env("INFRA_VRRP_SECRET", VRRP_SECRET)
            .env("INFRA_DB_PASSWORD", DB_PASSWORD)
            .output()
            .expect("infra runs")
    }

    /// A copy of the lab inventory with one text replaced.
    fn inventory_with(&self, name: &str, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.inventory).expect("inventory");
        assert!(text.contains(from), "the lab inventory has no `{from}`");
        let path = self.state.path().join(name);
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        path
    }
}

fn plan_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("plan JSON: {error}: {}", String::from_utf8_lossy(&output.stderr)))
}

fn plan_on_fresh_hosts_lists_everything_in_stage_order(lab: &Lab) {
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(2), "fresh hosts have changes: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for package in ["mariadb-server", "gunicorn", "python3-flask", "python3-pymysql", "nginx", "haproxy", "keepalived"]
    {
        assert!(text.contains(&format!("+ install {package}")), "{package} missing from:\n{text}");
    }
    for service in ["mariadb", "infra-app", "nginx", "haproxy", "keepalived"] {
        assert!(text.contains(&format!("start {service}")), "{service} missing from:\n{text}");
    }
    for file in [
        "/etc/haproxy/haproxy.cfg",
        "/etc/keepalived/keepalived.conf",
        "/etc/nginx/nginx.conf",
        "/etc/infra/gunicorn.conf.py",
        "/etc/infra/database.sql",
    ] {
        assert!(text.contains(&format!("+ create {file}")), "{file} missing from:\n{text}");
    }
    let stages: Vec<usize> = ["stage: database", "stage: app", "stage: web", "stage: load_balancer"]
        .iter()
        .map(|stage| text.find(stage).unwrap_or_else(|| panic!("no `{stage}` in:\n{text}")))
        .collect();
    assert!(stages.windows(2).all(|pair| pair[0] < pair[1]), "stages out of order:\n{text}");
    assert!(text.contains("(sensitive content changed)") && !text.contains(DB_PASSWORD) && !text.contains(VRRP_SECRET));
    let json = plan_json(&lab.plan(&lab.inventory, &["--format", "json"]));
    let hosts: Vec<&str> =
        json["hosts"].as_array().expect("hosts").iter().map(|host| host["host"].as_str().expect("name")).collect();
    assert_eq!(hosts, ["db-01", "app-01", "web-01", "lb-01", "lb-02"]);
}

/// Makes the lab match the plan without `apply` (the next milestone):
/// install the packages, write the rendered files with their modes and
/// owners, run the hooks, enable and restart the services.
fn converge_by_hand(lab: &Lab) {
    converge_hosts_by_hand(lab, &HOSTS.map(|host| (host.to_string(), address(host))));
}

fn converge_hosts_by_hand(lab: &Lab, hosts: &[(String, String)]) {
    let rendered = lab.state.path().join("converge");
    let output = lab
        .command()
        .args(["render", "-i"])
        .arg(&lab.inventory)
        .arg("--out")
        .arg(&rendered)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&output, "render");
    std::thread::scope(|scope| {
        for (host, host_address) in hosts {
            let rendered = &rendered;
            scope.spawn(move || converge_one(lab, rendered, host, host_address));
        }
    });
}

fn converge_one(lab: &Lab, rendered: &Path, host: &str, host_address: &str) {
    {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(rendered.join(host).join("host.json")).expect("manifest"))
                .expect("json");
        let list = |key: &str| -> Vec<String> {
            manifest[key]
                .as_array()
                .expect("list")
                .iter()
                .map(|item| {
                    item.as_str().map(String::from).unwrap_or_else(|| item["name"].as_str().expect("name").to_string())
                })
                .collect()
        };
        let mut script = format!(
            "set -e\nexport DEBIAN_FRONTEND=noninteractive\napt-get install -y -qq {} >/dev/null\n",
            list("packages").join(" ")
        );
        for file in manifest["files"].as_array().expect("files") {
            let path = file["path"].as_str().expect("path");
            let content = std::fs::read(rendered.join(host).join(path.trim_start_matches('/'))).expect("rendered file");
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(content);
            script.push_str(&format!(
                "mkdir -p \"$(dirname {path})\"\necho {encoded} | base64 -d > {path}\nchmod {:o} {path}\nchown {}:{} {path}\n",
                file["mode"].as_u64().expect("mode"),
                file["owner"].as_str().expect("owner"),
                file["group"].as_str().expect("group"),
            ));
        }
        script.push_str("systemctl daemon-reload\n");
        for hook in manifest["hooks"].as_array().expect("hooks") {
            script.push_str(&format!("systemctl restart mariadb\n{}\n", hook["command"].as_str().expect("command")));
        }
        for service in list("services") {
            script.push_str(&format!("systemctl enable -q {service}\nsystemctl restart {service}\n"));
        }
        let mut child = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-i"])
            .arg(lab.state.path().join("id_ed25519"))
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", lab.state.path().join("known_hosts").display()))
            .arg(format!("root@{host_address}"))
            .args(["sh", "-s"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ssh runs");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script sent");
        assert_success(&child.wait_with_output().expect("ssh finishes"), &format!("converging {host}"));
    }
}

fn managed_state(lab: &Lab) -> String {
    let mut state = String::new();
    for host in HOSTS {
        state.push_str(&lab.ssh_ok(
            &address(host),
            "stat -c '%n %Y %a' /etc/haproxy/haproxy.cfg /etc/nginx/nginx.conf /etc/infra/* /etc/keepalived/keepalived.conf 2>/dev/null; \
             for s in mariadb infra-app nginx haproxy keepalived; do echo $s $(systemctl is-active $s) $(systemctl show -p ActiveEnterTimestampMonotonic --value $s); done",
        ));
    }
    state
}

fn plan_of_a_converged_lab_is_empty_and_touches_nothing(lab: &Lab) {
    let before = managed_state(lab);
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a converged lab has no changes:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.matches("no changes").count(), 5, "{text}");
    assert_eq!(managed_state(lab), before, "plan changed a host");
}

fn plan_of_one_changed_setting_touches_only_what_follows(lab: &Lab) {
    let changed = lab.inventory_with("leastconn.yml", "balance: roundrobin", "balance: leastconn");
    let output = lab.plan(&changed, &["--detailed-exitcode", "--format", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let json = plan_json(&output);
    for host in json["hosts"].as_array().expect("hosts") {
        let name = host["host"].as_str().expect("name");
        let files: Vec<&str> =
            host["files"].as_array().expect("files").iter().map(|file| file["path"].as_str().expect("path")).collect();
        let reloads: Vec<&str> = host["reload"]
            .as_array()
            .expect("reload")
            .iter()
            .map(|change| change["name"].as_str().expect("name"))
            .collect();
        if name.starts_with("lb-") {
            assert_eq!(files, ["/etc/haproxy/haproxy.cfg"], "{name}");
            assert_eq!(reloads, ["haproxy"], "{name}");
            assert!(
                host["restart"].as_array().expect("restart").is_empty()
                    && host["install"].as_array().expect("install").is_empty()
            );
            let diff = host["files"][0]["diff"].as_str().expect("diff");
            assert!(diff.contains("-    balance roundrobin") && diff.contains("+    balance leastconn"), "{diff}");
        } else {
            assert!(files.is_empty() && reloads.is_empty(), "{name} should not change: {host}");
        }
    }
}

fn plan_limit_and_saved_plan(lab: &Lab) {
    let json = plan_json(&lab.plan(&lab.inventory, &["--limit", "web", "--format", "json"]));
    let hosts: Vec<&str> =
        json["hosts"].as_array().expect("hosts").iter().map(|host| host["host"].as_str().expect("name")).collect();
    assert_eq!(hosts, ["web-01"]);
    let saved = lab.state.path().join("saved-plan.json");
    let fresh = lab.inventory_with("new-password.yml", "balance: roundrobin", "balance: source");
    let output = lab
        .command()
        .args(["plan", "-i"])
        .arg(&fresh)
        .arg("--out")
        .arg(&saved)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", "another-db-password")
        .output()
        .expect("infra runs");
    assert_success(&output, "plan --out");
    let text = std::fs::read_to_string(&saved).expect("saved plan");
    let plan: serde_json::Value = serde_json::from_str(&text).expect("saved plan is JSON");
    assert_eq!(plan["version"], 1);
    for host in plan["hosts"].as_array().expect("hosts") {
        assert_eq!(host["fingerprint"].as_str().expect("fingerprint").len(), 64);
    }
    for secret in [VRRP_SECRET, DB_PASSWORD, "another-db-password"] {
        assert!(!text.contains(secret), "the saved plan holds a secret value");
    }
}

/// `infra plan --limit db-01` with the lab inventory pointed at another
/// known_hosts file; returns its stderr after checking that it failed.
fn plan_db_with_known_hosts(lab: &Lab, known_hosts: &Path) -> String {
    let name = format!("{}.yml", known_hosts.file_name().expect("a file").to_string_lossy());
    let current = format!("known_hosts: {}/known_hosts", lab.state.path().display());
    let inventory = lab.inventory_with(&name, &current, &format!("known_hosts: {}", known_hosts.display()));
    let output = lab.plan(&inventory, &["--limit", "db-01"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

fn plan_refuses_unknown_and_changed_host_keys(lab: &Lab) {
    let empty = lab.state.path().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let stderr = plan_db_with_known_hosts(lab, &empty);
    assert!(
        stderr.contains(&format!(
            "the SSH host key of `db-01` ({}) is not in `{}`; the host offers ED25519 SHA256:",
            address("db-01"),
            empty.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--accept-new-host-keys"), "{stderr}");

    let other_key = lab.state.path().join("other_key");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other_key)
            .status()
            .expect("ssh-keygen")
            .success()
    );
    let public = std::fs::read_to_string(other_key.with_extension("pub")).expect("public key");
    let wrong = lab.state.path().join("wrong_known_hosts");
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(&wrong, format!("{} {}\n", address("db-01"), key.join(" "))).expect("write");
    let stderr = plan_db_with_known_hosts(lab, &wrong);
    assert!(
        stderr.contains(&format!(
            "the SSH host key of `db-01` ({}) has CHANGED: it offers ED25519 SHA256:",
            address("db-01")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("ssh-keygen -R"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&wrong).expect("known hosts").lines().count(),
        1,
        "a changed key is never written"
    );
}

fn plan_reports_unreachable_and_garbled_hosts(lab: &Lab) {
    assert_success(&lab.infra(&["lab", "cut", "web-01"], None), "lab cut web-01");
    let output = lab.plan(&lab.inventory, &["--connect-timeout", "2", "--detailed-exitcode"]);
    assert_success(&lab.infra(&["lab", "heal", "web-01"], None), "lab heal web-01");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "an unreachable host is an error:\n{stdout}{stderr}");
    assert!(stderr.contains(&format!("cannot connect to `web-01` ({})", address("web-01"))), "{stderr}");
    assert!(
        stdout.contains("db-01") && stdout.contains("lb-02") && stdout.contains("1 unreachable"),
        "the others are still planned:\n{stdout}"
    );

    // A sha256sum that answers nonsense: the host then reports a checksum
    // that is not one, and plan must say so rather than guess.
    lab.ssh_ok(
        &address("app-01"),
        "printf '#!/bin/sh\\necho garbage -\\n' > /usr/local/bin/sha256sum && chmod +x /usr/local/bin/sha256sum",
    );
    let output = lab.plan(&lab.inventory, &["--limit", "app-01"]);
    lab.ssh_ok(&address("app-01"), "rm /usr/local/bin/sha256sum");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("host `app-01` answered the facts script with an unexpected line"), "{stderr}");
}

#[test]
fn lab_end_to_end() {
    if !lab_available("lab_end_to_end") {
        return;
    }
    let lab = Lab::up();
    plan_on_fresh_hosts_lists_everything_in_stage_order(&lab);
    every_host_answers_ssh_and_systemd_runs(&lab);
    packages_install_with_no_network(&lab);
    hosts_have_no_route_out_and_dns_fails_fast(&lab);
    converge_by_hand(&lab);
    plan_of_a_converged_lab_is_empty_and_touches_nothing(&lab);
    plan_of_one_changed_setting_touches_only_what_follows(&lab);
    plan_limit_and_saved_plan(&lab);
    plan_refuses_unknown_and_changed_host_keys(&lab);
    plan_reports_unreachable_and_garbled_hosts(&lab);
    vrrp_moves_the_virtual_ip_when_the_holder_stops(&lab);
    cut_and_heal_take_a_link_down_and_up(&lab);
    down_leaves_nothing_behind_and_up_works_again(&lab);
}

fn every_host_answers_ssh_and_systemd_runs(lab: &Lab) {
    for host in HOSTS {
        let state = lab.ssh(&address(host), "systemctl is-system-running");
        let state = String::from_utf8_lossy(&state.stdout);
        assert!(state.trim() == "running" || state.trim() == "degraded", "{host}: systemd is `{}`", state.trim());
        assert_eq!(lab.ssh_ok(&address(host), "hostname").trim(), host);
    }
    let status = lab.infra(&["lab", "status"], None);
    assert_success(&status, "lab status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches("running  link up").count(), 5, "{text}");
}

fn packages_install_with_no_network(lab: &Lab) {
    let output = lab.ssh_ok(
        &address("lb-01"),
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null && haproxy -v",
    );
    assert!(output.contains("HAProxy version"), "{output}");
}

fn hosts_have_no_route_out_and_dns_fails_fast(lab: &Lab) {
    let routes = lab.ssh_ok(&address("web-01"), "ip route");
    assert!(!routes.contains("default"), "lab hosts must have no route out: {routes}");
    let started = Instant::now();
    let lookup = lab.ssh(&address("web-01"), "getent hosts example.org");
    assert!(!lookup.status.success());
    assert!(started.elapsed() < Duration::from_secs(3), "a failed lookup took {:?}", started.elapsed());
    assert!(lab.ssh_ok(&address("web-01"), "getent hosts db-01").contains(&address("db-01")));
}

fn holds_vip(lab: &Lab, host: &str) -> bool {
    lab.ssh(&address(host), "ip -br addr show dev eth0")
        .stdout
        .windows(VIP.len())
        .any(|window| window == VIP.as_bytes())
}

fn pings(address: &str) -> bool {
    Command::new("ping").args(["-c", "1", "-W", "1", address]).output().is_ok_and(|output| output.status.success())
}

fn vrrp_moves_the_virtual_ip_when_the_holder_stops(lab: &Lab) {
    let rendered = lab.state.path().join("rendered");
    let output = lab
        .command()
        .args(["render", "-i"])
        .arg(&lab.inventory)
        .arg("--out")
        .arg(&rendered)
        .env("INFRA_VRRP_SECRET", "lab-vrrp")
        .env("INFRA_DB_PASSWORD", "lab-db-password")
        .output()
        .expect("infra runs");
    assert_success(&output, "render");
    for host in ["lb-01", "lb-02"] {
        let config =
            std::fs::read_to_string(rendered.join(host).join("etc/keepalived/keepalived.conf")).expect("rendered");
        lab.ssh_ok(
            &address(host),
            &format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy keepalived >/dev/null && \
                 cat > /etc/keepalived/keepalived.conf <<'INFRA_EOF'\n{config}INFRA_EOF\n\
                 chmod 600 /etc/keepalived/keepalived.conf && systemctl restart keepalived"
            ),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(holds_vip(lab, "lb-01") && pings(VIP)) {
        assert!(Instant::now() < deadline, "lb-01 (priority 150) never took the virtual IP");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!holds_vip(lab, "lb-02"), "both load balancers hold the virtual IP");

    assert_success(&lab.infra(&["lab", "stop", "lb-01"], None), "lab stop lb-01");
    let stopped = Instant::now();
    while !(pings(VIP) && holds_vip(lab, "lb-02")) {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the virtual IP did not move to lb-02 within 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("virtual IP answered from lb-02 {:.1} s after lb-01 stopped", stopped.elapsed().as_secs_f64());
    assert_success(&lab.infra(&["lab", "start", "lb-01"], None), "lab start lb-01");
    let status = String::from_utf8_lossy(&lab.infra(&["lab", "status"], None).stdout).into_owned();
    assert!(status.lines().any(|line| line.starts_with("lb-01") && line.contains("running")), "{status}");
}

fn cut_and_heal_take_a_link_down_and_up(lab: &Lab) {
    assert_success(&lab.infra(&["lab", "cut", "web-01"], None), "lab cut");
    assert!(!pings(&address("web-01")), "web-01 still answers with its link cut");
    assert_success(&lab.infra(&["lab", "heal", "web-01"], None), "lab heal");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pings(&address("web-01")) {
        assert!(Instant::now() < deadline, "web-01 did not come back after heal");
    }
}

/// What `ip ARGS` prints.
fn ip_output(args: &[&str]) -> String {
    let output = Command::new("ip").args(args).output().expect("ip runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Everything the lab made, by its names: namespaces, links, mounts, processes.
fn lab_leftovers(lab: &Lab) -> Vec<String> {
    let mut found = Vec::new();
    let netns = ip_output(&["netns", "list"]);
    found.extend(
        netns.lines().filter(|line| line.starts_with(&format!("{LAB_NAME}-"))).map(|line| format!("netns {line}")),
    );
    let links = ip_output(&["-br", "link"]);
    found.extend(
        links.lines().filter(|line| line.starts_with(&format!("{LAB_NAME}0"))).map(|line| format!("link {line}")),
    );
    let state = lab.state.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    found.extend(mounts.lines().filter(|line| line.contains(&state)).map(|line| format!("mount {line}")));
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&state) && String::from_utf8_lossy(&cmdline).contains("nspawn") {
            found.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn down_leaves_nothing_behind_and_up_works_again(lab: &Lab) {
    assert_success(&lab.infra(&["lab", "down"], None), "lab down");
    assert_eq!(lab_leftovers(lab), Vec::<String>::new(), "lab down left these behind");
    let started = Instant::now();
    assert_success(&lab.infra(&["lab", "up", "-i"], Some(&lab.inventory)), "lab up after down");
    eprintln!("warm lab up took {:.1} s", started.elapsed().as_secs_f64());
    assert!(lab.ssh_ok(&address("db-01"), "hostname").contains("db-01"));
}

/// Runs `infra lab up` for the lab inventory under a separate lab name, with
/// `prepare` adjusting the command; returns its stderr after checking that it
/// failed and created nothing.
fn refused_lab_up(inventory: &Path, prepare: impl FnOnce(&mut Command)) -> String {
    let state = tempfile::tempdir().expect("temp dir");
    let mut command = Command::cargo_bin("infra").expect("infra is built");
    command
        .env("INFRA_LAB_NAME", "infrarefuse")
        .env("INFRA_LAB_STATE", state.path())
        .args(["lab", "up", "-i"])
        .arg(inventory);
    prepare(&mut command);
    let output = command.output().expect("infra runs");
    assert_eq!(output.status.code(), Some(1), "lab up should refuse");
    let netns = ip_output(&["netns", "list"]);
    assert!(!netns.contains("infrarefuse-"), "a refused lab up created namespaces: {netns}");
    assert!(!state.path().join("hosts").exists(), "a refused lab up created hosts");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lab_inventory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yml")
}

#[test]
fn lab_refuses_without_root() {
    if !lab_available("lab_refuses_without_root") {
        return;
    }
    let stderr = refused_lab_up(&lab_inventory(), |command| {
        let program = command.get_program().to_owned();
        let arguments: Vec<_> = command.get_args().map(|argument| argument.to_owned()).collect();
        *command = {
            let mut wrapped = Command::new("setpriv");
            wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(program).args(arguments);
            for (key, value) in command.get_envs() {
                if let Some(value) = value {
                    wrapped.env(key, value);
                }
            }
            wrapped
        };
    });
    assert!(
        stderr.contains(
            "the lab needs root (it creates network namespaces, mounts and containers); run it with sudo or as root"
        ),
        "{stderr}"
    );
}

#[test]
fn lab_refuses_without_its_tools_and_names_the_package() {
    if !lab_available("lab_refuses_without_its_tools_and_names_the_package") {
        return;
    }
    let empty = tempfile::tempdir().expect("temp dir");
    let stderr = refused_lab_up(&lab_inventory(), |command| {
        command.env("PATH", empty.path());
    });
    assert!(
        stderr.contains("the lab needs `ip`, which is not installed; install the Debian package `iproute2` (`apt-get install iproute2`)"),
        "{stderr}"
    );
}

#[test]
fn lab_refuses_a_subnet_this_machine_routes() {
    if !lab_available("lab_refuses_a_subnet_this_machine_routes") {
        return;
    }
    let dummy = "infrarefd0"; // a bridge owns the route: every kernel has them
    let ip = |args: &[&str]| Command::new("ip").args(args).output().expect("ip runs");
    let _ = ip(&["link", "del", dummy]);
    assert!(ip(&["link", "add", dummy, "type", "bridge"]).status.success());
    ip(&["addr", "add", "10.67.0.1/24", "dev", dummy]);
    ip(&["link", "set", dummy, "up"]);
    let directory = tempfile::tempdir().expect("temp dir");
    let inventory = directory.path().join("inventory.yml");
    let text = std::fs::read_to_string(lab_inventory())
        .expect("lab inventory")
        .replace("10.20.0.", "10.67.0.")
        .replace("../examples", &format!("{}/examples", env!("CARGO_MANIFEST_DIR")));
    std::fs::write(&inventory, text).expect("write");
    let stderr = refused_lab_up(&inventory, |_| {});
    ip(&["link", "del", dummy]);
    assert!(
        stderr.contains("the lab subnet 10.67.0.0/24 overlaps this machine's route to 10.67.0.0/24 on `infrarefd0`; choose inventory addresses in a subnet this machine does not use"),
        "{stderr}"
    );
}

/// An inventory of `count` lab hosts on 10.69.0.0/24: two load balancers,
/// one database, the rest split between web and app.
fn bench_inventory(count: usize) -> (String, Vec<(String, String)>) {
    let mut hosts = vec![
        ("lb-01".to_string(), 11, "load_balancer"),
        ("lb-02".to_string(), 12, "load_balancer"),
        ("db-01".to_string(), 13, "database"),
    ];
    for index in 0..count.saturating_sub(3) {
        let role = if index % 2 == 0 { "web" } else { "app" };
        hosts.push((format!("{role}-{index:02}"), 20 + index, role));
    }
    let template = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yml"))
        .expect("lab inventory");
    let (head, rest) = template.split_once("hosts:\n").expect("hosts section");
    let settings = &rest[rest.find("\nload_balancer:").expect("settings")..];
    let mut text = format!("{head}hosts:\n");
    for (name, last, role) in &hosts {
        text.push_str(&format!("  - {{name: {name}, address: 10.69.0.{last}, roles: [{role}]}}\n"));
    }
    text.push_str(&settings.replace("10.20.0.10/24", "10.69.0.10/24"));
    (text, hosts.into_iter().map(|(name, last, _)| (name, format!("10.69.0.{last}"))).collect())
}

/// The physical floor: a fresh SSH connection to every host in parallel, running `true`.
fn ssh_floor(lab: &Lab, hosts: &[(String, String)]) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (_, address) in hosts {
            scope.spawn(move || {
                let output = lab.ssh(address, "true");
                assert_success(&output, "ssh true");
            });
        }
    });
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `bash bench/plan-vs-ssh.sh`: a no-op plan against the physical floor,
/// for 5 and for 50 lab hosts, measured in one run. Prints ratios.
#[test]
#[ignore = "a benchmark: run it with bench/plan-vs-ssh.sh"]
fn bench_plan_against_the_ssh_floor() {
    if !lab_available("bench_plan_against_the_ssh_floor") {
        return;
    }
    let rounds = 7;
    for count in [5, 50] {
        let (text, hosts) = bench_inventory(count);
        let lab = Lab::up_with(&text);
        converge_hosts_by_hand(&lab, &hosts);
        let warm = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
        assert_eq!(
            warm.status.code(),
            Some(0),
            "the bench needs a no-op plan:\n{}",
            String::from_utf8_lossy(&warm.stdout)
        );
        let (mut floors, mut plans) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            floors.push(ssh_floor(&lab, &hosts));
            let started = Instant::now();
            let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
            plans.push(started.elapsed());
            assert_eq!(output.status.code(), Some(0));
        }
        let (floor, plan) = (median(floors), median(plans));
        println!(
            "BENCH {count} hosts: ssh floor (fresh parallel `ssh host true`) median {:.0} ms, no-op plan median {:.0} ms, ratio {:.2} (goal <= 1.5)",
            floor.as_secs_f64() * 1000.0,
            plan.as_secs_f64() * 1000.0,
            plan.as_secs_f64() / floor.as_secs_f64()
        );
        drop(lab);
    }
}
