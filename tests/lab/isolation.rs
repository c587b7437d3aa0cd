//! Isolation and TLS on real lab hosts: the tier firewall lets each tier
//! reach only the next, SSH stays open to the admin network, a ruleset that
//! would cut infra's own SSH connection is refused, HTTPS through the virtual
//! IP with the lab's certificate, and no secret in any output, saved plan,
//! log or process command line.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A line from the middle of the lab's TLS key, as it could leak.
fn tls_key_line(lab: &Lab) -> String {
    let key = std::fs::read_to_string(lab.state.path().join("tls/key.pem")).expect("the lab's TLS key");
    key.lines().nth(1).expect("a PEM body line").to_string()
}

/// Fails when `text` holds the TLS key, a password in any written form or
/// the VRRP secret.
pub(crate) fn no_secret_in_text(lab: &Lab, what: &str, text: &str) {
    assert!(!text.contains(&tls_key_line(lab)), "{what} contains the TLS key");
    assert_no_password(what, text);
}

pub(crate) fn no_secret_in(lab: &Lab, what: &str, output: &Output) {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    no_secret_in_text(lab, what, &text);
}

/// Runs `during` while every host's process command lines are read over and
/// over (the reading script itself carries no secret); returns both. Each
/// watcher reads at least [`WATCH_ROUNDS`] times whatever the machine's
/// load: the watchers stop on the count as well as on `during`'s end.
pub(crate) fn watching_command_lines(lab: &Lab, during: impl FnOnce() -> Output) -> (Output, String) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watchers: Vec<_> = HOSTS
            .iter()
            .map(|host| {
                let stop = &stop;
                scope.spawn(move || {
                    let mut seen = String::new();
                    let mut rounds = 0;
                    while rounds < WATCH_ROUNDS || !stop.load(Ordering::Relaxed) {
                        let output = lab.ssh(
                            &address(host),
                            "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done",
                        );
                        seen.push_str(&String::from_utf8_lossy(&output.stdout));
                        rounds += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    (seen, rounds)
                })
            })
            .collect();
        let output = during();
        stop.store(true, Ordering::Relaxed);
        let mut all = String::new();
        for watcher in watchers {
            let (seen, rounds) = watcher.join().expect("watcher");
            assert!(rounds >= WATCH_ROUNDS, "the command lines were read only {rounds} times");
            all.push_str(&seen);
        }
        assert!(all.contains("sshd"), "the watchers saw no processes at all");
        (output, all)
    })
}

/// How many times at least each watcher reads the command lines.
const WATCH_ROUNDS: usize = 4;

pub(crate) fn plans_and_saved_plans_hold_no_secret(lab: &Lab) {
    let saved = lab.state.path().join("leak-check.plan.json");
    let changed = lab.inventory_with("leak-check.yml", "hsts: true", "hsts: false");
    for args in [&["--format", "json"][..], &["-v"][..], &["--out", saved.to_str().expect("utf-8")][..]] {
        no_secret_in(lab, &format!("plan {args:?}"), &lab.plan(&changed, args));
    }
    no_secret_in_text(lab, "a saved plan", &std::fs::read_to_string(&saved).expect("saved plan"));
    let render = lab.state.path().join("leak-check-render");
    let output = lab
        .command()
        .args(["render", "--out"])
        .arg(&render)
        .arg("-i")
        .arg(&changed)
        .env("INFRA_VRRP_SECRET", VRRP_SECRET)
        .env("INFRA_DB_PASSWORD", DB_PASSWORD)
        .output()
        .expect("infra runs");
    assert_success(&output, "render");
    no_secret_in(lab, "render's output", &output);
}

fn connects(lab: &Lab, from: &str, to: &str, port: u16) -> bool {
    let script = format!("timeout 3 bash -c 'echo > /dev/tcp/{}/{port}' 2>/dev/null", address(to));
    lab.ssh(&address(from), &script).status.success()
}

pub(crate) fn the_firewall_lets_each_tier_reach_only_the_next(lab: &Lab) {
    assert!(connects(lab, "app-01", "db-01", 3306), "app-01 must reach the database");
    assert!(!connects(lab, "web-01", "db-01", 3306), "web-01 must not reach the database");
    assert!(!connects(lab, "lb-01", "db-01", 3306), "lb-01 must not reach the database");
    assert!(connects(lab, "web-01", "app-01", 8000), "web-01 must reach Gunicorn");
    assert!(!connects(lab, "lb-01", "app-01", 8000), "lb-01 must not reach Gunicorn");
    assert!(connects(lab, "lb-02", "web-01", 80), "lb-02 must reach Nginx");
    assert!(!connects(lab, "db-01", "web-01", 80), "db-01 must not reach Nginx");
    for host in HOSTS {
        assert_eq!(lab.ssh_ok(&address(host), "hostname").trim(), host, "SSH from the admin network still works");
    }
    assert!(!connects(lab, "web-01", "app-01", 22), "SSH is open only to the admin network");
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["-sS", "--max-time", "5"]).args(args).output().expect("curl runs")
}

pub(crate) fn the_vip_serves_https_with_the_lab_certificate(lab: &Lab) {
    let certificate = lab.state.path().join("tls/cert.pem");
    let resolve = format!("www.example.test:443:{VIP}");
    let output = curl(&[
        "--cacert",
        certificate.to_str().expect("utf-8"),
        "--resolve",
        &resolve,
        "-D",
        "-",
        "https://www.example.test/",
    ]);
    assert_success(&output, "curl https through the virtual IP");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.to_ascii_lowercase().contains("strict-transport-security: max-age="), "{text}");
    let body = text.split("\r\n\r\n").last().unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("the app's JSON, got {text}"));
    assert_eq!(json["scheme"], "https", "the app sees the client's scheme: {json}");
    assert_eq!(json["client"], format!("{SUBNET_PREFIX}254"), "the app sees the client's address: {json}");
    let untrusted = curl(&["--resolve", &resolve, "https://www.example.test/"]);
    assert!(!untrusted.status.success(), "without --cacert the self-signed certificate must not be trusted");

    let redirecting = lab.inventory_with("redirect.yml", "redirect_http: false", "redirect_http: true");
    assert_success(&lab.apply(&redirecting, &[]), "apply with redirect_http");
    let head = curl(&["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", &format!("http://{VIP}/")]);
    assert_eq!(String::from_utf8_lossy(&head.stdout), format!("301 https://{VIP}/"));
    assert_success(&lab.apply(&lab.inventory, &[]), "apply without redirect_http");
    let (status, _) = http_get(VIP, "/").expect("plain HTTP again");
    assert_eq!(status, 200);
}

pub(crate) fn a_ruleset_that_would_cut_ssh_is_refused_before_it_is_sent(lab: &Lab) {
    let admin = format!("admin_cidrs: [{SUBNET_PREFIX}254/32]");
    let locked_out = lab.inventory_with("lockout.yml", &admin, "admin_cidrs: [192.0.2.0/24]");
    let before = managed_state(lab);
    let plan = lab.plan(&locked_out, &[]);
    assert_eq!(plan.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&plan.stderr);
    assert!(
        stderr.contains(&format!(
            "error: refusing to change `db-01`: infra's SSH connection comes from {SUBNET_PREFIX}254, which the new firewall would refuse (SSH only from 192.0.2.0/24)"
        )),
        "{stderr}"
    );
    let apply = lab.apply(&locked_out, &[]);
    assert_eq!(apply.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&apply.stderr).contains("apply changed nothing: a host refused its plan"),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(managed_state(lab), before, "a refused apply changed something");
}

pub(crate) fn the_database_is_locked_down(lab: &Lab) {
    let db = address("db-01");
    let users = lab.ssh_ok(&db, "mariadb -N -e \"SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1\"");
    let users: Vec<&str> = users.lines().collect();
    let app_user = format!("app@{}", address("app-01"));
    assert_eq!(
        users,
        [app_user.as_str(), "mariadb.sys@localhost", "mysql@localhost", "root@localhost"],
        "no anonymous user, no remote root, the app user only for the app host"
    );
    let grants = lab.ssh_ok(&db, &format!("mariadb -N -e \"SHOW GRANTS FOR 'app'@'{}'\"", address("app-01")));
    let database_grant = grants.lines().find(|line| line.contains("ON `app`.*")).expect("a grant on the app database");
    // The lab's app has migrations: its user may change its own schema, nothing else.
    assert!(
        database_grant
            .starts_with("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER ON `app`.* TO"),
        "{grants}"
    );
    assert_eq!(grants.lines().count(), 2, "only USAGE and the app database: {grants}");
    let databases = lab.ssh_ok(&db, "mariadb -N -e 'SHOW DATABASES'");
    assert!(!databases.lines().any(|name| name == "test"), "{databases}");
    let listening = lab.ssh_ok(&db, "ss -Hltn 'sport = :3306' | awk '{print $4}'");
    assert_eq!(listening.trim(), format!("{db}:3306"), "MariaDB listens on its private address only");
}
