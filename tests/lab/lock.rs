//! One apply at a time (issue 13): two applies started together never both
//! change hosts, a held lock refuses at once naming its holder or is waited
//! for with `--lock-timeout`, `infra lock status` shows holders and
//! `infra lock break` is the way out of a hung one. And hosts with several
//! roles converge in the stage of their earliest role.

use std::process::Stdio;

use super::*;

/// Both applies start at the same moment with different load balancer
/// settings: exactly one changes the hosts, the other refuses naming the
/// holder, and both balancers end with the same configuration.
pub(crate) fn two_simultaneous_applies_never_both_change_hosts(lab: &Lab) {
    let leastconn = lab.inventory_with("race-leastconn.yml", "balance: roundrobin", "balance: leastconn");
    let source = lab.inventory_with("race-source.yml", "balance: roundrobin", "balance: source");
    let spawn = |inventory: &Path| {
        lab.apply_command(inventory, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("infra runs")
    };
    let (first, second) = (spawn(&leastconn), spawn(&source));
    let outputs = [first.wait_with_output().expect("first ends"), second.wait_with_output().expect("second ends")];
    let succeeded: Vec<usize> = (0..2).filter(|&index| outputs[index].status.success()).collect();
    assert_eq!(
        succeeded.len(),
        1,
        "exactly one apply may change hosts:\n{}\n{}",
        stderr(&outputs[0]),
        stderr(&outputs[1])
    );
    let (winner, loser) = (succeeded[0], 1 - succeeded[0]);
    let refused = stderr(&outputs[loser]);
    assert_eq!(outputs[loser].status.code(), Some(1), "{refused}");
    assert!(refused.contains("is locked by another run: `apply` by"), "{refused}");
    assert!(refused.contains(&format!("inventory `{}`", [&leastconn, &source][winner].display())), "{refused}");
    assert!(refused.contains("hint: wait for the other run"), "{refused}");
    let expected = ["balance leastconn", "balance source"][winner];
    let configs: Vec<String> =
        ["lb-01", "lb-02"].iter().map(|host| lab.ssh_ok(&address(host), "cat /etc/haproxy/haproxy.cfg")).collect();
    assert_eq!(configs[0], configs[1], "the balancers were left with different configurations");
    assert!(configs[0].contains(expected), "{}", configs[0]);
    assert_all_free(lab);
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to the lab inventory");
}

/// A lock held by someone else: a no-op apply refuses at once naming the
/// holder, `lock status` shows it, `--lock-timeout` waits for it, and
/// `lock break` ends a holder that would hold forever.
pub(crate) fn a_held_lock_refuses_waits_and_breaks(lab: &Lab) {
    let mut holder = hold_lock(lab, "lb-02", 4);
    let started = Instant::now();
    let refused = lab.apply(&lab.inventory, &[]);
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{text}");
    assert!(text.contains("host `lb-02` is locked by another run: `apply` by tester@lab"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3), "the refusal took {:?}", started.elapsed());
    let status = lab.infra(&["lock", "status", "-i"], Some(&lab.inventory));
    let listing = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        listing.lines().any(|line| line.starts_with("lb-02") && line.contains("held: `apply` by tester@lab")),
        "{listing}"
    );
    assert!(listing.lines().any(|line| line.starts_with("lb-01") && line.ends_with("free")), "{listing}");
    let started = Instant::now();
    let waited = lab.apply(&lab.inventory, &["--lock-timeout", "20"]);
    assert_success(&waited, "apply --lock-timeout 20 while another holder ends");
    assert!(started.elapsed() >= Duration::from_secs(2), "apply did not wait for the holder");
    holder.wait().expect("the holder ended");

    let mut forever = hold_lock(lab, "lb-02", 600);
    let broken = lab.infra(&["lock", "break", "lb-02", "-i"], Some(&lab.inventory));
    assert_success(&broken, "lock break lb-02");
    assert!(stderr(&broken).contains("lb-02: lock broken"), "{}", stderr(&broken));
    let _ = forever.wait();
    assert_all_free(lab);
}

/// Holds `host`'s lock from a plain ssh session for `seconds`, with a
/// holder file as infra writes it; returns once the lock is held.
fn hold_lock(lab: &Lab, host: &str, seconds: u32) -> std::process::Child {
    let script = format!(
        "mkdir -p /run/infra; exec 9>>/run/infra/lock; flock 9; \
         printf 'who=tester@lab\\nfrom=test\\nsince=now\\ninventory=x.yml\\ncommand=apply\\npid=%s\\n' $$ > /run/infra/lock.holder; \
         echo held; exec sleep {seconds}"
    );
    let mut child = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-i"])
        .arg(lab.state.path().join("id_ed25519"))
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", lab.state.path().join("known_hosts").display()))
        .arg(format!("root@{}", address(host)))
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ssh runs");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("read");
    assert_eq!(line.trim(), "held");
    child
}

fn assert_all_free(lab: &Lab) {
    let status = lab.infra(&["lock", "status", "-i"], Some(&lab.inventory));
    assert_success(&status, "lock status");
    let listing = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(listing.lines().filter(|line| line.ends_with(" free")).count(), HOSTS.len(), "{listing}");
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A lab whose app tier shares hosts with the web tier and the database:
/// each host converges in the stage of its earliest role (database before
/// app before web), shown by `stages`, the plan and apply alike, and the
/// stack serves through the virtual IP.
pub(crate) fn multi_role_hosts_converge_in_stage_order() {
    let template = std::fs::read_to_string(lab_inventory()).expect("lab inventory");
    let (head, rest) = template.split_once("hosts:\n").expect("hosts section");
    let settings = &rest[rest.find("\nload_balancer:").expect("settings")..];
    let hosts = "  - {name: lb-01, address: 10.70.0.11, roles: [load_balancer], vrrp: {priority: 150}}\n\
                 \x20 - {name: lb-02, address: 10.70.0.12, roles: [load_balancer], vrrp: {priority: 100}}\n\
                 \x20 - {name: app-web, address: 10.70.0.21, roles: [web, app]}\n\
                 \x20 - {name: app-db, address: 10.70.0.41, roles: [app, database]}\n";
    // The lab's backups go to web-01; here every web host is an app host,
    // which holds the password backups are sealed with, so they go to lb-02.
    let settings = settings.replace("10.20.0.", "10.70.0.").replace("{host: web-01,", "{host: lb-02,");
    let text = format!("{head}hosts:\n{hosts}{settings}");
    let lab = Lab::up_named("infraroles", &text);
    let stages = lab.infra(&["stages", "--format", "json", "-i"], Some(&lab.inventory));
    assert_success(&stages, "stages");
    let stages: serde_json::Value = serde_json::from_slice(&stages.stdout).expect("stages JSON");
    let stage_of = |host: &str| {
        stages["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .find(|stage| stage["hosts"].as_array().is_some_and(|hosts| hosts.iter().any(|name| name == host)))
            .and_then(|stage| stage["role"].as_str())
            .map(String::from)
    };
    assert_eq!(stage_of("app-db").as_deref(), Some("database"));
    assert_eq!(stage_of("app-web").as_deref(), Some("app"));
    let plan = plan_json(&lab.plan(&lab.inventory, &["--format", "json"]));
    for host in plan["hosts"].as_array().expect("hosts") {
        assert_eq!(host["stage"].as_str(), stage_of(host["host"].as_str().expect("name")).as_deref(), "{host}");
    }
    let output = lab.apply(&lab.inventory, &[]);
    assert_success(&output, "apply of the multi-role stack");
    let log = stderr(&output);
    let position = |text: &str| log.find(text).unwrap_or_else(|| panic!("no `{text}` in:\n{log}"));
    assert!(position("stage database: app-db") < position("stage app: app-web"), "{log}");
    assert!(position("stage app: app-web") < position("stage load_balancer"), "{log}");
    let (status, body) = super::apply::http_get(&lab.vip, "/").expect("the virtual IP answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.plan(&lab.inventory, &["--detailed-exitcode"]).status.code(), Some(0), "converged");
}
