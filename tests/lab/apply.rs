//! Apply against real lab hosts: the whole stack serving through the
//! virtual IP, idempotence, zero failed requests through a change, failures
//! that leave every host as it was, saved plans, and a killed apply.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;

impl Lab {
    /// `infra apply --yes` on `inventory` with the lab's secrets.
    pub(crate) fn apply(&self, inventory: &Path, args: &[&str]) -> Output {
        self.apply_command(inventory, args).output().expect("infra runs")
    }

    pub(crate) fn apply_command(&self, inventory: &Path, args: &[&str]) -> Command {
        self.converge_command("apply", inventory, args)
    }

    /// `infra deploy --yes` of `inventory`, with `args`.
    pub(crate) fn deploy(&self, inventory: &Path, args: &[&str]) -> Output {
        self.converge_command("deploy", inventory, args).output().expect("infra runs")
    }

    /// `infra apply` or `infra deploy` without asking, with the lab's secrets.
    pub(crate) fn converge_command(&self, verb: &str, inventory: &Path, args: &[&str]) -> Command {
        let mut command = self.command();
        command
            .args([verb, "--yes", "--no-progress", "-i"])
            .arg(inventory)
            .args(args)
            .env("INFRA_VRRP_SECRET", VRRP_SECRET)
            .env("INFRA_DB_PASSWORD", DB_PASSWORD);
        command
    }
}

/// A minimal HTTP/1.0 GET: status code and body.
pub(crate) fn http_get(host: &str, path: &str) -> Result<(u16, String), String> {
    let address = format!("{host}:80").parse().map_err(|error| format!("{error}"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|error| error.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .map_err(|error| error.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|error| error.to_string())?;
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or("no status line")?;
    let body = response.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_string());
    Ok((status, body))
}

fn counter() -> u64 {
    counter_at(VIP)
}

pub(crate) fn counter_at(vip: &str) -> u64 {
    let (status, body) = http_get(vip, "/").expect("the virtual IP answers");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("the app's JSON, got {body}"));
    assert!(json["host"].as_str().is_some_and(|host| host.starts_with("app-")), "{json}");
    json["count"].as_u64().expect("a counter")
}

pub(crate) fn apply_converges_the_stack_and_serves_through_the_vip(lab: &Lab) {
    let started = Instant::now();
    let (output, command_lines) = watching_command_lines(lab, || lab.apply(&lab.inventory, &["-v"]));
    assert_success(&output, "first apply");
    no_secret_in(lab, "the first apply's stdout and stderr (with -v logs)", &output);
    no_secret_in_text(lab, "the hosts' /proc/*/cmdline during the first apply", &command_lines);
    eprintln!("first converge of five fresh hosts took {:.1} s", started.elapsed().as_secs_f64());
    let first = counter();
    assert_eq!(counter(), first + 1, "the counter kept in MariaDB rises on each request");
    let (status, page) = http_get(VIP, "/static/index.html").expect("static file");
    assert_eq!(status, 200);
    assert!(page.contains("Served by Nginx"), "{page}");
}

pub(crate) fn second_plan_and_apply_change_nothing(lab: &Lab) {
    let plan = lab.plan(&lab.inventory, &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", String::from_utf8_lossy(&plan.stdout));
    let before = managed_state(lab);
    let output = lab.apply(&lab.inventory, &[]);
    assert_success(&output, "second apply");
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to do"));
    assert_eq!(managed_state(lab), before, "a second apply changed or restarted something");
}

/// Requests to the virtual IP in a loop until `stop`; returns (requests, failures).
fn load(
    vip: &str,
    stop: &AtomicBool,
    requests: &AtomicUsize,
    failures: &AtomicUsize,
    errors: &std::sync::Mutex<Vec<String>>,
) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        requests.fetch_add(1, Ordering::Relaxed);
        match http_get(vip, "/") {
            Ok((200, _)) => {}
            Ok((status, body)) => {
                failures.fetch_add(1, Ordering::Relaxed);
                errors.lock().expect("errors").push(format!("{status}: {}", body.chars().take(80).collect::<String>()));
            }
            Err(error) => {
                failures.fetch_add(1, Ordering::Relaxed);
                errors.lock().expect("errors").push(error);
            }
        }
    }
}

/// Applies `inventory` while a load runs through the virtual IP; asserts no request failed.
pub(crate) fn apply_under_load(lab: &Lab, inventory: &Path, what: &str) -> Output {
    under_load(lab, what, || lab.apply(inventory, &[]))
}

/// `infra rollback` while a load runs through the virtual IP; asserts no request failed.
pub(crate) fn rollback_under_load(lab: &Lab, inventory: &Path) -> Output {
    under_load(lab, "rollback", || {
        lab.command().args(["rollback", "--yes", "-i"]).arg(inventory).output().expect("infra runs")
    })
}

/// `infra deploy --yes` of `inventory` (with `args`) while a load runs
/// through the virtual IP; asserts no request failed.
pub(crate) fn deploy_under_load(lab: &Lab, inventory: &Path, args: &[&str], what: &str) -> Output {
    under_load(lab, what, || lab.deploy(inventory, args))
}

/// Runs `change` while a load runs through the virtual IP; asserts it
/// succeeded and no request failed.
pub(crate) fn under_load(lab: &Lab, what: &str, change: impl FnOnce() -> Output) -> Output {
    let (stop, requests, failures) = (AtomicBool::new(false), AtomicUsize::new(0), AtomicUsize::new(0));
    let errors = std::sync::Mutex::new(Vec::new());
    let output = std::thread::scope(|scope| {
        scope.spawn(|| load(&lab.vip, &stop, &requests, &failures, &errors));
        std::thread::sleep(Duration::from_millis(500));
        let output = change();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        output
    });
    assert_success(&output, what);
    let (requests, failures) = (requests.load(Ordering::Relaxed), failures.load(Ordering::Relaxed));
    eprintln!("{what}: {requests} requests through the virtual IP meanwhile, {failures} failed");
    assert!(requests > 10, "the load did not run");
    assert_eq!(failures, 0, "{what}: failed requests: {:?}", errors.lock().expect("errors"));
    output
}

pub(crate) fn a_load_balancer_change_applies_with_zero_failed_requests(lab: &Lab) {
    let changed = lab.inventory_with("leastconn-apply.yml", "balance: roundrobin", "balance: leastconn");
    let output = apply_under_load(lab, &changed, "apply of a load balancer change");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stage load_balancer") && !stderr.contains("stage web") && !stderr.contains("stage database"),
        "{stderr}"
    );
    assert_eq!(lab.plan(&changed, &["--detailed-exitcode"]).status.code(), Some(0));
    apply_under_load(lab, &lab.inventory, "apply of the change back");
}

pub(crate) fn a_broken_haproxy_override_fails_validation_and_changes_nothing(lab: &Lab) {
    let templates = lab.state.path().join("broken-templates");
    std::fs::create_dir_all(&templates).expect("create");
    let built_in = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/haproxy.cfg.j2"))
        .expect("template");
    std::fs::write(
        templates.join("haproxy.cfg.j2"),
        built_in.replace("    balance ", "    this-is-not-a-keyword\n    balance "),
    )
    .expect("write");
    let broken = lab.inventory_with("broken.yml", "ssh:\n", &format!("templates: {}\nssh:\n", templates.display()));
    let before = managed_state(lab);
    let output = lab.apply(&broken, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stage load_balancer"), "{stderr}");
    assert!(stderr.contains("at step `validating`"), "{stderr}");
    assert!(stderr.contains("this-is-not-a-keyword"), "haproxy's own message is shown: {stderr}");
    assert_eq!(managed_state(lab), before, "a failed apply left a host changed");
    assert!(counter() > 0, "the stack still serves");
}

pub(crate) fn a_failing_health_check_rolls_the_host_back(lab: &Lab) {
    // Valid for nginx -t, but the web server no longer passes its health check.
    let templates = lab.state.path().join("unhealthy-templates");
    std::fs::create_dir_all(&templates).expect("create");
    let built_in = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/nginx-site.conf.j2"))
        .expect("template");
    std::fs::write(templates.join("nginx-site.conf.j2"), built_in.replace("return 200 \"ok\\n\";", "return 503;"))
        .expect("write");
    let unhealthy =
        lab.inventory_with("unhealthy.yml", "ssh:\n", &format!("templates: {}\nssh:\n", templates.display()));
    let before = managed_state(lab);
    let output = lab.apply(&unhealthy, &["--health-timeout", "3"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apply failed on `web-01` at step `health checks`"), "{stderr}");
    assert!(!stderr.contains("stage load_balancer"), "the next stage must not start: {stderr}");
    let after = managed_state(lab);
    let files = |state: &str| state.lines().filter(|line| line.starts_with('/')).map(String::from).collect::<Vec<_>>();
    assert_eq!(files(&after), files(&before), "the rolled-back host's files are exactly as before");
    // HAProxy saw web-01 fail; its own checks (rise 2, every 2 s) bring it back.
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(VIP, "/healthz").map(|(status, _)| status) != Ok(200) {
        assert!(Instant::now() < deadline, "the stack does not serve again after the rollback");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(lab.plan(&lab.inventory, &["--detailed-exitcode"]).status.code(), Some(0));

    // `app.health` asks for a status the app does not answer: the app
    // host's change (one more worker) is rolled back, and the error says
    // what the app answered.
    let text = std::fs::read_to_string(&lab.inventory).expect("inventory");
    let strict = text.replacen("status: 200", "status: 204", 1).replacen("workers: 2", "workers: 3", 1);
    let strict_inventory = lab.state.path().join("strict-health.yml");
    std::fs::write(&strict_inventory, strict).expect("write");
    let output = lab.apply(&strict_inventory, &["--health-timeout", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apply failed on `app-01` at step `health checks`"), "{stderr}");
    assert!(stderr.contains("answered HTTP 200, not 204"), "the app's answer: {stderr}");
    assert_eq!(lab.plan(&lab.inventory, &["--detailed-exitcode"]).status.code(), Some(0));
}

pub(crate) fn saved_plans_apply_exactly_and_refuse_drift(lab: &Lab) {
    let changed = lab.inventory_with("source-balance.yml", "balance: roundrobin", "balance: source");
    let saved = lab.state.path().join("apply-plan.json");
    assert_success(&lab.plan(&changed, &["--out", saved.to_str().expect("utf-8")]), "plan --out");
    lab.ssh_ok(&address("lb-02"), "echo '# drift' >> /etc/haproxy/haproxy.cfg");
    let refused = lab
        .command()
        .args(["apply", "--no-progress"])
        .arg(&saved)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("host `lb-02` changed since the plan was made"), "{stderr}");
    assert_success(&lab.plan(&changed, &["--out", saved.to_str().expect("utf-8")]), "plan --out again");
    let applied = lab
        .command()
        .args(["apply", "--no-progress"])
        .arg(&saved)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&applied, "apply of a saved plan (no prompt, no --yes)");
    assert_eq!(lab.plan(&changed, &["--detailed-exitcode"]).status.code(), Some(0));
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back to roundrobin");
}

pub(crate) fn apply_refuses_without_a_terminal_or_yes(lab: &Lab) {
    let changed = lab.inventory_with("no-tty.yml", "balance: roundrobin", "balance: leastconn");
    let output = lab
        .command()
        .args(["apply", "-i"])
        .arg(&changed)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to apply without confirmation: stdin is not a terminal"), "{stderr}");
    assert_eq!(lab.plan(&changed, &["--detailed-exitcode"]).status.code(), Some(2), "nothing was applied");
}

pub(crate) fn a_killed_apply_converges_on_the_next_run(lab: &Lab) {
    let changed = lab.inventory_with("moved-static.yml", "static_root: /var/www/infra", "static_root: /var/www/killed");
    let mut child = lab
        .apply_command(&changed, &[])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("infra runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut killed_at = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("a line");
        if line.contains("web-01: swapping files in") || line.contains("web-01: reloading services") {
            child.kill().expect("kill");
            killed_at = Some(line);
            break;
        }
    }
    let _ = child.wait();
    let killed_at = killed_at.expect("apply reached the web stage");
    eprintln!("killed apply at `{}`", killed_at.trim());
    std::thread::sleep(Duration::from_secs(1));
    let leftovers = lab.ssh(&address("web-01"), "ls /etc/nginx/sites-enabled/ | grep -c infra-new");
    eprintln!("after the kill, web-01 has {} staged files", String::from_utf8_lossy(&leftovers.stdout).trim());
    assert_success(&lab.apply(&changed, &[]), "apply after the kill");
    assert_eq!(lab.plan(&changed, &["--detailed-exitcode"]).status.code(), Some(0), "converged after the re-run");
    let site = lab.ssh_ok(&address("web-01"), "cat /etc/nginx/sites-enabled/infra.conf; ls -a /etc/nginx/sites-enabled; cat /var/lib/infra/pending 2>/dev/null || true");
    assert!(site.contains("alias /var/www/killed/;"), "{site}");
    assert!(!site.contains(".infra-"), "no staged or backup file is left: {site}");
    assert!(counter() > 0);
    assert_success(&lab.apply(&lab.inventory, &[]), "apply back");
}

/// The scaled stack (two web and two app hosts): changes to the web tier and
/// to the app tier, each applied while requests run through the virtual IP.
pub(crate) fn two_web_and_two_app_hosts_change_with_zero_failed_requests() {
    let (text, _) = super::bench::bench_inventory(7);
    let lab = Lab::up_named("infrascale", &text);
    assert_success(&lab.apply(&lab.inventory, &[]), "first apply of the scaled stack");
    assert!(counter_at(&lab.vip) > 0);
    // The site moves its static files: a change of every web host's Nginx site.
    let web = lab.inventory_with("scaled-web.yml", "static_root: /var/www/infra", "static_root: /var/www/scaled");
    let output = apply_under_load(&lab, &web, "apply of a web tier change with two web hosts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("draining in HAProxy"), "{stderr}");
    let app = lab.inventory_with("scaled-app.yml", "workers: 2", "workers: 3");
    apply_under_load(&lab, &app, "apply of an app tier change with two app hosts");
    let releases = lab.command().args(["releases", "--format", "json", "-i"]).arg(&app).output().expect("infra runs");
    assert_success(&releases, "releases");
    let releases: serde_json::Value = serde_json::from_slice(&releases.stdout).expect("JSON");
    let current: Vec<&str> =
        releases["hosts"].as_array().expect("hosts").iter().filter_map(|host| host["current"].as_str()).collect();
    assert_eq!(current.len(), 2, "{releases}");
    assert_eq!(current[0], current[1], "every app host serves the same release: {releases}");
    let deployed = a_git_deploy_of_code_a_package_and_a_migration_then_a_rollback(&lab);
    a_deployed_release_stays_until_the_inventory_names_another(&lab, &deployed);
}

/// A backup taken through `infra backup now`, more writes, then `infra
/// restore`: the counter continues from the backed-up value. The backup
/// is listed with its checksum, and no password reaches a command line.
pub(crate) fn a_restored_backup_brings_the_counter_back(lab: &Lab) {
    // The hosts' command lines are read throughout; the pause keeps the
    // watchers reading for a few rounds around a 0.1 s backup.
    let (backup, command_lines) = watching_command_lines(lab, || {
        let output = lab.command().args(["backup", "now", "-i"]).arg(&lab.inventory).output().expect("infra runs");
        std::thread::sleep(Duration::from_secs(2));
        output
    });
    assert_success(&backup, "backup now");
    no_secret_in(lab, "backup now's output", &backup);
    no_secret_in_text(lab, "the hosts' /proc/*/cmdline during a backup", &command_lines);
    let id = String::from_utf8_lossy(&backup.stdout).trim().to_string();
    let saved = counter_at(&lab.vip);
    let listed = lab.command().args(["backup", "list", "--format", "json", "-i"]).arg(&lab.inventory).output();
    let listed = listed.expect("infra runs");
    assert_success(&listed, "backup list");
    let document: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let backups = document["backups"].as_array().expect("a list");
    let newest = backups.last().expect("the backup is listed");
    assert_eq!(newest["id"], id.as_str());
    assert_eq!(newest["sha256"].as_str().map(str::len), Some(64));
    for _ in 0..3 {
        counter_at(&lab.vip);
    }
    let refused = lab.command().args(["restore", "-i"]).arg(&lab.inventory).output().expect("infra runs");
    assert_eq!(refused.status.code(), Some(1), "restore without --yes must refuse");
    let (restored, command_lines) = watching_command_lines(lab, || {
        let output = lab.command().args(["restore", "--yes", "-i"]).arg(&lab.inventory).output().expect("infra runs");
        std::thread::sleep(Duration::from_secs(1));
        output
    });
    assert_success(&restored, "restore");
    no_secret_in(lab, "restore's output", &restored);
    no_secret_in_text(lab, "the hosts' /proc/*/cmdline during a restore", &command_lines);
    // The backup holds `saved - 1` (the read after it made `saved`); the
    // restore's health probe of the one app host (GET /) counts once more.
    assert_eq!(counter_at(&lab.vip), saved + 1, "the counter continues from the backed-up value");

    // The schedule: apply installed and started the timer; the unit it
    // starts takes a backup like `infra backup now`.
    let database = address("db-01");
    assert_eq!(lab.ssh_ok(&database, "systemctl is-active infra-backup.timer").trim(), "active");
    let count = |lab: &Lab| lab.ssh_ok(&database, "ls /var/backups/infra/*.json | wc -l").trim().parse::<u32>();
    let before = count(lab).expect("a count");
    lab.ssh_ok(&database, "systemctl start infra-backup.service");
    assert_eq!(count(lab).expect("a count"), before + 1, "the timer's unit took a backup");
}
