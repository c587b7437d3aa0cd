//! Plan against real lab hosts: fresh, converged, one change, limits,
//! saved plans, host keys, unreachable and garbled hosts.

use super::*;

pub(crate) fn plan_on_fresh_hosts_lists_everything_in_stage_order(lab: &Lab) {
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
    assert!(text.contains("(sensitive content changed)"), "{text}");
    assert_no_password("the first plan", &text);
    let json = plan_json(&lab.plan(&lab.inventory, &["--format", "json"]));
    let hosts: Vec<&str> =
        json["hosts"].as_array().expect("hosts").iter().map(|host| host["host"].as_str().expect("name")).collect();
    assert_eq!(hosts, ["db-01", "app-01", "web-01", "lb-01", "lb-02"]);
}

pub(crate) fn managed_state(lab: &Lab) -> String {
    let mut state = String::new();
    for host in HOSTS {
        state.push_str(&lab.ssh_ok(
            &address(host),
            "files='/etc/haproxy/haproxy.cfg /etc/nginx/nginx.conf /etc/nginx/sites-enabled/infra.conf /etc/infra/* /etc/keepalived/keepalived.conf /etc/mysql/mariadb.conf.d/60-infra.cnf /etc/systemd/system/infra-app.service'; \
             for f in $files; do [ -f $f ] && echo \"$f $(stat -c '%Y %a %U:%G' $f) $(sha256sum < $f | cut -c1-16)\"; done; \
             ls -a /etc/haproxy /etc/nginx/sites-enabled | grep infra- || true; \
             for s in mariadb infra-app nginx haproxy keepalived; do echo $s $(systemctl is-active $s) $(systemctl show -p ActiveEnterTimestampMonotonic --value $s); done",
        ));
    }
    state
}

pub(crate) fn plan_of_a_converged_lab_is_empty_and_touches_nothing(lab: &Lab) {
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

/// Issue 28: a converged host proves its managed files unchanged with one
/// digest; a file edited by hand to the same size, and a package removed by
/// hand, are still in the next plan, with the diff. Apply puts both back.
pub(crate) fn plan_sees_a_hand_edit_and_a_removed_package_after_the_fast_path(lab: &Lab) {
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode", "-vv"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let proved = stderr(&output).lines().filter(|line| line.contains("proved unchanged by one digest")).count();
    assert_eq!(proved, 5, "every converged host answers with the digest:\n{}", stderr(&output));
    lab.ssh_ok(&address("web-01"), "sed -i '1s/^./X/' /var/www/infra/index.html");
    lab.ssh_ok(&address("app-01"), "dpkg -r python3-pymysql >/dev/null");
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode", "--format", "json"]);
    assert_eq!(output.status.code(), Some(2), "the hand changes are seen: {}", stderr(&output));
    let json = plan_json(&output);
    let host = |name: &str| {
        json["hosts"].as_array().expect("hosts").iter().find(|host| host["host"] == name).cloned().expect("host")
    };
    let web = host("web-01");
    assert_eq!(web["files"][0]["path"], "/var/www/infra/index.html", "{web}");
    assert!(web["files"][0]["diff"].as_str().is_some_and(|diff| diff.contains("-X")), "{web}");
    let app = host("app-01");
    assert!(app["install"].as_array().expect("install").iter().any(|package| package == "python3-pymysql"), "{app}");
    for untouched in ["db-01", "lb-01", "lb-02"] {
        let host = host(untouched);
        assert!(host["files"].as_array().expect("files").is_empty(), "{host}");
    }
    assert_success(&lab.apply(&lab.inventory, &[]), "apply puts the hand changes back");
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// What `-vv` says about how each host was reached.
fn reached(output: &Output, how: &str) -> Vec<String> {
    let mut hosts: Vec<String> = stderr(output)
        .lines()
        .filter(|line| line.contains(how))
        .filter_map(|line| line.split("host=").nth(1))
        .map(|host| host.trim().to_string())
        .collect();
    hosts.sort();
    hosts
}

pub(crate) fn apply_after_plan_rides_the_plans_warm_connections(lab: &Lab) {
    let every = ["app-01", "db-01", "lb-01", "lb-02", "web-01"];
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode", "-vv"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = lab.apply(&lab.inventory, &["-vv"]);
    assert_success(&output, "apply after plan");
    assert_eq!(reached(&output, "over a warm connection"), every, "{}", stderr(&output));
    // A host that rebooted lost the master's connection: the next run
    // notices before using it and connects afresh, the others stay warm.
    assert_success(&lab.infra(&["lab", "stop", "web-01"], None), "lab stop web-01");
    assert_success(&lab.infra(&["lab", "start", "web-01"], None), "lab start web-01");
    let output = lab.plan(&lab.inventory, &["--detailed-exitcode", "-vv"]);
    assert_eq!(output.status.code(), Some(0), "the rebooted host is read afresh: {}", stderr(&output));
    assert_eq!(
        reached(&output, "over a warm connection"),
        ["app-01", "db-01", "lb-01", "lb-02"],
        "{}",
        stderr(&output)
    );
    // Turned off, nothing is resumed.
    let mut command = lab.command();
    command.env("INFRA_SSH_PERSIST", "0").env("INFRA_VRRP_SECRET", VRRP_SECRET).env("INFRA_DB_PASSWORD", DB_PASSWORD);
    command.args(["plan", "--detailed-exitcode", "-vv", "--no-progress", "-i"]);
    let output = command.arg(&lab.inventory).output().expect("infra runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(reached(&output, "warm connection").is_empty(), "{}", stderr(&output));
}

pub(crate) fn plan_of_one_changed_setting_touches_only_what_follows(lab: &Lab) {
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

pub(crate) fn plan_limit_and_saved_plan(lab: &Lab) {
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
        .env("INFRA_DB_PASSWORD", OTHER_DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&output, "plan --out");
    let text = std::fs::read_to_string(&saved).expect("saved plan");
    let plan: serde_json::Value = serde_json::from_str(&text).expect("saved plan is JSON");
    assert_eq!(plan["version"], 1);
    for host in plan["hosts"].as_array().expect("hosts") {
        assert_eq!(host["fingerprint"].as_str().expect("fingerprint").len(), 64);
    }
    assert_no_password("the saved plan", &text);
}

/// `infra plan --limit db-01` with the lab inventory pointed at another
/// known_hosts file; returns its stderr after checking that it failed.
pub(crate) fn plan_db_with_known_hosts(lab: &Lab, known_hosts: &Path) -> String {
    let name = format!("{}.yml", known_hosts.file_name().expect("a file").to_string_lossy());
    let current = format!("known_hosts: {}/known_hosts", lab.state.path().display());
    let inventory = lab.inventory_with(&name, &current, &format!("known_hosts: {}", known_hosts.display()));
    let output = lab.plan(&inventory, &["--limit", "db-01"]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

pub(crate) fn plan_refuses_unknown_and_changed_host_keys(lab: &Lab) {
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

pub(crate) fn plan_reports_unreachable_and_garbled_hosts(lab: &Lab) {
    assert_success(&lab.infra(&["lab", "cut", "web-01"], None), "lab cut web-01");
    let output = lab.plan(&lab.inventory, &["--connect-timeout", "2", "--detailed-exitcode"]);
    assert_success(&lab.infra(&["lab", "heal", "web-01"], None), "lab heal web-01");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "an unreachable host is an error:\n{stdout}{stderr}");
    assert!(stderr.contains(&format!("cannot connect to `web-01` ({})", address("web-01"))), "{stderr}");
    assert_eq!(stderr.matches("`web-01`").count(), 1, "reported once:\n{stderr}");
    assert!(stderr.contains("retraces the connection with ssh's own account"), "with a hint:\n{stderr}");
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
