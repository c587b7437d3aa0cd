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

mod apply;
mod backup;
mod bench;
mod cloud;
mod harness;
mod isolation;
mod lock;
mod operate;
mod plan;
mod releases;
#[path = "../support/git.rs"]
mod support;

use apply::*;
use backup::*;
use cloud::*;
use isolation::*;
use lock::*;
use operate::*;
use plan::*;
use releases::*;

const LAB_NAME: &str = "infratest";

/// The Debian release the labs of this run boot (`lab up --release`):
/// the harness runs the whole suite once per supported release.
static RELEASE: std::sync::Mutex<&str> = std::sync::Mutex::new("trixie");

fn release() -> &'static str {
    *RELEASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes the labs booted from now on run `name`.
fn set_release(name: &'static str) {
    *RELEASE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = name;
}

/// The suite runs on its own harness (tests/lab/harness.rs): one lab per
/// release shared by its scenarios, any of which can be run alone.
fn main() -> std::process::ExitCode {
    harness::main()
}
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
    /// The lab's name (INFRA_LAB_NAME): its bridge and namespaces carry it.
    name: &'static str,
    /// The inventory's virtual IP.
    vip: String,
    state: tempfile::TempDir,
    inventory: PathBuf,
}

impl Lab {
    /// The MAC address of the lab's bridge: the gateway every host talks to.
    fn bridge_mac(&self) -> String {
        let path = format!("/sys/class/net/{}0/address", self.name);
        std::fs::read_to_string(&path).expect("the lab's bridge").trim().to_string()
    }

    fn up() -> Lab {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/lab.yml"))
            .expect("inventories/lab.yml");
        Lab::up_with(&text.replace("10.20.0.", SUBNET_PREFIX))
    }

    /// A lab for inventory text written like inventories/lab.yml.
    fn up_with(inventory_text: &str) -> Lab {
        Lab::up_named(LAB_NAME, inventory_text)
    }

    /// A lab under its own name, so it never touches another one.
    fn up_named(name: &'static str, inventory_text: &str) -> Lab {
        let state = tempfile::Builder::new().prefix("infra-lab-test").tempdir().expect("temp dir");
        let inventory = state.path().join("inventory.yml");
        let text = inventory_text
            .replace("/var/lib/infra/lab", &state.path().display().to_string())
            .replace("../examples", &format!("{}/examples", env!("CARGO_MANIFEST_DIR")));
        std::fs::write(&inventory, text).expect("write inventory");
        let vip = inventory_text
            .split("virtual_ip: ")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("the inventory has a virtual IP")
            .to_string();
        let lab = Lab { name, vip, state, inventory };
        // A run that was killed outright (no Drop) may have left its lab up.
        assert_success(&lab.infra(&["lab", "down"], None), "lab down of leftovers");
        let started = Instant::now();
        let output = lab.infra(&["lab", "up", "--release", release(), "-i"], Some(&lab.inventory));
        assert_success(&output, "lab up");
        eprintln!("lab up took {:.1} s:\n{}", started.elapsed().as_secs_f64(), String::from_utf8_lossy(&output.stderr));
        lab
    }

    fn command(&self) -> Command {
        let mut command = Command::cargo_bin("infra").expect("infra is built");
        command
            .env("INFRA_LAB_NAME", self.name)
            .env("INFRA_LAB_STATE", self.state.path())
            .env("INFRA_ALLOW_PATHS", ALLOWED_PATHS)
            .env("NO_COLOR", "1");
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
/// Quotes, a dollar and a backslash prove the quoting filters on real
/// services (the app must still log in), and a secret escaped in a file is
/// as secret as a raw one: see [`traces`].
const DB_PASSWORD: &str = "Lk7q'Zp4v\"Wm9x$Xr2b\\";
const OTHER_DB_PASSWORD: &str = "An8r'Dc3y\"Pw5q$Tn6s\\";

/// What any written form of a password holds, raw or escaped: its runs of
/// letters and digits (chosen to occur nowhere else).
fn traces(password: &str) -> Vec<&str> {
    password.split(|c: char| !c.is_ascii_alphanumeric()).filter(|run| run.len() >= 4).collect()
}

/// Fails when `text` holds any trace of a password or the VRRP secret.
fn assert_no_password(what: &str, text: &str) {
    for trace in traces(DB_PASSWORD).into_iter().chain(traces(OTHER_DB_PASSWORD)).chain([VRRP_SECRET]) {
        assert!(!text.contains(trace), "{what} holds a secret value");
    }
}

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

    /// `infra diagram --live` of the lab as Mermaid text.
    fn live_diagram(&self) -> String {
        let output = self
            .command()
            .args(["diagram", "--live", "--format", "mermaid", "--connect-timeout", "2", "-i"])
            .arg(&self.inventory)
            .env("INFRA_VRRP_SECRET", VRRP_SECRET)
            .env("INFRA_DB_PASSWORD", DB_PASSWORD)
            .output()
            .expect("infra runs");
        assert_success(&output, "diagram --live");
        String::from_utf8_lossy(&output.stdout).into_owned()
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

fn every_host_runs_the_release_it_was_booted_with(lab: &Lab) {
    for host in HOSTS {
        let codename = lab.ssh_ok(&address(host), ". /etc/os-release && echo $VERSION_CODENAME");
        assert_eq!(codename.trim(), release(), "{host}");
    }
    let status = String::from_utf8_lossy(&lab.infra(&["lab", "status"], None).stdout).into_owned();
    assert_eq!(status.matches(&format!("({})", release())).count(), HOSTS.len(), "{status}");
}

/// How people upgrade: some hosts on trixie, the rest still on bookworm
/// (a balancer and an app server moved first). The stack converges and the
/// virtual IP serves the app, which talks to MariaDB across the releases.
fn a_mixed_bookworm_and_trixie_fleet_converges_and_serves() {
    let text = std::fs::read_to_string(lab_inventory()).expect("lab inventory");
    let mut mixed = text.replace("10.20.0.", SUBNET_PREFIX);
    for host in ["lb-02", "app-01"] {
        let entry = format!("  - name: {host}\n");
        assert!(mixed.contains(&entry), "the lab inventory lists {host} as `- name: {host}`");
        mixed = mixed.replace(&entry, &format!("{entry}    lab: {{release: trixie}}\n"));
    }
    set_release("bookworm");
    let lab = Lab::up_with(&mixed);
    for (host, expected) in [("lb-01", "bookworm"), ("lb-02", "trixie"), ("app-01", "trixie"), ("db-01", "bookworm")] {
        let codename = lab.ssh_ok(&address(host), ". /etc/os-release && echo $VERSION_CODENAME");
        assert_eq!(codename.trim(), expected, "{host}");
    }
    let plan = lab.plan(&lab.inventory, &["--no-progress"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("Debian 13 (trixie)") && text.contains("Debian 12 (bookworm)"), "{text}");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply of the mixed fleet");
    let first = counter_at(&lab.vip);
    let second = counter_at(&lab.vip);
    assert!(second > first, "the counter must go up through the virtual IP: {first} then {second}");
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
    // apply installed keepalived and HAProxy on both balancers from the inventory.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(holds_vip(lab, "lb-01") && pings(VIP)) {
        assert!(Instant::now() < deadline, "lb-01 (priority 150) never took the virtual IP");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!holds_vip(lab, "lb-02"), "both load balancers hold the virtual IP");
    let before = lab.live_diagram();
    assert!(before.contains("class host_lb_01 holder") && !before.contains("class host_lb_02 holder"), "{before}");
    assert!(before.contains("vip ==>|\"holds it now, priority 150\"| host_lb_01"), "{before}");

    assert_success(&lab.infra(&["lab", "stop", "lb-01"], None), "lab stop lb-01");
    let stopped = Instant::now();
    while !(pings(VIP) && holds_vip(lab, "lb-02") && http_get(VIP, "/").is_ok_and(|(status, _)| status == 200)) {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the virtual IP did not answer from lb-02 within 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("virtual IP answered from lb-02 {:.1} s after lb-01 stopped", stopped.elapsed().as_secs_f64());
    let after = lab.live_diagram();
    assert!(after.contains("class host_lb_02 holder") && after.contains("class host_lb_01 unreachable"), "{after}");
    assert!(after.contains("vip ==>|\"holds it now, priority 100\"| host_lb_02"), "{after}");
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
/// The lab's inventories live in the lab's state and name this checkout's
/// examples, and `inventories/lab.yml` names the default lab state: what an
/// operator would allow with `INFRA_ALLOW_PATHS`.
const ALLOWED_PATHS: &str = concat!(env!("CARGO_MANIFEST_DIR"), ":/var/lib/infra/lab");

/// failed and created nothing.
fn refused_lab_up(inventory: &Path, prepare: impl FnOnce(&mut Command)) -> String {
    let state = tempfile::tempdir().expect("temp dir");
    let mut command = Command::cargo_bin("infra").expect("infra is built");
    command
        .env("INFRA_LAB_NAME", "infrarefuse")
        .env("INFRA_LAB_STATE", state.path())
        .env("INFRA_ALLOW_PATHS", ALLOWED_PATHS)
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

fn lab_refuses_without_its_tools_and_names_the_package() {
    if !lab_available("lab_refuses_without_its_tools_and_names_the_package") {
        return;
    }
    let empty = tempfile::tempdir().expect("temp dir");
    let stderr = refused_lab_up(&lab_inventory(), |command| {
        command.env("PATH", empty.path());
    });
    assert!(
        stderr.contains("cannot install them itself (there is no `apt-get` on this machine); install the Debian packages with `apt-get install iproute2 debootstrap systemd-container openssh-client mount curl python3-pip`"),
        "{stderr}"
    );
}

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
